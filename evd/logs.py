"""Logging to stderr, one line per event; journald adds its own time stamps."""

import logging
import os
import sys

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# syslog priorities, so that journald files each line at the right level.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    def format(self, record):
        priority = _PRIORITY.get(record.levelno, 6)
        return f"<{priority}>" + super().format(record).replace("\n", " | ")


def under_journald():
    return bool(os.environ.get("JOURNAL_STREAM"))


def setup(level="info", name="evd", stream=None):
    handler = logging.StreamHandler(stream or sys.stderr)
    if under_journald():
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    set_level(level)
    # kafka-python is chatty at INFO about every connection attempt.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, LEVELS[level]))


def set_level(level):
    logging.getLogger().setLevel(LEVELS[level])

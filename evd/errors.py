"""Exceptions that carry the exit codes of DESIGN.md §2 (0 ok, 1 failure, 2 usage, 3 unreachable, 4 refused)."""

import argparse

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_REFUSED = 4


class EvdError(Exception):
    """An expected error: reported as one line on stderr, never as a traceback."""

    exit_code = EXIT_FAILURE


class UsageError(EvdError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class ConfigError(EvdError):
    """A configuration problem, reported as ``FILE:LINE: message``."""

    exit_code = EXIT_USAGE

    def __init__(self, message, source=None, line=None):
        self.message = message
        self.source = source
        self.line = line
        super().__init__(str(self))

    def __str__(self):
        if self.source is None:
            return self.message
        if self.line is None:
            return f"{self.source}: {self.message}"
        return f"{self.source}:{self.line}: {self.message}"


class CommandError(EvdError):
    """A control command that could not be carried out; ``code`` travels over the control socket."""

    # Protocol error codes and the evctl exit code each one maps to.
    EXIT_CODES = {
        "bad_request": EXIT_USAGE,
        "bad_args": EXIT_USAGE,
        "unknown_command": EXIT_REFUSED,
        "not_found": EXIT_REFUSED,
        "refused": EXIT_REFUSED,
        "not_permitted": EXIT_REFUSED,
        "timeout": EXIT_FAILURE,  # no answer in time: nothing was refused
        "unavailable": EXIT_FAILURE,
        "internal": EXIT_FAILURE,
    }

    def __init__(self, code, message, result=None):
        self.code = code if code in self.EXIT_CODES else "internal"
        self.message = message
        #: Data worth printing although the command was refused (a denied request's ticket).
        self.result = result
        super().__init__(message)

    @property
    def exit_code(self):
        return self.EXIT_CODES[self.code]


class UnreachableError(EvdError):
    """The daemon's control socket could not be reached."""

    exit_code = EXIT_UNREACHABLE


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line ``PROG: command: message`` and exit status 2."""

    def error(self, message):
        program, _, command = self.prog.partition(" ")
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"{program}: {where}{message} (see '{self.prog} --help')\n")

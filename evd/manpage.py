"""The evctl(1) man page, generated from the command table (:mod:`evd.commands`).

``python -m evd.manpage > man/evctl.1`` regenerates it; ``tests/unit/test_manpages.py``
fails when the committed page and the table disagree. The output is plain ASCII roff
(man macros) and depends on nothing but the table, so it is the same on every machine.
"""

import re
import sys

from .commands import all_commands

REGENERATE = "python -m evd.manpage > man/evctl.1"

ROLE_TITLES = {
    None: "Commands of every daemon",
    "central": "Central commands",
    "engine": "Engine commands",
    "monitor": "Monitor commands",
    "driver": "Driver commands",
}

# Typographic characters of the table's text, written so that every output device (even
# -Tascii under a C locale) has them.
_CHARACTERS = {"\u2026": "...", "\u2013": "-", "\u2014": "--", "\u20ac": "EUR", "\u00b7": "-"}


def escape(text):
    """``text`` made safe inside a roff line: backslashes, hyphens (as ``\\-``) and non-ASCII."""
    out = []
    for char in str(text):
        char = _CHARACTERS.get(char, char)
        if char == "\\":
            out.append("\\e")
        elif char == "-":
            out.append("\\-")
        elif all(ord(c) < 128 for c in char):
            out.append(char)
        else:
            out.append(f"\\[u{ord(char):04X}]")
    return "".join(out)


def line(text):
    """A text line: a leading ``.`` or ``'`` would make it a request, so ``\\&`` guards it."""
    return "\\&" + text if text[:1] in (".", "'") else text


def bold(text):
    return f"\\fB{escape(text)}\\fR"


def italic(text):
    return f"\\fI{escape(text)}\\fR"


def sentence(text):
    """A help string as the start of a sentence: capitalised, with a full stop."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# Options are lower case (``--kwh``), metavars upper case (``ID``, ``ISO8601``).
_USAGE_TOKEN = re.compile(r"(?P<option>--?[a-z][a-z0-9-]*)|(?P<metavar>[A-Z][A-Z0-9_]*)|(?P<other>.)", re.S)


def usage_markup(spec):
    """``spec.usage`` with fonts: command words and options bold, metavars italic."""
    words = " ".join(spec.words)
    usage = spec.usage
    if spec.group_default:  # "drivers [list]": the last word may be left out
        words = " ".join(spec.words[:-1])
        parts = [bold(words), escape(" ["), bold(spec.words[-1]), escape("]")]
        words = usage[: len(words) + len(spec.words[-1]) + 3]
    else:
        parts = [bold(words)]
    assert usage.startswith(words), usage
    for match in _USAGE_TOKEN.finditer(usage[len(words) :]):
        if match["option"]:
            parts.append(bold(match["option"]))
        elif match["metavar"]:
            parts.append(italic(match["metavar"]))
        else:
            parts.append(escape(match["other"]))
    return "".join(parts)


def arg_label(arg):
    if arg.positional:
        return italic(arg.metavar or arg.name.upper()) + (escape("...") if arg.nargs == "*" else "")
    if arg.flag:
        return bold(arg.name)
    return bold(arg.name) + " " + italic(arg.metavar or arg.dest.upper())


def arg_text(arg):
    text = sentence(arg.help)
    if arg.default is not None and not arg.flag:
        text = text[:-1] + f" (default: {arg.default})."
    return escape(text)


def command_entry(spec):
    lines = [".TP", line(usage_markup(spec)), line(escape(sentence(spec.help)))]
    notes = []
    if spec.one_of:
        names = [arg_label(a) for a in spec.args if a.dest in spec.one_of]
        notes.append("Give " + " or ".join(names) + ".")
    if spec.run_locally is not None:
        notes.append("evctl does this itself, over the control socket's watch stream.")
    if spec.mutating:
        notes.append("It changes state (see \\fBPermissions\\fR above).")
    lines += [line(note) for note in notes]
    if spec.args:
        lines.append(".RS")
        for arg in spec.args:
            lines += [".TP", line(arg_label(arg)), line(arg_text(arg))]
        lines.append(".RE")
    return lines


def commands_section(specs):
    lines = [".SH COMMANDS"]
    lines += [
        "A command is one or two words followed by its arguments.",
        "A command of another role than the daemon's is refused (exit status 4).",
        "Plugins may add commands; \\fBevctl \\-\\-help\\fR lists those installed.",
    ]
    roles = []
    for spec in specs:
        if spec.role not in roles:
            roles.append(spec.role)
    for role in roles:
        title = ROLE_TITLES.get(role, f"{role} commands".capitalize())
        lines.append(f'.SS "{escape(title)}"')
        for spec in specs:
            if spec.role == role:
                lines += command_entry(spec)
    return lines


HEADER = r""".\" Generated from evd/commands.py: do not edit.
.\" Regenerate with: python -m evd.manpage > man/evctl.1
.TH EVCTL 1 "" "EVCharging" "EVCharging Manual"
.nh
.ad l
.SH NAME
evctl \- administer a running evd daemon over its control socket
.SH SYNOPSIS
.B evctl
[\fB\-n\fR \fINAME\fR | \fB\-s\fR \fISOCKET\fR]
[\fB\-\-json\fR]
\fICOMMAND\fR [\fIARGUMENT\fR]...
.br
.B evctl
\fB\-\-help\fR | \fB\-\-version\fR
.SH DESCRIPTION
.B evctl
sends one command to one running
.BR evd (8)
daemon over the daemon's control socket (a UNIX stream socket) and prints the result:
a table or \fIkey\fR: \fIvalue\fR lines for people, or one JSON document with
\fB\-\-json\fR.
Errors are one line on standard error, starting with \(lqevctl: \(rq.
.PP
Each daemon runs one role (central, engine, monitor or driver), and the commands it
serves depend on its role; \fBstatus\fR, \fBping\fR and \fBattach\fR work with every
daemon.
.SS Permissions
Commands that change state are accepted only from root, the daemon's own user or members
of the group that owns the control socket (the socket has mode 0660, and the daemon checks
the caller's credentials with SO_PEERCRED); under systemd that is the \fBevcharging\fR
group.
Anyone who can open the socket may run the other commands.
.SS "Finding the daemon"
.B evctl
talks to the socket given with \fB\-s\fR \fISOCKET\fR.
Otherwise it looks in the default socket directory, the first of:
.IP 1. 4
\fB$RUNTIME_DIRECTORY\fR (set by systemd; the first directory if it lists several);
.IP 2. 4
\fI/run/evd\fR, when run as root;
.IP 3. 4
\fB$XDG_RUNTIME_DIR\fR\fI/evd\fR;
.IP 4. 4
\fI/tmp/evd\-UID\fR, where \fIUID\fR is the user's numeric id.
.PP
With \fB\-n\fR \fINAME\fR the socket is \fINAME\fB.sock\fR in that directory: the same
place a daemon named \fINAME\fR creates it when its configuration sets no
\fBcontrol.socket\fR (see
.BR evd.yaml (5));
a daemon with a configured socket elsewhere is reached with \fB\-s\fR.
With neither option, evctl uses the only socket in that directory; it fails with exit
status 3 when there is none, and with exit status 2, naming them, when there are several.
.SH OPTIONS
.TP
\fB\-n\fR \fINAME\fR, \fB\-\-name\fR \fINAME\fR
The instance name of the daemon (the \fBname\fR key of its configuration); its socket is
\fINAME\fB.sock\fR in the default socket directory.
.TP
\fB\-s\fR \fISOCKET\fR, \fB\-\-socket\fR \fISOCKET\fR
The path of the daemon's control socket.
.TP
\fB\-\-url\fR \fIURL\fR
Run central's commands over its HTTP API at \fIURL\fR (\fBhttps://\fIHOST\fB:\fIPORT\fR),
from any machine, instead of a control socket: the same output and exit statuses.
Commands that change state, and \fBaudit\fR, need \fB\-\-token\-file\fR.
The API tokens themselves, \fBattach\fR and the other roles' commands need the socket.
.TP
\fB\-\-token\-file\fR \fIF\fR
A file holding an API token (from \fBevctl api token add\fR \fINAME\fR), for \fB\-\-url\fR.
.TP
\fB\-\-cacert\fR \fIF\fR
CA certificate(s) (PEM) to verify an \fBhttps\fR \fB\-\-url\fR with, instead of the
system's.
.TP
.B \-\-json
Print the result as one JSON document on standard output.
It may also be given after the command.
.TP
\fB\-h\fR, \fB\-\-help\fR
Print the usage and every command, including those of installed plugins, and exit.
.TP
.B \-\-version
Print evctl's version and exit.
"""

FOOTER = r""".SH "JSON OUTPUT"
With \fB\-\-json\fR the result is one JSON document.
The field names below are a fixed interface for scripts; a daemon may add fields, never
rename or remove these.
Times are ISO 8601 in UTC; amounts of energy are kWh, prices and amounts EUR.
Other commands print their results as JSON too, but their fields may change.
.TP
.B cp list
An array with one object per charging point:
\fBid\fR, \fBlocation\fR, \fBprice_eur_kwh\fR, \fBcity\fR, \fBstate\fR, \fBdriver\fR,
\fBkwh\fR, \fBeur\fR, \fBsession\fR.
\fBstate\fR is one of ACTIVE, SUPPLYING, STOPPED, BROKEN or DISCONNECTED;
\fBdriver\fR, \fBkwh\fR, \fBeur\fR and \fBsession\fR are null while the charging point
is not supplying.
.TP
.B sessions
An array with one object per supply session, newest first:
\fBid\fR, \fBcp\fR, \fBdriver\fR, \fBstarted_at\fR, \fBended_at\fR, \fBkwh\fR,
\fBeur\fR, \fBstatus\fR, \fBreason\fR.
\fBstatus\fR is one of AUTHORIZED, SUPPLYING, COMPLETED, INTERRUPTED or DENIED.
.TP
.B status
An object: \fBname\fR, \fBrole\fR, \fBversion\fR, \fBuptime_s\fR (seconds), and
\fBtransport\fR, an object with \fBkind\fR (kafka or local) and \fBconnected\fR (true
or false; both null for a role that uses no event stream, such as the monitor), followed
by fields of the daemon's role.
.TP
.B driver request \-\-wait
The ticket of the supply:
\fBsession\fR, \fBcp\fR, \fBdriver\fR, \fBkwh\fR, \fBeur\fR, \fBstatus\fR, \fBreason\fR.
A denied request prints its ticket (\fBstatus\fR DENIED, with the \fBreason\fR) and exits
with status 4.
.SH "EXIT STATUS"
.TP
.B 0
The command succeeded.
.TP
.B 1
Runtime failure: the daemon could not carry the command out, or its answer (for
\fBdriver request \-\-wait\fR: central's) did not come in time.
.TP
.B 2
Usage error: a bad command line or bad arguments, or several daemons to choose from.
.TP
.B 3
The daemon is unreachable: no such socket, nobody listening on it, or the connection was
lost.
.TP
.B 4
The command was refused: the daemon's role does not serve it, the state does not allow it,
an unknown id, or not permitted.
.TP
.B 130
Interrupted (Ctrl\-C).
.SH ENVIRONMENT
.TP
\fBRUNTIME_DIRECTORY\fR, \fBXDG_RUNTIME_DIR\fR
Where the default socket directory is (see \fBFinding the daemon\fR above).
.TP
.B EVD_DISABLE_PLUGINS
A comma\-separated list of plugin names whose commands evctl leaves out, as
.BR evd (8)
leaves out the plugins themselves.
.SH EXAMPLES
The state of the central daemon and of every charging point:
.PP
.RS
.nf
evctl \-n central status
evctl \-n central cp list
evctl \-n central \-\-json cp list
.fi
.RE
.PP
Take two charging points out of service, then put every one back:
.PP
.RS
.nf
evctl \-n central cp stop ALC1 MAD2
evctl \-n central cp resume \-\-all
.fi
.RE
.PP
Plug a vehicle in at an engine, reached by its socket:
.PP
.RS
.nf
evctl \-s /run/evd/engine\-ALC1.sock engine plug
.fi
.RE
.PP
Ask for 3 kWh at MAD2 as driver D1 and wait for the ticket:
.PP
.RS
.nf
evctl \-n driver\-D1 driver request MAD2 \-\-kwh 3 \-\-wait
.fi
.RE
.PP
Watch a charging point's monitor in its live panel (\fBq\fR detaches, \fB?\fR lists
the keys):
.PP
.RS
.nf
evctl \-n monitor\-ALC1 attach
.fi
.RE
.PP
The active sessions of a demo network (see \fBevd demo\fR in
.BR evd (8)):
.PP
.RS
.nf
evctl \-s /tmp/evdemo/run/central.sock sessions \-\-active
.fi
.RE
.SH "SEE ALSO"
.BR evd (8),
.BR evd.yaml (5),
.BR systemctl (1)
"""


def builtin_commands():
    """Every command of evd and its own plugins (none disabled, no third-party one): what evctl(1) documents."""
    from .pluginmanager import load_plugins, plugin_commands

    plugins = load_plugins(disabled=())
    return tuple(all_commands(plugin_commands(plugins.pm, builtin_only=True)).values())


def evctl_manpage(specs=None):
    """The evctl(1) page as roff text, its COMMANDS section generated from ``specs`` (evd's own commands)."""
    specs = builtin_commands() if specs is None else specs
    return HEADER + "\n".join(commands_section(specs)) + "\n" + FOOTER


def main():
    sys.stdout.write(evctl_manpage())
    return 0


if __name__ == "__main__":
    sys.exit(main())

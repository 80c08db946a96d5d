"""``python -m bench SUBCOMMAND``: scale (central under N simulated CPs), fleet (real daemons), faults, bus (transport throughput).

    python -m bench scale --cps 1000 --seconds 60 --transport local
    python -m bench faults --cps 20
    python -m bench bus --messages 2000 --kinds local      # the same as python -m bench.bus
    python -m bench fleet --cps 100 --drivers 100 --transport kafka   # one real evd process per engine, monitor, driver

Each prints one JSON document on stdout and its progress on stderr; ``SUBCOMMAND --help`` lists its options.
"""

import importlib
import sys

SUBCOMMANDS = {
    "scale": "bench.scale",
    "faults": "bench.faults",
    "bus": "bench.bus",
    "fleet": "bench.fleet",
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"python -m bench: unknown subcommand {name!r}; choose one of {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    return importlib.import_module(SUBCOMMANDS[name]).main(rest)


if __name__ == "__main__":
    sys.exit(main())

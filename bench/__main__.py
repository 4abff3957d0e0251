"""Run every benchmark: ``python -m bench [matching ...]``; options after the names go to the
benchmarks that take them (``python -m bench ingest --repeat 1``). Each benchmark is imported
only when it runs: ``ingest`` and ``workers`` drive raqib's command line and import nothing of
``worker``."""

from __future__ import annotations

import importlib
import sys

BENCHES = ("matching", "polling", "stories", "ingest", "workers")
WITH_OPTIONS = {"ingest", "workers"}


def main(argv: list[str]) -> int:
    names = []
    for arg in argv:
        if arg.startswith("-"):
            break
        names.append(arg)
    options = argv[len(names):]
    names = names or list(BENCHES)
    for name in names:
        if name not in BENCHES:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
            return 2
    if options and set(names) - WITH_OPTIONS:
        print(f"options {' '.join(options)!r} are only for {', '.join(sorted(WITH_OPTIONS))}",
              file=sys.stderr)
        return 2
    for name in names:
        bench = importlib.import_module(f"bench.{name}").main
        if name in WITH_OPTIONS:
            bench(options)
        else:
            bench()
    return 0


sys.exit(main(sys.argv[1:]))

"""Run every benchmark: ``python -m bench [matching ...]``."""

from __future__ import annotations

import sys

from bench import matching, polling, stories

BENCHES = {"matching": matching.main, "polling": polling.main, "stories": stories.main}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    for name in names:
        if name not in BENCHES:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
            return 2
        BENCHES[name]()
    return 0


sys.exit(main(sys.argv[1:]))

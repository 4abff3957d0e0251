"""``raqib silence add|list|expire``: silences (rules.md, Silences) from the command line.

A silence is checked against the configured rules before it is stored: an unknown rule id
or source, or a term that does not compile, is refused with a hint, since a silence that can
match nothing would mute nothing while the desk thinks it does."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from worker import config
from worker.db import Database
from worker.domain import Silence
from worker.errors import ConfigError
from worker.payload import iso
from worker.silencing import check_term
from worker.units import parse_positive_duration

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _time(value: str, flag: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{flag}: not an ISO time: {value!r} (use 2026-12-01T06:00Z)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _problems(args: argparse.Namespace, main: config.MainConfig) -> list[str]:
    """What is wrong with the matchers of ``silence add``, against the configuration."""
    loaded, problems = config.load_rules(list(main.rules))
    if problems:
        raise ConfigError(problems)
    out: list[str] = []
    for flag in ("rule", "source", "match"):
        given = getattr(args, flag) or []
        if len(given) > 1:
            out.append(f"--{flag} given {len(given)} times: a silence has one of each, and "
                       "every one given must hold (add one silence for each)")
        setattr(args, flag, given[-1] if given else None)
    if args.rule is None and args.source is None and args.match is None:
        out.append("a silence needs --rule, --source and/or --match (every one given must "
                   "hold)")
    rules = {r.id: r for r, _, _ in loaded.rules}
    if args.rule and args.rule not in rules:
        out.append(f"--rule: no rule {args.rule!r}{config.did_you_mean(args.rule, set(rules))}")
    elif args.rule and args.match is not None and rules[args.rule].quiet is not None:
        out.append(f"--match: {args.rule!r} is a quiet rule: its alerts are about a source, "
                   "with no article to hold a term, so this silence would match nothing")
    if args.source:
        names = {s.name for s in main.sources} | {config.seed_source_name(f) for f in main.seeds}
        tags = {t for ts in main.source_tags().values() for t in ts}
        if args.source.startswith("tag:"):
            if args.source[4:] not in tags:
                out.append(f"--source: no source has the tag {args.source[4:]!r}"
                           f"{config.did_you_mean(args.source[4:], tags)}")
        elif args.source not in names:
            hint = config.did_you_mean(args.source, names)
            out.append(f"--source: no source {args.source!r}{hint} (a name, or tag:NAME)")
    if args.match is not None:
        out += [f"--match: {p}" for p in check_term(args.match, dict(loaded.entities))]
    if (args.duration is None) == (args.until is None):
        out.append("give one of --for DURATION and --until TIME (only one)")
    return out


def _add(args: argparse.Namespace, main: config.MainConfig, store: Database) -> int:
    problems = _problems(args, main)
    now = datetime.now(UTC)
    try:
        start = _time(args.start, "--start") if args.start else now
        if args.duration is not None:
            try:
                end = start + parse_positive_duration(args.duration)
            except ValueError as exc:
                raise ValueError(f"--for: {exc}") from None
            if end <= now:
                problems.append(f"--start and --for: the silence would end at {iso(end)}, "
                                "already past")
        elif args.until is not None:
            end = _time(args.until, "--until")
            if end <= max(start, now):
                problems.append(f"--until: {iso(end)} is already past"
                                if end <= now else "--until: must be after --start")
    except ValueError as exc:
        problems.append(str(exc))
    except OverflowError:
        problems.append("--start, --for or --until: too far in the future")
    if len(args.by or "") > 200 or len(args.comment) > 10_000:
        problems.append("--by is at most 200 characters, --comment 10,000")
    if problems:
        for p in problems:
            print(f"raqib: silence add: {p}", file=sys.stderr)
        return EXIT_INVALID
    silence = Silence(id=str(ULID()), starts_at=start, ends_at=end, rule_id=args.rule,
                      source=args.source, term=args.match,
                      created_by=args.by or os.environ.get("USER") or getpass.getuser(),
                      comment=args.comment, created_at=now)
    store.silences.add(silence)
    if args.json:
        _dump([_row(silence, 0, now)])
    else:
        print(f"{silence.id}  silences {_what(silence)} from {iso(start)} until {iso(end)}")
    return EXIT_OK


def _what(s: Silence) -> str:
    parts = [f"rule {s.rule_id}" if s.rule_id else "", f"source {s.source}" if s.source else "",
             f"articles holding {s.term!r}" if s.term else ""]
    return " and ".join(p for p in parts if p) or "nothing"


def _state(s: Silence, now: datetime) -> str:
    return "active" if s.active(now) else "pending" if now < s.starts_at else "expired"


def _row(s: Silence, silenced: int, now: datetime) -> dict[str, Any]:
    return {"id": s.id, "state": _state(s, now), "rule": s.rule_id, "source": s.source,
            "match": s.term, "starts_at": iso(s.starts_at), "ends_at": iso(s.ends_at),
            "created_by": s.created_by, "comment": s.comment, "created_at": iso(s.created_at),
            "silenced": silenced}


def _dump(rows: list[dict[str, Any]]) -> None:
    json.dump(rows, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


Table = Callable[[list[dict[str, Any]], list[tuple[str, str, int]]], None]


def _list(args: argparse.Namespace, store: Database, table: Table) -> int:
    now = datetime.now(UTC)
    rows = [_row(s, n, now) for s, n in store.silences.listing(include_expired=args.all)]
    if args.json:
        _dump(rows)
        return EXIT_OK
    for r in rows:
        r["what"] = " ".join(f"{k}={r[k]}" for k in ("rule", "source", "match") if r[k])
    table(rows, [("id", "ID", 26), ("state", "STATE", 8), ("what", "MATCHES", 50),
                 ("starts_at", "STARTS", 20), ("ends_at", "ENDS", 20),
                 ("created_by", "BY", 12), ("silenced", "SILENCED", 8),
                 ("comment", "COMMENT", 40)])
    return EXIT_OK


def _expire(args: argparse.Namespace, store: Database) -> int:
    if not args.silence_id:
        print("raqib: silence expire needs a silence id (see `raqib silence list`)",
              file=sys.stderr)
        return EXIT_INVALID
    found = store.silences.expire(args.silence_id)
    if found is None:
        print(f"raqib: no silence {args.silence_id}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{found.id}  expired at {iso(found.ends_at)}")
    return EXIT_OK


def run(args: argparse.Namespace, main: config.MainConfig,
        reading: Callable[[config.MainConfig], Database], table: Table) -> int:
    """The command: *reading* opens the database, *table* prints rows as columns."""
    if args.action != "expire" and args.silence_id:
        print(f"raqib: silence {args.action} takes no id", file=sys.stderr)
        return EXIT_INVALID
    store = reading(main)
    try:
        if args.action == "add":
            return _add(args, main, store)
        if args.action == "list":
            return _list(args, store, table)
        return _expire(args, store)
    finally:
        store.close()

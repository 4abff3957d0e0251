"""The ``raqib`` command line (also ``python -m worker``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from worker import __version__, config, logs, redact
from worker.alerts.payload import iso
from worker.db import Database, database_url
from worker.errors import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
log = structlog.get_logger("raqib.cli")


def _since(value: str) -> datetime:
    """``7d``, ``12h`` … back from now, or an ISO date/time (UTC unless it says otherwise)."""
    try:
        return datetime.now(UTC) - config.parse_duration(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration or ISO time: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _positive_int(value: str) -> int:
    n = int(value)
    if n <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return n


def _load(args: argparse.Namespace, extra_rules: list[str] | None = None) -> config.Config:
    return config.load_config(args.config, extra_rules=extra_rules)


def _report_invalid(exc: ConfigError) -> int:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    print(f"raqib: {len(exc.problems)} configuration problem(s)", file=sys.stderr)
    return EXIT_INVALID


def _store(cfg: config.Config, *, migrate: bool) -> Database:
    from worker.app import open_database  # noqa: PLC0415 (keeps `check` light)

    return open_database(cfg, migrate=migrate)


# -- commands --------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    cfg = _load(args)
    for warning in cfg.warnings:
        print(warning, file=sys.stderr)
    print(f"{cfg.path}: ok ({len(cfg.main.sources)} sources, {len(cfg.main.seeds)} seed folders, "
          f"{len(cfg.ruleset)} rules in {len(cfg.rule_files)} files, "
          f"{len(cfg.main.channels)} channels)")
    return EXIT_OK


def cmd_once(args: argparse.Namespace) -> int:
    from worker.app import build_app  # noqa: PLC0415 (keeps `check` and listings light)

    app = build_app(_load(args))
    try:
        report = app.pipeline.run_once()
    finally:
        app.pipeline.fleet.stop()   # marks the pass stopped, when it registered (quiet rules)
        app.close()
    print(f"new {report.new}, updated {report.updates}, duplicates {report.duplicates}, "
          f"alerts {report.alerts}, "
          f"delivered {report.delivery.sent}, delivery failures {report.delivery.failed}, "
          f"failed sources {len(report.failed_sources)}"
          + (f" ({', '.join(report.failed_sources)})" if report.failed_sources else "")
          + (f", failed tasks: {', '.join(report.failed_tasks)}" if report.failed_tasks else ""))
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    from worker.app import build_app  # noqa: PLC0415
    from worker.daemon import Daemon  # noqa: PLC0415

    app = build_app(_load(args))
    try:
        return Daemon(app.pipeline).run()
    finally:
        app.close()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    store = Database(_main_config(args).database)
    store.migrate()
    store.close()
    print("database at the latest schema")
    return EXIT_OK


def _print_json(rows: list[Any]) -> None:
    json.dump(rows, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _table(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str, int]]) -> None:
    """Rows as aligned text columns: (key, heading, max width)."""
    cells = [[_cell(r.get(k), w) for k, _, w in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h, _) in enumerate(columns)]
    print("  ".join(h.ljust(w) for (_, h, _), w in zip(columns, widths, strict=True)).rstrip())
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())


def _cell(value: Any, width: int) -> str:
    text = (iso(value) if isinstance(value, datetime) else None if value is None
            else str(value)) or "-"
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _main_config(args: argparse.Namespace, *, channels: bool = False) -> config.MainConfig:
    """The main configuration; without *channels* (commands that only read the database and
    rules), channels are not read and need none of their secrets."""
    main, _doc, problems = config.load_main(args.config or config.default_path(),
                                            channels=channels)
    if main is None or problems:
        raise ConfigError(problems)
    return main


class NoDatabase(Exception):
    """A command that only reads found no database where the configuration points."""


def _reading(main: config.MainConfig) -> Database:
    """The database for a command that reads it (listings, ``alerts retry``, ``backtest``).
    These never make one: an embedded SQLite file that is not there — a relative path read
    from another directory, a typo — is an error, not a new empty database. An existing one
    is brought to the latest schema, as ``run`` and ``once`` would."""
    url = make_url(database_url(main.database))
    name = url.database or ""
    if url.get_backend_name() == "sqlite" and name not in ("", ":memory:") and \
            not url.query.get("uri") and not Path(name).is_file():
        raise NoDatabase(
            f"raqib: no database at {Path(name).absolute()} (database: {main.database}; "
            f"relative paths are read from the working directory, {Path.cwd()}); "
            "`raqib db upgrade` or `raqib once` creates it")
    store = Database(main.database)
    if store.dialect == "sqlite":
        store.migrate()
    return store


def _listing(args: argparse.Namespace, fetch: Callable[[Database], list[dict[str, Any]]],
             columns: Sequence[tuple[str, str, int]],
             main: config.MainConfig | None = None) -> int:
    store = _reading(main or _main_config(args))
    try:
        rows = fetch(store)
    finally:
        store.close()
    if args.json:
        _print_json(rows)
    else:
        _table(rows, columns)
    return EXIT_OK


def _sources_opml(args: argparse.Namespace, settings: config.MainConfig) -> int:
    """``sources import FILE.opml`` (a sources: block, printed or --out) and ``sources
    export`` (the configured sources as OPML)."""
    from worker import opml  # noqa: PLC0415 (only these commands need it)

    if args.action == "export":
        if args.file:
            print("raqib: sources export takes no file (use --out FILE)", file=sys.stderr)
            return EXIT_INVALID
        text = opml.write((s.name, redact.url(s.url), s.tags) for s in settings.sources)
    else:
        if not args.file:
            print("raqib: sources import needs an OPML file", file=sys.stderr)
            return EXIT_INVALID
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            print(f"raqib: {args.file}: cannot read: {exc.strerror}", file=sys.stderr)
            return EXIT_INVALID
        names = {s.name for s in settings.sources} | {config.seed_source_name(f)
                                                       for f in settings.seeds}
        try:
            feeds, problems = opml.read(data, args.file, taken=names,
                                        known_urls=[s.url for s in settings.sources])
        except opml.OpmlError as exc:
            print(f"raqib: {exc}", file=sys.stderr)
            return EXIT_INVALID
        for problem in problems:
            print(problem, file=sys.stderr)
        text = opml.as_yaml(feeds)
        print(f"raqib: {len(feeds)} feed(s) read from {args.file}, {len(problems)} skipped",
              file=sys.stderr)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_sources(args: argparse.Namespace) -> int:
    settings = _main_config(args)
    if args.action is not None:
        return _sources_opml(args, settings)
    if args.file or args.out:
        print("raqib: usage: raqib sources [--json] | sources import FILE.opml [--out F] | "
              "sources export [--out F]", file=sys.stderr)
        return EXIT_INVALID
    configured = {s.name for s in settings.sources} | {config.seed_source_name(f)
                                                       for f in settings.seeds}

    def fetch(store: Database) -> list[dict[str, Any]]:
        return [{"name": s.name, "url": redact.url(s.url), "last_poll": iso(s.last_poll),
                 "last_success": iso(s.last_success), "last_error": s.last_error,
                 "failures": s.failures, "next_poll": iso(s.next_poll),
                 "moved_to": redact.url(s.moved_to) if s.moved_to else None}
                for s in store.sources.all() if s.name in configured]

    return _listing(args, fetch, [("name", "NAME", 24), ("last_poll", "LAST POLL", 20),
                                  ("last_success", "LAST SUCCESS", 20),
                                  ("failures", "FAILURES", 8), ("next_poll", "NEXT POLL", 20),
                                  ("last_error", "LAST ERROR", 60),
                                  ("moved_to", "MOVED TO", 50)], settings)


def cmd_workers(args: argparse.Namespace) -> int:
    settings = _main_config(args)
    lease = settings.workers.lease

    def fetch(store: Database) -> list[dict[str, Any]]:
        from worker.db.leases import differences  # noqa: PLC0415

        now = datetime.now(UTC)
        infos = store.leases.workers()
        running = [w for w in infos if w.state(now, lease) == "running"]
        schema = store.schema_version()
        rows = []
        for w in infos:
            state = w.state(now, lease)
            rows.append({
                "id": w.id, "host": w.host, "pid": w.pid, "version": w.version,
                "started": iso(w.started_at), "last_beat": iso(w.beat_at), "state": state,
                "heartbeat_age": round((now - w.beat_at).total_seconds(), 3),
                "holds": {"sources": w.sources, "deliveries": w.deliveries, "tasks": w.tasks},
                "differs": differences(w, running, database_schema=schema)
                if state == "running" else [],
                "schema": w.schema_version})
        return rows

    def table(store: Database) -> list[dict[str, Any]]:
        rows = fetch(store)
        for r in rows:
            holds = r["holds"]
            r["holding"] = ", ".join(
                [*holds["sources"], *holds["tasks"]]
                + ([f"{holds['deliveries']} deliveries"] if holds["deliveries"] else []))
            r["differs_text"] = ", ".join(r["differs"]) or None
        return rows

    return _listing(args, fetch if args.json else table,
                    [("id", "ID", 26), ("host", "HOST", 24), ("pid", "PID", 8),
                     ("state", "STATE", 8), ("started", "STARTED", 20),
                     ("last_beat", "LAST BEAT", 20), ("version", "VERSION", 12),
                     ("differs_text", "DIFFERS", 20), ("holding", "HOLDS", 60)], settings)


def cmd_articles(args: argparse.Namespace) -> int:
    def fetch(store: Database) -> list[dict[str, Any]]:
        rows = store.listings.articles(since=args.since, source=args.source, limit=args.limit)
        return [{"id": r["id"], "source": r["source"], "url": r["url"], "title": r["title"],
                 "published": iso(r["published"]), "language": r["language"],
                 "story": None if r["story"] is None else str(r["story"]),
                 "version": r["version"]} for r in rows]

    return _listing(args, fetch, [("id", "ID", 8), ("published", "PUBLISHED", 20),
                                  ("source", "SOURCE", 16), ("language", "LANG", 4),
                                  ("story", "STORY", 8), ("version", "V", 2),
                                  ("title", "TITLE", 70),
                                  ("url", "URL", 60)])


def cmd_stories(args: argparse.Namespace) -> int:
    def fetch(store: Database) -> list[dict[str, Any]]:
        rows = store.listings.stories(since=args.since)
        return [{"id": str(s["id"]), "title": s["title"], "created": iso(s["created_at"]),
                 "sources": s["sources"],
                 "articles": [{**a, "published": iso(a["published"])} for a in s["articles"]]}
                for s in rows]

    if args.json:
        return _listing(args, fetch, [])
    return _listing(args, lambda store: [
        {**s, "count": len(s["articles"]), "sources": ", ".join(s["sources"])}
        for s in fetch(store)], [("id", "STORY", 8), ("created", "CREATED", 20),
                                 ("count", "ARTICLES", 8), ("sources", "SOURCES", 40),
                                 ("title", "TITLE", 70)])


def cmd_alerts(args: argparse.Namespace) -> int:
    if args.action == "retry":
        return _retry_alert(args)
    if args.action is not None or args.alert_id is not None:
        print("raqib: usage: raqib alerts [--since D] [--json] | raqib alerts retry ID",
              file=sys.stderr)
        return EXIT_INVALID

    main = _main_config(args)

    def fetch(store: Database) -> list[dict[str, Any]]:
        store.listings.tags = main.source_tags()
        payloads = store.listings.alert_payloads(since=args.since)
        if args.json:
            return payloads
        states = store.outbox.of_alerts([p["id"] for p in payloads])
        return [{"created": p["created_at"], "severity": p["rule"]["severity"],
                 "rule": p["rule"]["id"], "kind": p["kind"], "title": alert_line(p),
                 "id": p["id"],
                 "deliveries": f"silenced by {p['silenced_by']}" if p["silenced_by"] else
                 ", ".join(f"{d.channel}:{d.status}" for d in states[p["id"]])}
                for p in payloads]

    return _listing(args, fetch, [("created", "CREATED", 20), ("severity", "SEVERITY", 8),
                                  ("rule", "RULE", 28), ("kind", "KIND", 10),
                                  ("title", "TITLE", 60), ("deliveries", "DELIVERIES", 40),
                                  ("id", "ID", 26)], main)


def alert_line(p: dict[str, Any]) -> str:
    """One line about an alert payload for a listing: its article's title, with what its
    kind adds (a spike's count, what is new, a quiet source)."""
    if p["kind"] == "quiet":
        source, spell = p["source"]["name"], p.get("quiet") or {}
        if p.get("resolved"):
            return f"{source}: news again at {spell.get('resolved_at')} (RESOLVED)"
        return f"{source}: no new article since {spell.get('since')}"
    title = str(p["article"]["title"] or p["article"]["url"] or "")
    if p["kind"] == "spike":
        return f"[{p['count']} stories, baseline {p['baseline']}] {title}"
    if p["kind"] == "first_seen":
        new = ", ".join(n["label"] for n in p["first_seen"]["new"]) or "first story"
        return f"[new: {new}] {title}"
    return title


def _retry_alert(args: argparse.Namespace) -> int:
    if not args.alert_id:
        print("raqib: alerts retry needs an alert id (see `raqib alerts`)", file=sys.stderr)
        return EXIT_INVALID
    store = _reading(_main_config(args))
    try:
        if not store.outbox.alert_exists(args.alert_id):
            print(f"raqib: no alert {args.alert_id}", file=sys.stderr)
            return EXIT_FAILED
        [payload] = store.listings.alert_payloads(ids=[args.alert_id])
        if payload["silenced_by"]:
            print(f"raqib: alert {args.alert_id} was held back by silence "
                  f"{payload['silenced_by']}: it has no deliveries to retry", file=sys.stderr)
            return EXIT_FAILED
        count = store.outbox.retry_alert(args.alert_id, datetime.now(UTC))
    finally:
        store.close()
    print(f"alert {args.alert_id}: {count} delivery(ies) due now; the daemon (or the next "
          "`raqib once`) sends them")
    return EXIT_OK


def cmd_silence(args: argparse.Namespace) -> int:
    from worker import silences_cli  # noqa: PLC0415 (only this command needs it)

    return silences_cli.run(args, _main_config(args), _reading, _table)


def cmd_test_channel(args: argparse.Namespace) -> int:
    """Send a sample alert through one channel and say how it went."""
    from worker.alerts.channels import build_channels  # noqa: PLC0415
    from worker.alerts.payload import sample  # noqa: PLC0415
    from worker.errors import DeliveryError  # noqa: PLC0415

    main = _main_config(args, channels=True)
    if args.name not in main.channels:
        print(f"raqib: no channel {args.name!r} (channels: {', '.join(main.channels) or '-'})",
              file=sys.stderr)
        return EXIT_INVALID
    with httpx.Client(trust_env=True) as http:
        channel = build_channels({args.name: main.channels[args.name]}, http=http)[args.name]
        try:
            channel.send(sample())
        except DeliveryError as exc:
            print(f"{args.name}: failed: {exc}", file=sys.stderr)
            return EXIT_FAILED
    print(f"{args.name}: sample alert delivered")
    return EXIT_OK


def cmd_backtest(args: argparse.Namespace) -> int:
    from worker.backtest import backtest  # noqa: PLC0415 (only this command needs it)

    main = _main_config(args)
    store = _reading(main)
    try:
        results = backtest(main, store, args.rules, since=args.since,
                           progress=sys.stderr.isatty() and not args.json)
    finally:
        store.close()
    if args.json:
        _print_json([r.as_dict() for r in results])
        return EXIT_OK
    for r in results:
        print(f"{r.rule_id} ({r.severity}): {len(r.hits)} alert(s)")
        for hit, shown in zip(r.hits, r.as_dict()["alerts"], strict=True):
            silenced = f"  (silenced by {hit.silenced_by})" if hit.silenced_by else ""
            print(f"  {iso(hit.at) or '-':20}  {hit.kind:10}  {hit.source:16}  "
                  f"{alert_line(shown)}{silenced}")
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH",
                        help=f"main configuration (default {config.DEFAULT_CONFIG} "
                             "or $RAQIB_CONFIG)")
    common.add_argument("--log-level", default=argparse.SUPPRESS,
                        choices=["debug", "info", "warning", "error"])
    common.add_argument("--log-json", action="store_true", default=argparse.SUPPRESS,
                        help="JSON log lines even on a terminal")
    parser = argparse.ArgumentParser(prog="raqib", parents=[common],
                                     description="Watch the news; raise alerts on watch rules.")
    parser.add_argument("--version", action="version", version=f"raqib {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], text: str) -> Any:
        p = sub.add_parser(name, parents=[common], help=text, description=text)
        p.set_defaults(func=fn)
        return p

    add("run", cmd_run, "run the daemon until SIGTERM or SIGINT")
    add("once", cmd_once, "one full pass: poll every source and seed folder, match, deliver")
    add("check", cmd_check, "validate the configuration and every rule file")
    bt = add("backtest", cmd_backtest, "replay rule files over stored articles; sends nothing")
    bt.add_argument("rules", nargs="+", metavar="RULES", help="rule files or folders")
    bt.add_argument("--since", type=_since, help="only articles stored since (7d, 2026-11-01)")
    bt.add_argument("--json", action="store_true")
    for name, fn, text in (("sources", cmd_sources, "sources and their health"),
                           ("articles", cmd_articles, "stored articles, newest first"),
                           ("stories", cmd_stories, "stories: articles grouped across outlets"),
                           ("alerts", cmd_alerts, "alerts raised, newest first"),
                           ("workers", cmd_workers, "the workers sharing this database")):
        p = add(name, fn, text)
        p.add_argument("--json", action="store_true", help="one JSON array")
        if name not in ("sources", "workers"):
            p.add_argument("--since", type=_since, help="only since (1d, 12h, or an ISO time)")
        if name == "articles":
            p.add_argument("--source", metavar="NAME")
            p.add_argument("--limit", type=_positive_int, metavar="N")
        if name == "sources":
            p.add_argument("action", nargs="?", choices=["import", "export"],
                           help="import FILE.opml: a sources: block from an OPML file; "
                                "export: the configured sources as OPML")
            p.add_argument("file", nargs="?", metavar="FILE.opml")
            p.add_argument("--out", metavar="FILE", help="import/export: write here, not to "
                                                          "standard output")
        if name == "alerts":
            p.add_argument("action", nargs="?", choices=["retry"],
                           help="retry ID: send an alert's undelivered deliveries again")
            p.add_argument("alert_id", nargs="?", metavar="ID")
    si = add("silence", cmd_silence, "mute alerts for a while: add, list, expire")
    si.add_argument("action", choices=["add", "list", "expire"])
    si.add_argument("silence_id", nargs="?", metavar="ID", help="expire: the silence's id")
    si.add_argument("--rule", metavar="ID", action="append", help="add: alerts of this rule")
    si.add_argument("--source", metavar="NAME", action="append",
                    help="add: of this source (or tag:NAME)")
    si.add_argument("--match", metavar="TERM", action="append",
                    help="add: about an article holding this term (any term form, @entity too)")
    si.add_argument("--for", dest="duration", metavar="DURATION", help="add: 2h, 12h, 3d …")
    si.add_argument("--until", metavar="TIME", help="add: until an ISO time (UTC unless given)")
    si.add_argument("--start", metavar="TIME", help="add: from an ISO time (default now)")
    si.add_argument("--comment", default="", help="add: why")
    si.add_argument("--by", default=None, help="add: who (default $USER)")
    si.add_argument("--all", action="store_true", help="list: expired silences too")
    si.add_argument("--json", action="store_true")
    tc = add("test-channel", cmd_test_channel, "send a sample alert through one channel")
    tc.add_argument("name", metavar="NAME")
    db = sub.add_parser("db", parents=[common], help="database maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    up = dbsub.add_parser("upgrade", parents=[common], help="apply the migrations (Alembic)")
    up.set_defaults(func=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.config = getattr(args, "config", None)
    logs.configure(json=True if getattr(args, "log_json", False) else None,
                   level=getattr(args, "log_level", "info"))
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        return _report_invalid(exc)
    except NoDatabase as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
    except DBAPIError as exc:   # the database is unreachable or refused us: one clear line
        reason = str(exc.orig or exc).strip().splitlines()[0]
        print(f"raqib: database: {redact.scrub(reason)}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:   # `raqib alerts --json | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return code

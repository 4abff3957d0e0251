"""The main configuration and rule files: pydantic models, loading, and every check that needs
no database. The models are the one place for defaults; nothing downstream reads raw YAML.
The rule files' models and loading live in ``worker.rules`` (``model``, ``load``) and units in
``worker.units``; their names are re-exported here (``config.Rule``, ``config.load_rules`` …).

``load_config`` gathers *all* problems (YAML syntax, unknown keys, wrong types, unset ``${VAR}``,
unknown channels and entities, duplicate ids, bad terms) and raises them together as a
``ConfigError``, each located as ``FILE:LINE``.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import gc
import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, TypeAdapter, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from worker import redact, yamlfile
from worker.errors import ConfigError, Problem
from worker.rules import RuleSet, compile_rules
from worker.rules.load import LoadedRules, known_keys, load_rules, rule_files, validate
from worker.rules.model import (
    FIELDS,
    MODEL_CONFIG,
    NAME_MAX,
    Entity,
    FieldName,
    Rule,
    RulesFile,
    Severity,
    When,
)
from worker.units import (
    DigestSchedule,
    DigestSetting,
    Duration,
    PositiveDuration,
    Rate,
    RateSetting,
    Size,
    parse_duration,
    parse_size,
)

DEFAULT_CONFIG = "config/raqib.yaml"
DEFAULT_DATABASE = "sqlite:///var/raqib.db"


# --- main configuration ---------------------------------------------------------------------


class Model(BaseModel):
    model_config = MODEL_CONFIG


Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]


def check_url(url: str) -> str:
    """A feed URL: http(s) with a host (and a valid port), or file:/// with an absolute path."""
    try:
        parts = urlsplit(url)
        port = parts.port   # raises on a bad port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme in {"http", "https"}:
        if not parts.hostname:
            raise ValueError("an http(s) URL needs a host")
        if port == 0:
            raise ValueError("port 0 is not a port")
    elif parts.scheme == "file":
        if parts.netloc not in {"", "localhost"} or not parts.path.startswith("/"):
            raise ValueError("a file URL is file:///absolute/path (three slashes)")
    else:
        raise ValueError("url must start with http://, https:// or file://")
    return url


def check_database(url: str) -> str:
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {exc}") from None
    if backend not in {"sqlite", "postgresql", "postgres"}:
        raise ValueError("database is sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
    return url


class Source(Model):
    name: Name
    url: Annotated[str, AfterValidator(check_url)]
    interval: PositiveDuration = timedelta(minutes=15)
    tags: list[str] = []
    timeout: PositiveDuration = timedelta(seconds=30)
    max_bytes: Size = 10 * 1000**2
    headers: dict[str, str] = {}
    full_text: bool = False
    allow_private: bool = False


def check_secret(value: str | None) -> str | None:
    """A Standard Webhooks secret: ``whsec_`` and base64 (the prefix is optional)."""
    if value is None:
        return value
    try:
        base64.b64decode(value.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret is 'whsec_' followed by base64 (Standard Webhooks), "
                         "e.g. whsec_$(openssl rand -base64 32)") from None
    return value


class _Channel(Model):
    # "hourly", or "daily 08:00 [Zone/Name]": alerts are gathered into one message then
    digest: DigestSetting = None
    rate: RateSetting = None   # "30/min": Rate(count=30, per=timedelta(minutes=1))
    max_attempts: int | None = Field(default=None, gt=0)


class EmailChannel(_Channel):
    type: Literal["email"]
    host: str
    port: int = Field(default=587, gt=0, lt=65536)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    timeout: PositiveDuration = timedelta(seconds=30)
    templates: str | None = None       # a folder of Jinja2 templates overriding the defaults


class WebhookChannel(_Channel):
    type: Literal["webhook"]
    url: str
    secret: Annotated[str | None, AfterValidator(check_secret)] = Field(default=None, repr=False)
    format: Literal["generic", "slack", "discord", "teams"] = "generic"
    timeout: PositiveDuration = timedelta(seconds=10)
    headers: dict[str, str] = {}


class FileChannel(_Channel):
    type: Literal["file"]
    path: str


Channel = Annotated[EmailChannel | WebhookChannel | FileChannel, Field(discriminator="type")]


class Defaults(Model):
    notify: list[str] = []


def check_listen(value: str) -> str:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) with a port from 0 (any free one) to 65535."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen is HOST:PORT, such as 127.0.0.1:8780, not {value!r}")
    host = host.strip("[]")
    if not host or not re.fullmatch(r"[A-Za-z0-9.:_-]+", host):
        raise ValueError(f"listen: {host!r} is not a host name or address")
    return value.strip()


def is_loopback(listen: str) -> bool:
    """Whether ``HOST:PORT`` only listens on this machine."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False   # a host name: whatever it resolves to, not known to be loopback


class Http(Model):
    """The daemon's endpoint. Beyond loopback it needs ``token`` (sent as ``Authorization:
    Bearer TOKEN``, or as the password of basic authentication) for everything but
    ``/healthz``."""

    listen: Annotated[str, AfterValidator(check_listen)] = "127.0.0.1:8780"
    token: str | None = Field(default=None, repr=False, min_length=16)

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> Http:
        if self.token is None and not is_loopback(self.listen):
            raise ValueError(f"http.token is required when listen ({self.listen}) is not a "
                             "loopback address: the dashboard and /metrics would be open to "
                             "the network (use token: ${RAQIB_HTTP_TOKEN})")
        return self


class Fetching(Model):
    """How many requests run at once: in all, and to any one host."""

    concurrency: int = Field(default=16, ge=1, le=256)
    per_host: int = Field(default=2, ge=1, le=64)


class Workers(Model):
    """Several workers on one database: how long a claim lasts unless renewed (``lease``), and
    how often each worker records itself and renews its claims (``heartbeat``)."""

    lease: PositiveDuration = timedelta(seconds=60)
    heartbeat: PositiveDuration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _beats_within_lease(self) -> Workers:
        if self.heartbeat * 2 > self.lease:
            raise ValueError(f"workers.heartbeat ({self.heartbeat}) must be at most half of "
                             f"workers.lease ({self.lease}), or leases would lapse between "
                             "beats")
        return self


class MainConfig(Model):
    database: Annotated[str, AfterValidator(check_database)] = DEFAULT_DATABASE
    seeds: list[str] = []
    rules: list[str] = []
    sources: list[Source] = []
    channels: dict[Name, Channel] = {}
    defaults: Defaults = Defaults()
    http: Http = Http()
    fetch: Fetching = Fetching()
    workers: Workers = Workers()
    retention: Duration | None = None

    def source_tags(self) -> dict[str, tuple[str, ...]]:
        """Each source's tags by name; a seed folder is tagged ``seed``."""
        tags = {s.name: tuple(s.tags) for s in self.sources}
        return tags | {seed_source_name(f): ("seed",) for f in self.seeds}


# --- loading --------------------------------------------------------------------------------


_MAIN = TypeAdapter(MainConfig)
MAIN_KEYS = known_keys(MainConfig, Source, EmailChannel, WebhookChannel, FileChannel, Defaults,
                       Http, Fetching, Workers)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many long-lived objects. Loading
    100,000 rules allocates millions of objects, and each full collection would walk them all:
    with it running, loading takes several times longer. Reference counting still frees
    everything short-lived."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class Config:
    """A valid configuration: the main file, its rules compiled, and where they came from."""

    path: str
    main: MainConfig
    ruleset: RuleSet
    rule_files: list[str]
    warnings: list[Problem]
    # The entities of the rule files, as loaded (for terms compiled later: silences).
    entities: dict[str, Any] = field(default_factory=dict)

    def entity_label(self, eid: str) -> str:
        """An entity's label, or its id when it has none."""
        found = self.entities.get(eid)
        return (found[0].label or eid) if found else eid

    def notify_of(self, rule: Rule) -> list[str]:
        return rule.notify if rule.notify is not None else self.main.defaults.notify


def seed_source_name(folder: str) -> str:
    """The source name of a seed folder: its path as written, without a trailing slash."""
    return folder.rstrip("/\\") or folder


def _raw_names(data: object, key: str) -> list[object]:
    """Best-effort read of a list or mapping key from a main config that failed validation,
    so the rest of the configuration can still be checked."""
    value = data.get(key) if isinstance(data, dict) else None
    return list(value) if isinstance(value, list | dict) else []


def _block_lines(doc: yamlfile.Document, key: str) -> range:
    """The lines of a top-level block (empty when there is none)."""
    data = doc.data if isinstance(doc.data, dict) else {}
    if key not in data:
        return range(0)
    starts = sorted((doc.line_of(data, k) or 0) for k in data)
    first = doc.line_of(data, key) or 0
    after = [n for n in starts if n > first]
    return range(first, after[0] if after else 1 << 30)


def load_main(path: str, env: Mapping[str, str] | None = None, *,
              channels: bool = True) -> tuple[MainConfig | None, yamlfile.Document | None,
                                              list[Problem]]:
    """The main configuration file, checked. With *channels* False (commands that only read
    the database and rules), the channels and ``http`` are left out unread: an unset
    ``${VAR}`` in a channel's secret or the HTTP token is no problem for them."""
    doc, problems = yamlfile.load(path, env=os.environ if env is None else env)
    if doc is None:
        return None, None, problems
    if doc.data is None:
        problems.append(doc.problem((), "the configuration file is empty (see "
                                        "config/raqib.example.yaml)"))
        return None, doc, problems
    if not channels and isinstance(doc.data, dict):
        skipped = [_block_lines(doc, key) for key in ("channels", "http")]
        problems = [p for p in problems if not any(p.line in r for r in skipped)]
        doc.data.pop("channels", None)
        doc.data.pop("http", None)
        if isinstance(doc.data.get("defaults"), dict):
            doc.data["defaults"].pop("notify", None)
    main, found = validate(_MAIN, doc, keys=MAIN_KEYS)
    problems.extend(found)
    names_of_channels = set(main.channels) if main else {
        c for c in _raw_names(doc.data, "channels") if isinstance(c, str)}
    defaults = doc.data.get("defaults") if isinstance(doc.data, dict) else None
    notify = defaults.get("notify") if isinstance(defaults, dict) else None
    for i, ch in enumerate(notify if isinstance(notify, list) else []):
        if isinstance(ch, str) and ch not in names_of_channels:
            problems.append(doc.problem(("defaults", "notify", i), f"unknown channel {ch!r}"))
    if main is not None:
        names = {seed_source_name(f): "a seed folder" for f in main.seeds}
        for i, src in enumerate(main.sources):
            if src.name in names:
                problems.append(doc.problem(("sources", i, "name"), (
                    f"duplicate source name {src.name!r} (also {names[src.name]})")))
            names[src.name] = "another source"
        redact.add_secrets(getattr(ch, attr, None) for ch in main.channels.values()
                           for attr in ("password", "secret"))
        redact.add_secrets([main.http.token])
    return main, doc, problems


def default_path() -> str:
    return os.environ.get("RAQIB_CONFIG") or DEFAULT_CONFIG


def load_config(path: str | None = None, env: Mapping[str, str] | None = None,
                extra_rules: list[str] | None = None) -> Config:
    """Load and check everything; raise ConfigError listing every problem."""

    path = path or default_path()
    with paused_gc():
        return _load_config(path, env, extra_rules)


def did_you_mean(value: str, known: set[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of *known*, or ""."""
    close = difflib.get_close_matches(value, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _warnings(loaded: LoadedRules, source_names: set[str] | None,
              tags: set[str] | None) -> list[Problem]:
    """What is valid but will not do what its writer may expect: a rule's sources (or a
    quiet rule's) that no configured source is, or has as a tag (*tags* None: not checked).
    Warnings, not errors: rule files may be shared by deployments with other sources."""
    warnings: list[Problem] = []
    if source_names is None:
        return warnings
    for rule, rdoc, where in loaded.rules:
        loc, names = (*where, "sources"), rule.sources or []
        if rule.quiet is not None:
            loc, names = (*where, "quiet", "sources"), rule.quiet.sources or []
            if rule.quiet.sources == []:
                warnings.append(rdoc.problem(loc, "warning: quiet: sources: [] watches no "
                                                  "source (leave it out to watch every feed)"))
        for name in names:
            if name.startswith("tag:"):
                if tags is None or name[4:] in tags:
                    continue
                warnings.append(rdoc.problem(loc, (
                    f"warning: no configured source has the tag {name[4:]!r}"
                    f"{did_you_mean(name[4:], tags)}")))
            elif name not in source_names:
                warnings.append(rdoc.problem(loc, (
                    f"warning: no configured source is named {name!r}"
                    f"{did_you_mean(name, source_names)}")))
    return warnings


def _retention_warnings(loaded: LoadedRules, retention: timedelta) -> list[Problem]:
    """Rules that count hits further back than retention keeps articles (their hits go with
    the articles): a window or a spike's baseline would count less than it should."""
    out: list[Problem] = []
    for rule, rdoc, where in loaded.rules:
        back = rule.when.within if rule.when is not None else \
            rule.spike.within + rule.spike.baseline if rule.spike is not None else None
        if back is not None and back > retention:
            out.append(rdoc.problem(where, (
                f"warning: rule {rule.id!r} counts matches {back} back, but retention keeps "
                f"articles {retention}: it would count fewer than there were")))
    return out


def _load_config(path: str, env: Mapping[str, str] | None,
                 extra_rules: list[str] | None) -> Config:
    main, doc, problems = load_main(path, env)
    if doc is None:
        raise ConfigError(problems)
    source_names: set[str] | None = None
    tags: set[str] | None = None
    if main is not None:
        rule_paths, channels = list(main.rules), set(main.channels)
        source_names = {s.name for s in main.sources} | {seed_source_name(f) for f in main.seeds}
        # With no feeds at all (a seeds-only set-up such as the shipped one), rule files
        # written for feeds name tags that are not there yet: nothing to warn about.
        tags = {t for ts in main.source_tags().values() for t in ts} if main.sources else None
    else:   # still check the rule files the config names, as far as it can be read
        rule_paths = [r for r in _raw_names(doc.data, "rules") if isinstance(r, str)]
        channels = {c for c in _raw_names(doc.data, "channels") if isinstance(c, str)}
    loaded, found = load_rules([*rule_paths, *(extra_rules or [])])
    problems.extend(found)
    for rule, rdoc, where in loaded.rules:
        problems.extend(rdoc.problem((*where, "notify"), f"unknown channel {ch!r}")
                        for ch in rule.notify or [] if ch not in channels)
    warnings = _warnings(loaded, source_names, tags)
    if main is not None and main.retention is not None:
        warnings += _retention_warnings(loaded, main.retention)
    if main is not None:
        for i, folder in enumerate(main.seeds):
            if not Path(folder).is_dir():
                warnings.append(doc.problem(("seeds", i), (
                    f"warning: seed folder {folder!r} does not exist (relative paths are read "
                    f"from the working directory, {Path.cwd()}); it is read once it does")))
    ruleset, found = compile_rules(loaded)
    problems.extend(found)
    if problems or main is None:
        raise ConfigError(problems)
    return Config(path, main, ruleset, loaded.files, warnings, dict(loaded.entities))


__all__ = [
    "FIELDS", "NAME_MAX", "Channel", "Config", "DigestSchedule", "Duration", "EmailChannel",
    "Entity", "FieldName", "FileChannel", "LoadedRules", "MainConfig", "PositiveDuration",
    "Rate", "Rule", "RulesFile", "Severity", "Size", "Source", "WebhookChannel", "When",
    "load_config", "load_main", "load_rules", "parse_duration",
    "parse_size", "paused_gc", "rule_files",
]

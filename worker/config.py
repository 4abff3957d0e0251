"""The main configuration and rule files: pydantic models, loading, and every check that needs
no database. The models are the one place for defaults; nothing downstream reads raw YAML.

``load_config`` gathers *all* problems (YAML syntax, unknown keys, wrong types, unset ``${VAR}``,
unknown channels and entities, duplicate ids, bad terms) and raises them together as a
``ConfigError``, each located as ``FILE:LINE``.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import gc
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from worker import redact, units, yamlfile
from worker.errors import ConfigError, Problem
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

Severity = Literal["low", "medium", "high", "critical"]
FieldName = Literal["title", "summary", "body"]
FIELDS: tuple[FieldName, ...] = ("title", "summary", "body")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- main configuration ---------------------------------------------------------------------


NAME_MAX = 200   # source names, channel names and rule ids are stored in 200-character columns
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


def parse_rate(value: str | Rate) -> tuple[int, float]:
    """``30/min`` (or a channel's parsed ``rate``) -> (30, 60.0): that many messages per that
    many seconds. Channels hold a ``units.Rate``; this tuple form is for older callers."""
    rate = units.parse_rate(value)
    return rate.count, rate.seconds


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


def parse_digest(value: str | DigestSchedule) -> tuple[str, int, int, str]:
    """``hourly`` -> ("hourly", 0, 0, "UTC"); ``daily 08:00 Asia/Baghdad`` -> ("daily", 8, 0,
    "Asia/Baghdad"). Channels hold a ``units.DigestSchedule``; this tuple form is for older
    callers."""
    d = units.parse_digest(value)
    return d.kind, d.hour, d.minute, d.zone


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


class Http(Model):
    listen: str = "127.0.0.1:8780"


class Fetching(Model):
    """How many requests run at once: in all, and to any one host."""

    concurrency: int = Field(default=16, ge=1, le=256)
    per_host: int = Field(default=2, ge=1, le=64)


class MainConfig(Model):
    database: Annotated[str, AfterValidator(check_database)] = DEFAULT_DATABASE
    seeds: list[str] = []
    rules: list[str] = []
    sources: list[Source] = []
    channels: dict[Name, Channel] = {}
    defaults: Defaults = Defaults()
    http: Http = Http()
    fetch: Fetching = Fetching()
    retention: Duration | None = None

    def source_tags(self) -> dict[str, tuple[str, ...]]:
        """Each source's tags by name; a seed folder is tagged ``seed``."""
        tags = {s.name: tuple(s.tags) for s in self.sources}
        return tags | {seed_source_name(f): ("seed",) for f in self.seeds}


# --- rule files -----------------------------------------------------------------------------


class Entity(Model):
    label: str | None = None
    names: list[str] = Field(min_length=1)


class When(Model):
    count: int = Field(ge=1)
    within: PositiveDuration
    distinct_sources: bool = False


class Rule(Model):
    id: str = Field(min_length=1, max_length=NAME_MAX, pattern=r"^[^\s@]+$")
    title: str | None = None
    severity: Severity = "medium"
    match: Any   # a term or an expression; worker.rules checks its shape with FILE:LINE errors
    fields: tuple[FieldName, ...] = FIELDS
    languages: list[str] | None = None
    sources: list[str] | None = None
    notify: list[str] | None = None
    when: When | None = None
    throttle: PositiveDuration | None = None

    @property
    def display_title(self) -> str:
        return self.title or self.id


class RulesFile(Model):
    entities: dict[str, Entity] = {}
    rules: list[Rule] = []


_MAIN = TypeAdapter(MainConfig)
_RULE = TypeAdapter(Rule)
_ENTITY = TypeAdapter(Entity)


@dataclass(frozen=True)
class LoadedRules:
    """Rules and entities from rule files, each remembering where it was written."""

    rules: list[tuple[Rule, yamlfile.Document, tuple[Any, ...]]]   # rule, its file, its path
    entities: dict[str, tuple[Entity, yamlfile.Document, tuple[Any, ...]]]
    files: list[str]


def _describe(err: Mapping[str, Any], model_fields: set[str] | None = None) -> str:
    loc = [str(p) for p in err["loc"]]
    kind = err["type"]
    if kind == "extra_forbidden":
        key = loc[-1]
        hint = difflib.get_close_matches(key, sorted(model_fields or ()), n=1)
        return f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if kind == "missing":
        return f"missing key {loc[-1]!r}"
    where = ".".join(p for p in loc if p not in {"email", "webhook", "file", "function-before"})
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def _known_keys(loc: tuple[Any, ...]) -> set[str]:
    """Every key name of the models, for did-you-mean hints."""
    keys: set[str] = set()
    for model in (MainConfig, Source, EmailChannel, WebhookChannel, FileChannel, Defaults, Http,
                  Fetching, RulesFile, Rule, Entity, When):
        keys.update(f.alias or name for name, f in model.model_fields.items())
    return keys


def _validate(adapter: TypeAdapter[Any], doc: yamlfile.Document, data: Any = None,
              prefix: tuple[Any, ...] = ()) -> tuple[Any, list[Problem]]:
    """Validate *data* (default: the whole document) found at *prefix* in *doc*."""
    if data is None:
        data = doc.data if doc.data is not None else {}
    try:
        return adapter.validate_python(data), []
    except ValidationError as exc:
        out = []
        for e in exc.errors(include_url=False):
            loc = (*prefix, *e["loc"])
            out.append(doc.problem(loc, _describe({**e, "loc": loc}, _known_keys(loc))))
        return None, out


def _validate_rules_file(doc: yamlfile.Document) -> tuple[RulesFile, list[Problem]]:
    """Validate entity by entity and rule by rule, so one mistake hides nothing else."""
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        return RulesFile(), [doc.problem((), "a rule file is a mapping of entities: and rules:")]
    problems = [doc.problem((key,), f"unknown key {key!r} (a rule file holds entities: and "
                                    "rules:)") for key in data if key not in ("entities", "rules")]
    entities: dict[str, Entity] = {}
    raw_entities = data.get("entities") or {}
    if not isinstance(raw_entities, dict):
        problems.append(doc.problem(("entities",), "entities: is a mapping of id to entity"))
        raw_entities = {}
    for eid, raw in raw_entities.items():
        entity, found = _validate(_ENTITY, doc, raw, ("entities", eid))
        problems.extend(found)
        if entity is not None:
            entities[str(eid)] = entity
    rules: list[Rule] = []
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        problems.append(doc.problem(("rules",), "rules: is a list of rules"))
        raw_rules = []
    for i, raw in enumerate(raw_rules):
        rule, found = _validate(_RULE, doc, raw, ("rules", i))
        problems.extend(found)
        rules.append(rule)   # None keeps the index; skipped below
    return RulesFile.model_construct(entities=entities, rules=rules), problems


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


def rule_files(paths: list[str]) -> tuple[list[Path], list[Problem]]:
    """Rule files named by *paths*: files as given, folders as their ``*.yaml``/``*.yml`` files
    in name order."""
    files: list[Path] = []
    problems: list[Problem] = []
    for entry in paths:
        p = Path(entry)
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir()
                                if f.suffix in {".yaml", ".yml"} and f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            problems.append(Problem(entry, None, "no such rule file or folder"))
    return files, problems


def load_rules(paths: list[str]) -> tuple[LoadedRules, list[Problem]]:
    """Load rule files, checking keys, types and duplicate ids (not yet terms or references)."""
    files, problems = rule_files(paths)
    rules: list[tuple[Rule, yamlfile.Document, tuple[Any, ...]]] = []
    entities: dict[str, tuple[Entity, yamlfile.Document, tuple[Any, ...]]] = {}
    rule_ids: dict[str, str] = {}
    for path in files:
        doc, found = yamlfile.load(path)
        problems.extend(found)
        if doc is None:
            continue
        parsed, found = _validate_rules_file(doc)
        problems.extend(found)
        for eid, entity in parsed.entities.items():
            where = ("entities", eid)
            if eid in entities:
                first = entities[eid]
                problems.append(doc.problem(where, f"duplicate entity id {eid!r} (first in "
                                            f"{first[1].path}:{first[1].locate(first[2])})"))
                continue
            entities[eid] = (entity, doc, where)
        for i, rule in enumerate(parsed.rules):
            if rule is None:
                continue
            id_loc = ("rules", i, "id")
            if rule.id in rule_ids:
                problems.append(doc.problem(id_loc, f"duplicate rule id {rule.id!r} "
                                            f"(first at {rule_ids[rule.id]})"))
                continue
            rule_ids[rule.id] = f"{doc.path}:{doc.locate(id_loc)}"
            rules.append((rule, doc, ("rules", i)))
    return LoadedRules(rules, entities, [str(f) for f in files]), problems


@dataclass(frozen=True)
class Config:
    """A valid configuration: the main file, its rules compiled, and where they came from."""

    path: str
    main: MainConfig
    ruleset: Any  # worker.rules.RuleSet (typed loosely to keep config free of the matcher)
    rule_files: list[str]
    warnings: list[Problem]

    def notify_of(self, rule: Rule) -> list[str]:
        return rule.notify if rule.notify is not None else self.main.defaults.notify


def seed_source_name(folder: str) -> str:
    """The source name of a seed folder: its path as written, without a trailing slash."""
    return folder.rstrip("/\\") or folder


def _raw_names(data: Any, key: str) -> list[Any]:
    """Best-effort read of a list or mapping key from a main config that failed validation,
    so the rest of the configuration can still be checked."""
    value = data.get(key) if isinstance(data, dict) else None
    return list(value) if isinstance(value, list | dict) else []


def load_main(path: str, env: Mapping[str, str] | None = None) -> tuple[MainConfig | None,
                                                                        yamlfile.Document | None,
                                                                        list[Problem]]:
    doc, problems = yamlfile.load(path, env=os.environ if env is None else env)
    if doc is None:
        return None, None, problems
    main, found = _validate(_MAIN, doc)
    problems.extend(found)
    channels = set(main.channels) if main else {c for c in _raw_names(doc.data, "channels")
                                                if isinstance(c, str)}
    defaults = doc.data.get("defaults") if isinstance(doc.data, dict) else None
    notify = defaults.get("notify") if isinstance(defaults, dict) else None
    for i, ch in enumerate(notify if isinstance(notify, list) else []):
        if isinstance(ch, str) and ch not in channels:
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
    return main, doc, problems


def default_path() -> str:
    return os.environ.get("RAQIB_CONFIG") or DEFAULT_CONFIG


def load_config(path: str | None = None, env: Mapping[str, str] | None = None,
                extra_rules: list[str] | None = None) -> Config:
    """Load and check everything; raise ConfigError listing every problem."""

    path = path or default_path()
    with paused_gc():
        return _load_config(path, env, extra_rules)


def _warnings(loaded: LoadedRules, source_names: set[str] | None) -> list[Problem]:
    """What is valid but will not do what its writer may expect."""
    warnings: list[Problem] = []
    for rule, rdoc, where in loaded.rules:
        for name in rule.sources or []:
            if source_names is not None and not name.startswith("tag:") \
                    and name not in source_names:
                # A warning: rules may name sources of another deployment or removed ones.
                warnings.append(rdoc.problem((*where, "sources"),
                                             f"warning: no configured source is named {name!r}"))
    return warnings


def _load_config(path: str, env: Mapping[str, str] | None,
                 extra_rules: list[str] | None) -> Config:
    from worker.rules import compile_rules  # noqa: PLC0415 (the matcher imports this module)

    main, doc, problems = load_main(path, env)
    if doc is None:
        raise ConfigError(problems)
    if main is not None:
        rule_paths, channels = list(main.rules), set(main.channels)
        source_names = {s.name for s in main.sources} | {seed_source_name(f) for f in main.seeds}
    else:   # still check the rule files the config names, as far as it can be read
        rule_paths = [r for r in _raw_names(doc.data, "rules") if isinstance(r, str)]
        channels = {c for c in _raw_names(doc.data, "channels") if isinstance(c, str)}
        source_names = None
    loaded, found = load_rules([*rule_paths, *(extra_rules or [])])
    problems.extend(found)
    for rule, rdoc, where in loaded.rules:
        problems.extend(rdoc.problem((*where, "notify"), f"unknown channel {ch!r}")
                        for ch in rule.notify or [] if ch not in channels)
    warnings = _warnings(loaded, source_names)
    ruleset, found = compile_rules(loaded)
    problems.extend(found)
    if problems or main is None:
        raise ConfigError(problems)
    return Config(path, main, ruleset, loaded.files, warnings)


__all__ = [
    "FIELDS", "NAME_MAX", "Channel", "Config", "DigestSchedule", "Duration", "EmailChannel",
    "Entity", "FieldName", "FileChannel", "LoadedRules", "MainConfig", "PositiveDuration",
    "Rate", "Rule", "RulesFile", "Severity", "Size", "Source", "WebhookChannel", "When",
    "load_config", "load_main", "load_rules", "parse_digest", "parse_duration", "parse_rate",
    "parse_size", "paused_gc", "rule_files",
]

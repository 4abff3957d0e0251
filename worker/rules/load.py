"""Loading rule files: YAML with lines, validated entity by entity and rule by rule, so that one
mistake hides nothing else; duplicate ids across files are problems too. Terms and references
are checked later, by the compiler."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from worker import yamlfile
from worker.errors import Problem
from worker.rules.model import Entity, Loc, Rule, RulesFile, When

T = TypeVar("T")

_RULE = TypeAdapter(Rule)
_ENTITY = TypeAdapter(Entity)


@dataclass(frozen=True)
class LoadedRules:
    """Rules and entities from rule files, each remembering where it was written."""

    rules: list[tuple[Rule, yamlfile.Document, Loc]]               # rule, its file, its path
    entities: dict[str, tuple[Entity, yamlfile.Document, Loc]]
    files: list[str]


def known_keys(*models: type[BaseModel]) -> frozenset[str]:
    """Every key name of *models*, for did-you-mean hints."""
    return frozenset(f.alias or name for model in models for name, f in model.model_fields.items())


RULE_KEYS = known_keys(RulesFile, Rule, Entity, When)


def describe(err: Mapping[str, Any], keys: frozenset[str] = frozenset()) -> str:
    """One pydantic error as a message for the user; an unknown key gets a did-you-mean."""
    loc = [str(p) for p in err["loc"]]
    kind = err["type"]
    if kind == "extra_forbidden":
        key = loc[-1]
        hint = difflib.get_close_matches(key, sorted(keys), n=1)
        return f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if kind == "missing":
        return f"missing key {loc[-1]!r}"
    where = ".".join(p for p in loc if p not in {"email", "webhook", "file", "function-before",
                                                 "function-after"})
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def validate(adapter: TypeAdapter[T], doc: yamlfile.Document, data: object = None,
             prefix: Loc = (), keys: frozenset[str] = frozenset(),
             ) -> tuple[T, list[Problem]] | tuple[None, list[Problem]]:
    """Validate *data* (default: the whole document) found at *prefix* in *doc*; *keys* are the
    key names to suggest for a misspelt one."""
    if data is None:
        data = doc.data if doc.data is not None else {}
    try:
        return adapter.validate_python(data), []
    except ValidationError as exc:
        out = []
        for e in exc.errors(include_url=False):
            loc = (*prefix, *e["loc"])
            out.append(doc.problem(loc, describe({**e, "loc": loc}, keys)))
        return None, out


def _validate_rules_file(doc: yamlfile.Document) -> tuple[dict[str, Entity], list[Rule | None],
                                                           list[Problem]]:
    """Validate entity by entity and rule by rule, so one mistake hides nothing else. A rule
    that failed is None, keeping the others' indexes."""
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        return {}, [], [doc.problem((), "a rule file is a mapping of entities: and rules:")]
    problems = [doc.problem((key,), f"unknown key {key!r} (a rule file holds entities: and "
                                    "rules:)") for key in data if key not in ("entities", "rules")]
    entities: dict[str, Entity] = {}
    raw_entities = data.get("entities") or {}
    if not isinstance(raw_entities, dict):
        problems.append(doc.problem(("entities",), "entities: is a mapping of id to entity"))
        raw_entities = {}
    for eid, raw in raw_entities.items():
        entity, found = validate(_ENTITY, doc, raw, ("entities", eid), RULE_KEYS)
        problems.extend(found)
        if entity is not None:
            entities[str(eid)] = entity
    rules: list[Rule | None] = []
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        problems.append(doc.problem(("rules",), "rules: is a list of rules"))
        raw_rules = []
    for i, raw in enumerate(raw_rules):
        rule, found = validate(_RULE, doc, raw, ("rules", i), RULE_KEYS)
        problems.extend(found)
        rules.append(rule)
    return entities, rules, problems


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
    rules: list[tuple[Rule, yamlfile.Document, Loc]] = []
    entities: dict[str, tuple[Entity, yamlfile.Document, Loc]] = {}
    rule_ids: dict[str, str] = {}
    for path in files:
        doc, found = yamlfile.load(path)
        problems.extend(found)
        if doc is None:
            continue
        parsed_entities, parsed_rules, found = _validate_rules_file(doc)
        problems.extend(found)
        for eid, entity in parsed_entities.items():
            where: Loc = ("entities", eid)
            if eid in entities:
                first = entities[eid]
                problems.append(doc.problem(where, f"duplicate entity id {eid!r} (first in "
                                            f"{first[1].path}:{first[1].locate(first[2])})"))
                continue
            entities[eid] = (entity, doc, where)
        for i, rule in enumerate(parsed_rules):
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


__all__ = ["LoadedRules", "describe", "known_keys", "load_rules", "rule_files", "validate"]

"""The rule files' models: entities, rules and their filters, validated by pydantic on loading.

A rule's ``match`` is kept as YAML gave it (a term or a mapping); ``worker.rules.compile`` checks
its shape and reports mistakes as ``FILE:LINE`` problems.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from worker.units import PositiveDuration

NAME_MAX = 200   # source names, channel names and rule ids are stored in 200-character columns
Severity = Literal["low", "medium", "high", "critical"]
FieldName = Literal["title", "summary", "body"]
FIELDS: tuple[FieldName, ...] = ("title", "summary", "body")
# A path into a YAML document: mapping keys and list indexes, as yamlfile.Document locates.
Loc = tuple[str | int, ...]



# Every model of the configuration: unknown keys are mistakes, values never change once loaded.
MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Model(BaseModel):
    model_config = MODEL_CONFIG


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
    # A term (a string) or an expression (a mapping), as YAML gave it: the compiler checks it.
    match: object
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


__all__ = [
    "FIELDS",
    "MODEL_CONFIG",
    "NAME_MAX",
    "Entity",
    "FieldName",
    "Loc",
    "Model",
    "Rule",
    "RulesFile",
    "Severity",
    "When",
]

"""The rule files' models: entities, rules and their filters, validated by pydantic on loading.

A rule's ``match`` is kept as YAML gave it (a term or a mapping); ``worker.rules.compile`` checks
its shape and reports mistakes as ``FILE:LINE`` problems. Language codes are checked here.
"""

from __future__ import annotations

import difflib
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from worker.units import PositiveDuration

NAME_MAX = 200   # source names, channel names and rule ids are stored in 200-character columns
Severity = Literal["low", "medium", "high", "critical"]
FieldName = Literal["title", "summary", "body"]
FIELDS: tuple[FieldName, ...] = ("title", "summary", "body")
# A path into a YAML document: mapping keys and list indexes, as yamlfile.Document locates.
Loc = tuple[str | int, ...]

# The codes language detection (worker.language) gives an article from its text.
DETECTED_LANGUAGES = ("ar", "ckb", "de", "en", "es", "fa", "fr", "tr", "ur")
# A rule's `languages: [ku]` means Kurdish in any of its written forms.
LANGUAGE_FAMILIES: dict[str, tuple[str, ...]] = {"ku": ("ku", "ckb", "kmr", "sdh")}
# ISO 639-1: what a feed may declare, which detection keeps when the text does not tell.
ISO_639_1 = frozenset({
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh",
    "bi", "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da",
    "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr",
    "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz",
    "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj",
    "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln",
    "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb",
    "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi",
    "pl", "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk",
    "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti",
    "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo",
    "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu"})
KNOWN_LANGUAGES = ISO_639_1 | set(DETECTED_LANGUAGES) | {
    code for family in LANGUAGE_FAMILIES.values() for code in family}
_LANGUAGE_NAMES = {
    "arabic": "ar", "persian": "fa", "farsi": "fa", "kurdish": "ku", "sorani": "ckb",
    "kurmanji": "kmr", "urdu": "ur", "english": "en", "french": "fr", "german": "de",
    "spanish": "es", "turkish": "tr", "hebrew": "he", "russian": "ru"}


def language_base(code: str) -> str:
    """``en-US`` -> ``en``: a rule's language as detection's codes write it."""
    return code.strip().lower().replace("_", "-").split("-")[0]


def language_codes(code: str) -> tuple[str, ...]:
    """The detected codes a rule's language stands for (``ku`` is every Kurdish)."""
    base = language_base(code)
    return LANGUAGE_FAMILIES.get(base, (base,))


def check_language(code: str) -> str:
    """A language a rule may name: a code detection gives, a family, or an ISO 639-1 code."""
    if language_base(code) in KNOWN_LANGUAGES:
        return code
    hint = _LANGUAGE_NAMES.get(code.strip().lower())
    if hint is None:
        close = difflib.get_close_matches(code.strip().lower(), list(_LANGUAGE_NAMES), n=1)
        hint = _LANGUAGE_NAMES[close[0]] if close else None
    families = "; ".join(f"{k} = {', '.join(v[1:])}" for k, v in LANGUAGE_FAMILIES.items())
    raise ValueError(
        f"unknown language {code!r}" + (f" (did you mean {hint!r}?)" if hint else "")
        + f": use a code language detection gives ({', '.join(DETECTED_LANGUAGES)}), a family "
        f"({families}) or another ISO 639-1 code a feed declares")


Language = Annotated[str, AfterValidator(check_language)]


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


class Spike(Model):
    """Fires when the stories matched in the last ``within`` number at least ``min_count`` and
    at least ``factor`` times the mean per ``within`` over the ``baseline`` before them."""

    within: PositiveDuration
    baseline: PositiveDuration = timedelta(days=7)
    factor: float = Field(default=3.0, ge=1.0)
    min_count: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _baseline_longer(self) -> Spike:
        if self.baseline < self.within:
            raise ValueError("spike: the baseline must be at least as long as within")
        return self


class FirstSeen(Model):
    """Fires for a story when the rule (or that entity of the match, or that term) matched
    no story in the preceding ``within``."""

    by: Literal["rule", "entity", "term"] = "rule"
    within: PositiveDuration


class Quiet(Model):
    """Fires for each selected source that stored no new article for ``within`` of raqib's
    running time (``sources``: names or ``tag:NAME``; none given: every feed)."""

    sources: list[str] | None = None
    within: PositiveDuration


KINDS = ("when", "spike", "first_seen", "quiet")


class Rule(Model):
    id: str = Field(min_length=1, max_length=NAME_MAX, pattern=r"^[^\s@]+$")
    title: str | None = None
    severity: Severity = "medium"
    # A term (a string) or an expression (a mapping), as YAML gave it: the compiler checks it.
    # Every rule has one but a ``quiet`` rule, which watches sources, not words.
    match: object = None
    fields: tuple[FieldName, ...] = FIELDS
    languages: list[Language] | None = None
    sources: list[str] | None = None
    notify: list[str] | None = None
    when: When | None = None
    spike: Spike | None = None
    first_seen: FirstSeen | None = None
    quiet: Quiet | None = None
    throttle: PositiveDuration | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) > 1:
            raise ValueError(f"a rule is one kind: {' and '.join(kinds)} cannot go together")
        if self.quiet is not None:
            extra = [k for k in ("match", "fields", "languages", "sources")
                     if k in self.model_fields_set]
            if extra:
                raise ValueError(f"a quiet rule watches sources, not words: drop "
                                 f"{', '.join(extra)} (name the sources under quiet:)")
        elif "match" not in self.model_fields_set or self.match is None:
            raise ValueError("a rule needs match: (only a quiet rule has none)")
        return self

    @property
    def kind(self) -> str:
        """``match``, ``window``, ``spike``, ``first_seen`` or ``quiet``: what its alerts are."""
        if self.when is not None:
            return "window"
        for k in ("spike", "first_seen", "quiet"):
            if getattr(self, k) is not None:
                return k
        return "match"

    @property
    def display_title(self) -> str:
        return self.title or self.id


class RulesFile(Model):
    entities: dict[str, Entity] = {}
    rules: list[Rule] = []


__all__ = [
    "DETECTED_LANGUAGES",
    "FIELDS",
    "LANGUAGE_FAMILIES",
    "MODEL_CONFIG",
    "NAME_MAX",
    "Entity",
    "FieldName",
    "FirstSeen",
    "Loc",
    "Model",
    "Quiet",
    "Rule",
    "RulesFile",
    "Severity",
    "Spike",
    "When",
    "check_language",
    "language_codes",
]

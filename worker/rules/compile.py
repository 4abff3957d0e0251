"""Compile rule files into one automaton and one expression tree per rule.

Errors (an unknown entity, a bad regex, a term with no words, a misplaced ``*``, a malformed
expression) are reported as ``FILE:LINE`` problems; every problem in every file is collected.
"""

from __future__ import annotations

import difflib
import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

import ahocorasick

from worker import textnorm
from worker.errors import Problem
from worker.rules.expr import AllOf, AnyOf, AtLeast, Expr, InField, Near, Not, Regex, Term
from worker.rules.load import LoadedRules
from worker.rules.model import FIELDS, LANGUAGE_FAMILIES, Entity, Loc, Rule, language_codes
from worker.yamlfile import Document

if TYPE_CHECKING:
    from worker.rules.match import RuleSet

DEFAULT_WITHIN = 10
MAX_VARIANTS = 256   # readings of one phrase; past it, only the plain keys
EXPR_KEYS = ("any", "all", "none", "not", "near", "within", "at_least", "of", "field", "match")
FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}
# Keys that only make sense together, and the keys that build a part of the expression.
PAIRED = (("within", "near"), ("of", "at_least"), ("at_least", "of"), ("match", "field"),
          ("field", "match"))
BUILDERS = ("any", "all", "none", "not", "near", "at_least", "field")


@dataclass(eq=False)
class CompiledRule:
    rule: Rule
    expr: Expr
    fields: frozenset[int]
    languages: frozenset[str] | None
    source_names: frozenset[str] | None
    source_tags: frozenset[str] | None
    origin: str                     # FILE:LINE of the rule, for logs

    def accepts(self, source: str, tags: Sequence[str], language: str | None) -> bool:
        if self.languages is not None and (language or "").split("-")[0] not in self.languages:
            return False
        if self.source_names is None:
            return True
        return source in self.source_names or bool(self.source_tags and
                                                    self.source_tags.intersection(tags))


@dataclass(frozen=True, slots=True)
class Check:
    """What the article's token at one position of a phrase must be, checked on a hit where
    the automaton's key does not already decide: ``word``, one of its readings is one of
    ``forms``; ``prefix``, one of its readings starts with one of them; ``exact``, the token
    itself (normalized, nothing stripped) is one of them."""

    kind: Literal["word", "prefix", "exact"]
    forms: tuple[str, ...]


# Per token of a phrase: its check, or None where the automaton's key already decides.
Verify = tuple[Check | None, ...]


@dataclass(frozen=True, slots=True)
class Pattern:
    """Where a phrase sits around an automaton hit, and what the hit must be checked for."""

    offset: int      # the automaton's string starts at this token of the phrase
    length: int      # tokens in the phrase
    verify: Verify | None


@dataclass
class Patterns:
    """What the automaton looks for. A *string* is a sequence of token keys (the automaton's
    words); a *pattern* is a phrase found through one of its strings: the string covers the
    whole phrase, or for a long Arabic phrase whose keys multiply past MAX_VARIANTS, an
    anchor run of it, the rest being checked on the hit. Identical terms share patterns."""

    strings: dict[str, int] = field(default_factory=dict)
    string_shape: list[tuple[int, bool]] = field(default_factory=list)   # (tokens, exact)
    string_patterns: list[list[int]] = field(default_factory=list)
    ids: dict[tuple[int, Pattern], int] = field(default_factory=dict)
    patterns: list[Pattern] = field(default_factory=list)

    def add_phrase(self, norms: list[str], prefix: bool, exact: bool = False) -> set[int]:
        """Pattern ids for the phrase of normalized tokens *norms* (the last a prefix when
        *prefix*; compared as they are, nothing stripped, when *exact*)."""
        n = len(norms)
        checks: list[Check] = []
        choices: list[list[str]] = []
        for i, norm in enumerate(norms):
            if exact:
                checks.append(Check("exact", (norm,)))
                choices.append([textnorm.strip_proclitics(norm)])
            elif prefix and i == n - 1:
                checks.append(Check("prefix", textnorm.prefix_forms(norm)))
                choices.append(sorted(textnorm.prefix_keys(norm)))
            else:
                checks.append(Check("word", tuple(sorted(textnorm.term_forms(norm)))))
                choices.append(sorted(textnorm.key_variants(norm)))
        searchable = n
        if prefix and "" in choices[-1]:
            # The prefix could be all proclitic (عين ال*): find the words before it, then
            # check the last one on the hit.
            searchable = n - 1
        lo, hi = _anchor(choices[:searchable])
        string_prefix = prefix and hi == n
        out = set()
        for combo in itertools.product(*choices[lo:hi]):
            # A key settles its token when every text token under it passes the check: a
            # text token's key is one of its readings, so a key that is one of the term's
            # forms (or starts with one, for a prefix) does. An exact token is always checked.
            verify: Verify = tuple(
                None if lo <= i < hi and _settles(check, combo[i - lo]) else check
                for i, check in enumerate(checks))
            pattern = Pattern(lo, n, None if all(v is None for v in verify) else verify)
            out.add(self._add(list(combo), string_prefix, pattern))
        return out

    def _add(self, tokens: list[str], prefix: bool, pattern: Pattern) -> int:
        key = " " + " ".join(tokens) + ("" if prefix else " ")
        sid = self.strings.get(key)
        if sid is None:
            sid = self.strings[key] = len(self.string_shape)
            self.string_shape.append((len(tokens), not prefix))
            self.string_patterns.append([])
        pid = self.ids.get((sid, pattern))
        if pid is None:
            pid = self.ids[sid, pattern] = len(self.patterns)
            self.patterns.append(pattern)
            self.string_patterns[sid].append(pid)
        return pid

    def automaton(self) -> Any:   # an ahocorasick.Automaton (the library has no types)
        auto = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        for key, sid in self.strings.items():
            auto.add_word(key, sid)
        if self.strings:
            auto.make_automaton()
        return auto


def _settles(check: Check, key: str) -> bool:
    if check.kind == "word":
        return key in check.forms
    if check.kind == "prefix":
        return key.startswith(check.forms)
    return False


def _anchor(choices: list[list[str]]) -> tuple[int, int]:
    """The longest run of tokens whose key combinations stay within MAX_VARIANTS (the whole
    phrase, nearly always)."""
    best = (0, 1)
    for lo in range(len(choices)):
        product = 1
        for hi in range(lo, len(choices)):
            product *= len(choices[hi])
            if product > MAX_VARIANTS:
                break
            if hi + 1 - lo > best[1] - best[0]:
                best = (lo, hi + 1)
    return best


class _Compiler:
    def __init__(self, entities: dict[str, tuple[Entity, Document, Loc]]) -> None:
        self.entities = entities
        self.patterns = Patterns()
        self.entity_patterns: dict[str, frozenset[int]] = {}
        self.problems: list[Problem] = []

    # -- terms --------------------------------------------------------------------------------

    def phrase(self, text: str, doc: Document, loc: Loc) -> frozenset[int] | None:
        """A word, phrase, prefix or exact term (an entity's name too) as pattern ids: one per
        combination of the keys its tokens may be found under (see textnorm.key_variants)."""
        parsed = parse_phrase(text)
        if isinstance(parsed, str):
            self.problems.append(doc.problem(loc, f"term {text!r}{parsed}"))
            return None
        norms, prefix, exact = parsed
        return frozenset(self.patterns.add_phrase(norms, prefix, exact))

    def entity(self, eid: str, doc: Document, loc: Loc) -> frozenset[int] | None:
        if eid in self.entity_patterns:
            return self.entity_patterns[eid]
        if eid not in self.entities:
            close = difflib.get_close_matches(eid, list(self.entities), n=1)
            hint = f" (did you mean '@{close[0]}'?)" if close else ""
            self.problems.append(doc.problem(loc, f"unknown entity '@{eid}'{hint}"))
            return None
        entity, edoc, where = self.entities[eid]
        pids: set[int] = set()
        for i, name in enumerate(entity.names):
            pids |= self.phrase(name, edoc, (*where, "names", i)) or frozenset()
        self.entity_patterns[eid] = frozenset(pids)
        return self.entity_patterns[eid]

    def term(self, value: object, doc: Document, loc: Loc) -> Expr | None:
        if not isinstance(value, str) or not value.strip():
            self.problems.append(doc.problem(loc, f"a term is a non-empty string, not {value!r}"))
            return None
        text = value.strip()
        if text.startswith("re:"):
            try:
                pattern = re.compile(normalize_pattern(text[3:]), re.IGNORECASE)
            except re.error as exc:
                self.problems.append(doc.problem(loc, f"term {text!r}: bad regular expression: "
                                                 f"{exc}"))
                return None
            return Regex(text, pattern)
        if text.startswith("@"):
            pids = self.entity(text[1:], doc, loc)
            return None if pids is None else Term(text, pids)
        pids = self.phrase(text, doc, loc)
        return None if pids is None else Term(text, pids)

    # -- expressions --------------------------------------------------------------------------

    def expr(self, value: object, doc: Document, loc: Loc) -> Expr | None:
        if isinstance(value, str):
            return self.term(value, doc, loc)
        if isinstance(value, list):
            self.problems.append(doc.problem(loc, "a list is not an expression: wrap it in "
                                             "'any:' or 'all:'"))
            return None
        if not isinstance(value, dict) or not value:
            self.problems.append(doc.problem(loc, f"an expression is a term or a mapping of "
                                             f"{', '.join(EXPR_KEYS)}; got {value!r}"))
            return None
        return self.mapping(value, doc, loc)

    def items(self, value: object, doc: Document, loc: Loc) -> list[Expr] | None:
        if isinstance(value, str | dict):
            value = [value]   # `any: term` is read as `any: [term]`
        if not isinstance(value, list) or not value:
            self.problems.append(doc.problem(loc, "expected a non-empty list of expressions"))
            return None
        out = [self.expr(v, doc, (*loc, i)) for i, v in enumerate(value)]
        return None if any(e is None for e in out) else out  # type: ignore[return-value]

    def mapping(self, value: dict[str, object], doc: Document, loc: Loc) -> Expr | None:
        """A mapping of expression keys; its parts combine with AND."""
        before = len(self.problems)
        for key in value:
            if key not in EXPR_KEYS:
                self.problems.append(doc.problem((*loc, key), (
                    f"unknown expression key {key!r} (expected one of {', '.join(EXPR_KEYS)})")))
        for key, partner in PAIRED:
            if key in value and partner not in value:
                self.problems.append(doc.problem((*loc, key),
                                                 f"{key!r} needs {partner!r} beside it"))
        parts: list[Expr] = []
        for key in BUILDERS:
            part = getattr(self, f"_{key}")(value, doc, loc) if key in value else None
            if part is not None:
                parts.append(part)
        if len(self.problems) > before or not parts:
            return None
        return parts[0] if len(parts) == 1 else AllOf(parts)

    def _any(self, value: dict[str, object], doc: Document, loc: Loc) -> Expr | None:
        got = self.items(value["any"], doc, (*loc, "any"))
        return None if got is None else got[0] if len(got) == 1 else AnyOf(got)

    def _all(self, value: dict[str, object], doc: Document, loc: Loc) -> Expr | None:
        got = self.items(value["all"], doc, (*loc, "all"))
        return None if got is None else got[0] if len(got) == 1 else AllOf(got)

    def _none(self, value: dict[str, object], doc: Document, loc: Loc) -> Expr | None:
        got = self.items(value["none"], doc, (*loc, "none"))
        return None if got is None else Not(got[0] if len(got) == 1 else AnyOf(got))

    def _not(self, value: dict[str, object], doc: Document, loc: Loc) -> Expr | None:
        got = self.expr(value["not"], doc, (*loc, "not"))
        return None if got is None else Not(got)

    def _near(self, value: dict[str, object], doc: Document, loc: Loc) -> Expr | None:
        got = self.items(value["near"], doc, (*loc, "near"))
        within = value.get("within", DEFAULT_WITHIN)
        if not _whole(within) or within < 0:
            self.problems.append(doc.problem((*loc, "within"), (
                f"'within' is a whole number of tokens, not {within!r}")))
            return None
        if got is not None and len(got) < 2:
            self.problems.append(doc.problem((*loc, "near"),
                                             "'near' needs at least two expressions"))
            return None
        return None if got is None else Near(got, within)

    def _at_least(self, value: dict[str, object], doc: Document, loc: Loc) -> Expr | None:
        if "of" not in value:
            return None
        got = self.items(value["of"], doc, (*loc, "of"))
        k = value["at_least"]
        if got is None:
            return None
        if not _whole(k) or not 0 <= k <= len(got):
            self.problems.append(doc.problem((*loc, "at_least"), (
                f"'at_least' is a whole number from 0 to {len(got)}, not {k!r}")))
            return None
        return AtLeast(k, got)

    def _field(self, value: dict[str, object], doc: Document, loc: Loc) -> Expr | None:
        if "match" not in value:
            return None
        inner = self.expr(value["match"], doc, (*loc, "match"))
        name = value["field"]
        if not isinstance(name, str) or name not in FIELD_INDEX:
            self.problems.append(doc.problem((*loc, "field"), (
                f"'field' is one of {', '.join(FIELDS)}, not {name!r}")))
            return None
        return None if inner is None else InField(FIELD_INDEX[name], inner)


def parse_phrase(text: str) -> tuple[list[str], bool, bool] | str:
    """A word or phrase term as (normalized tokens, last one a prefix, exact), or what is wrong
    with it (to follow the term in a message)."""
    exact = text.startswith("=")
    body = text[1:].strip() if exact else text.rstrip()
    prefix = body.endswith("*")
    body = body[:-1] if prefix else body
    norms = textnorm.norms(body)
    mistakes = (
        (exact and body.startswith(("@", "re:")),
         ": '=' takes a word or phrase, not an entity or a regular expression"),
        (prefix and exact, ": an exact term ('=') has no prefix; drop the '*' or the '='"),
        ("*" in body, ": '*' may only end the term"),
        (prefix and bool(body) and not textnorm.WORD_RE.search(body[-1]),
         ": '*' must follow a letter"),
        (not norms, " has no words to match"),
        (prefix and len(norms) == 1 and "" in textnorm.prefix_keys(norms[0]),
         ": the prefix could be all proclitic (و ف ب ل ك ال); write more of the word"),
    )
    return next((message for wrong, message in mistakes if wrong), (norms, prefix, exact))


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def normalize_pattern(pattern: str) -> str:
    """A regex pattern normalized like text, short of case folding (IGNORECASE does that) so
    escapes such as ``\\D`` keep their meaning."""
    pattern = unicodedata.normalize("NFKC", pattern)
    pattern = unicodedata.normalize("NFD", pattern).translate(textnorm.MARKS)
    return pattern.translate(textnorm.TRANSLATE)


def compile_rules(loaded: LoadedRules) -> tuple[RuleSet, list[Problem]]:
    """Compile every rule and entity; return the rule set and every problem found."""
    from worker.rules.match import RuleSet  # noqa: PLC0415 (match imports this module)

    comp = _Compiler(loaded.entities)
    compiled: list[CompiledRule] = []
    quiet: list[Rule] = []
    for rule, doc, where in loaded.rules:
        if rule.quiet is not None:   # watches sources: nothing to match
            quiet.append(rule)
            continue
        expr = comp.expr(rule.match, doc, (*where, "match"))
        if expr is None:
            continue
        if rule.first_seen is not None and rule.first_seen.by == "entity" \
                and not entities_of(rule.match):
            comp.problems.append(doc.problem((*where, "first_seen", "by"), (
                "first_seen by entity needs an @entity term in match (or use by: term "
                "or by: rule)")))
        names = tags = None
        if rule.sources is not None:
            names = frozenset(s for s in rule.sources if not s.startswith("tag:"))
            tags = frozenset(s[4:] for s in rule.sources if s.startswith("tag:"))
        compiled.append(CompiledRule(
            rule=rule, expr=expr,
            fields=frozenset(FIELD_INDEX[f] for f in rule.fields),
            languages=None if rule.languages is None else frozenset(
                code for lang in rule.languages for code in language_codes(lang)),
            source_names=names, source_tags=tags,
            origin=f"{doc.path}:{doc.locate(where)}",
        ))
    for eid, (_, edoc, _) in loaded.entities.items():   # entities no rule uses are checked too
        if eid not in comp.entity_patterns:
            comp.entity(eid, edoc, ())
    return RuleSet(compiled, comp.patterns, quiet), comp.problems


def compile_terms(terms: dict[str, str], entities: dict[str, tuple[Entity, Document, Loc]],
                  origin: str = "<term>") -> tuple[RuleSet, list[Problem]]:
    """Each of *terms* (id -> a term in any form) as a rule of its own, over these entities:
    ``RuleSet.match`` then names the ids whose term an article holds. Problems name
    *origin*."""
    doc = Document(origin, {"rules": [{"id": k, "match": v} for k, v in terms.items()]}, {})
    rules: list[tuple[Rule, Document, Loc]] = [
        (Rule(id=k, match=v), doc, ("rules", i)) for i, (k, v) in enumerate(terms.items())]
    return compile_rules(LoadedRules(rules, dict(entities), []))


def entities_of(value: object) -> set[str]:
    """The entity ids a match expression (as YAML gave it) names."""
    if isinstance(value, str):
        text = value.strip()
        return {text[1:]} if text.startswith("@") else set()
    if isinstance(value, dict):
        return set().union(*(entities_of(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(entities_of(v) for v in value))
    return set()


__all__ = ["LANGUAGE_FAMILIES", "Check", "CompiledRule", "Pattern", "Patterns", "compile_rules",
           "compile_terms", "entities_of"]

"""Matching: one automaton scan of an article's token keys, then only the rules it touched."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate

from worker import textnorm
from worker.items import Article, Explanation
from worker.rules.compile import CompiledRule, Pattern, Patterns
from worker.rules.expr import Hit, Scope
from worker.rules.model import FIELDS, Rule

MAX_EXPLANATIONS = 20


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """A rule that matched an article: why (``explanations``, at most ``MAX_EXPLANATIONS``)
    and every term as written that holds in the match (``terms``: ``@id`` for an entity)."""

    rule: CompiledRule
    explanations: tuple[Explanation, ...]
    terms: frozenset[str] = frozenset()

    @property
    def rule_id(self) -> str:
        return self.rule.rule.id


class _View:
    """One article as the matcher sees it: tokens per field, joined for the automaton."""

    __slots__ = ("_norm", "fields", "joined", "offsets", "starts")

    def __init__(self, article: Article) -> None:
        self.fields = [textnorm.tokenize(article.field_text(name)) for name in FIELDS]
        # " k1 k2 … \n k1 … \n": no pattern holds a newline, so phrases never cross fields.
        keys = [k for tokens in self.fields for k in (*tokens.keys, "\n")]
        self.joined = " " + " ".join(keys) + " "
        # Where each key starts in `joined` (the field separators included, then dropped).
        positions = list(accumulate((len(k) + 1 for k in keys), initial=1))
        self.starts = [p for p, k in zip(positions, keys, strict=False) if k != "\n"]
        self.offsets = list(accumulate((len(t) for t in self.fields[:-1]), initial=0))
        self._norm: dict[int, tuple[str, list[tuple[int, int]]]] = {}

    def locate(self, global_index: int) -> tuple[int, int]:
        f = bisect_right(self.offsets, global_index) - 1
        return f, global_index - self.offsets[f]

    def normalized(self, f: int) -> tuple[str, list[tuple[int, int]]]:
        """A field's normalized text (punctuation kept, white space folded) and each token's
        span in it, for ``re:`` terms."""
        if f not in self._norm:
            tokens = self.fields[f]
            pieces: list[str] = []
            spans: list[tuple[int, int]] = []
            pos = 0
            prev_end = 0
            last_span: tuple[int, int] | None = None
            for span in tokens.spans:
                if span == last_span:   # a token NFKC split in several shares one span
                    spans.append(spans[-1])
                    continue
                gap = textnorm.normalize_piece(tokens.text[prev_end:span[0]])
                if not pieces:
                    gap = gap.lstrip()   # the field's text starts at its first character
                norm = textnorm.normalize_piece(tokens.text[span[0]:span[1]])
                pieces += (gap, norm)
                pos += len(gap)
                spans.append((pos, pos + len(norm)))
                pos += len(norm)
                prev_end = span[1]
                last_span = span
            tail = textnorm.normalize_piece(tokens.text[prev_end:])
            pieces.append(tail.rstrip() if pieces else tail.strip())
            self._norm[f] = ("".join(pieces), spans)
        return self._norm[f]

    def search(self, pattern: re.Pattern[str], f: int) -> list[tuple[int, int]]:
        text, spans = self.normalized(f)
        out: list[tuple[int, int]] = []
        ends = [e for _, e in spans]
        starts = [s for s, _ in spans]
        if not spans:
            return out   # a field without words: nothing to point at
        for m in pattern.finditer(text):
            # The tokens the match touches; a match in punctuation after the last word is
            # shown at that word.
            first = min(bisect_right(ends, m.start()), len(spans) - 1)
            last = max(first, bisect_right(starts, max(m.end() - 1, m.start())) - 1)
            out.append((first, last))
        return out


class RuleSet:
    """Compiled rules: match an article against all of them at once."""

    def __init__(self, rules: list[CompiledRule], patterns: Patterns,
                 quiet: list[Rule] | None = None) -> None:
        self.rules = rules
        self.quiet = quiet or []   # quiet rules watch sources, not words: nothing to match
        self.string_shape = patterns.string_shape
        self.string_patterns = patterns.string_patterns
        self.patterns = patterns.patterns
        self.automaton = patterns.automaton()
        self.by_pattern: dict[int, list[int]] = defaultdict(list)
        self.always: list[int] = []     # rules that may hold without any pattern hit
        for i, cr in enumerate(rules):
            if cr.expr.anchors is None:
                self.always.append(i)
            else:
                for pid in cr.expr.anchors:
                    self.by_pattern[pid].append(i)
        self.by_id = {cr.rule.id: cr for cr in rules}

    def __len__(self) -> int:
        return len(self.rules) + len(self.quiet)

    def all_rules(self) -> list[Rule]:
        """Every rule, in file order within each kind: matched ones, then quiet ones."""
        return [cr.rule for cr in self.rules] + self.quiet

    def _scan(self, view: _View) -> dict[int, list[tuple[int, int, int]]]:
        hits: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        if not self.string_shape:
            return hits
        starts = view.starts
        for end, sid in self.automaton.iter(view.joined):
            ntokens, exact = self.string_shape[sid]
            last = bisect_right(starts, end - 1 if exact else end) - 1
            f, local_last = view.locate(last)
            string_first = local_last - ntokens + 1
            for pid in self.string_patterns[sid]:
                pat = self.patterns[pid]
                first = string_first - pat.offset
                phrase_last = first + pat.length - 1
                if first < 0 or phrase_last >= len(view.fields[f]):
                    continue   # the phrase would run past the field
                if pat.verify is None or _agrees(view.fields[f].norms, first, pat):
                    hits[pid].append((f, first, phrase_last))
        return hits

    def match(self, article: Article, only: Iterable[str] | None = None) -> list[RuleMatch]:
        """Every rule the article matches (optionally only the rules named in *only*)."""
        view = _View(article)
        hits = self._scan(view)
        candidates = set(self.always)
        for pid in hits:
            candidates.update(self.by_pattern.get(pid, ()))
        wanted = None if only is None else set(only)
        out: list[RuleMatch] = []
        for i in sorted(candidates):
            cr = self.rules[i]
            if wanted is not None and cr.rule.id not in wanted:
                continue
            if not cr.accepts(article.source, article.tags, article.language):
                continue
            result = cr.expr.eval(Scope(hits, view.search, cr.fields))
            if result is not None:
                out.append(RuleMatch(cr, explain(view, result),
                                     frozenset(h[3] for h in result)))
        return out


def _agrees(norms: tuple[str, ...], first: int, pat: Pattern) -> bool:
    """Whether the article's tokens from *first* on pass the phrase's checks: one of a token's
    readings is one of the term token's forms (or starts with one, for a prefix), or for an
    exact term the token itself is."""
    assert pat.verify is not None
    for i, check in enumerate(pat.verify):
        if check is None:
            continue
        norm = norms[first + i]
        if check.kind == "word":
            if textnorm.readings(norm).isdisjoint(check.forms):
                return False
        elif check.kind == "prefix":
            if not any(r.startswith(check.forms) for r in textnorm.readings(norm)):
                return False
        elif norm not in check.forms:
            return False
    return True


def explain(view: _View, hits: list[Hit]) -> tuple[Explanation, ...]:
    """One explanation per term, field and wording, in article order: the same words again
    further down the body add nothing."""
    seen: set[tuple[str, int, str]] = set()
    out: list[Explanation] = []
    for f, first, last, term in sorted(hits, key=lambda h: (h[0], h[1], h[3])):
        tokens = view.fields[f]
        text = tokens.source(first, last)
        if (term, f, text) in seen:
            continue
        seen.add((term, f, text))
        out.append(Explanation(term, FIELDS[f], text, tokens.snippet(first, last)))
        if len(out) >= MAX_EXPLANATIONS:
            break
    return tuple(out)

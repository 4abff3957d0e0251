"""The expression tree of a compiled rule and its evaluation against one article's hits."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# A hit: (field, first token, last token, term as written). Fields are small ints (see FIELDS).
Hit = tuple[int, int, int, str]
# An evaluation result: None when the expression does not hold, else the hits that show it does.
Result = list[Hit] | None


class Scope:
    """What one evaluation needs: term hits by pattern id and lazy regex search per field."""

    __slots__ = ("fields", "hits", "search")

    def __init__(self, hits: dict[int, list[tuple[int, int, int]]],
                 search: Callable[[re.Pattern[str], int], list[tuple[int, int]]],
                 fields: frozenset[int]) -> None:
        self.hits = hits
        self.search = search
        self.fields = fields

    def within(self, fields: frozenset[int]) -> Scope:
        return Scope(self.hits, self.search, self.fields & fields)


class Expr:
    """A node. ``anchors`` is a set of pattern ids of which one must hit for the node to hold,
    or None when it can hold without any (then its rule is evaluated for every article)."""

    anchors: frozenset[int] | None
    cost: int = 1

    def eval(self, scope: Scope) -> Result:
        raise NotImplementedError


@dataclass(eq=False)
class Term(Expr):
    text: str
    patterns: frozenset[int]

    def __post_init__(self) -> None:
        self.anchors = self.patterns

    def eval(self, scope: Scope) -> Result:
        out: list[Hit] = []
        hits = scope.hits
        for pid in self.patterns.intersection(hits) if len(self.patterns) > 4 else self.patterns:
            for f, first, last in hits.get(pid, ()):
                if f in scope.fields:
                    out.append((f, first, last, self.text))
        return out or None


@dataclass(eq=False)
class Regex(Expr):
    text: str
    pattern: re.Pattern[str]
    cost = 100

    def __post_init__(self) -> None:
        self.anchors = None

    def eval(self, scope: Scope) -> Result:
        out: list[Hit] = []
        for f in sorted(scope.fields):
            out.extend((f, first, last, self.text) for first, last in scope.search(self.pattern, f))
        return out or None


def _total_cost(children: Iterable[Expr]) -> int:
    return sum(c.cost for c in children)


@dataclass(eq=False)
class AnyOf(Expr):
    children: list[Expr]

    def __post_init__(self) -> None:
        self.children.sort(key=lambda c: c.cost)
        anchors = [c.anchors for c in self.children]
        self.anchors = None if any(a is None for a in anchors) else frozenset().union(*anchors)  # type: ignore[arg-type]
        self.cost = _total_cost(self.children)

    def eval(self, scope: Scope) -> Result:
        out: list[Hit] = []
        held = False
        for child in self.children:
            r = child.eval(scope)
            if r is not None:
                held = True
                out.extend(r)
        return out if held else None


@dataclass(eq=False)
class AllOf(Expr):
    children: list[Expr]

    def __post_init__(self) -> None:
        self.children.sort(key=lambda c: c.cost)  # cheap terms first: regexes only if they hold
        known = [c.anchors for c in self.children if c.anchors is not None]
        self.anchors = min(known, key=len) if known else None
        self.cost = _total_cost(self.children)

    def eval(self, scope: Scope) -> Result:
        out: list[Hit] = []
        for child in self.children:
            r = child.eval(scope)
            if r is None:
                return None
            out.extend(r)
        return out


@dataclass(eq=False)
class Not(Expr):
    child: Expr

    def __post_init__(self) -> None:
        self.anchors = None
        self.cost = self.child.cost

    def eval(self, scope: Scope) -> Result:
        return [] if self.child.eval(scope) is None else None


@dataclass(eq=False)
class AtLeast(Expr):
    k: int
    children: list[Expr]

    def __post_init__(self) -> None:
        self.children.sort(key=lambda c: c.cost)
        anchors = [c.anchors for c in self.children]
        if self.k == 0 or any(a is None for a in anchors):
            self.anchors = None
        else:
            self.anchors = frozenset().union(*anchors)  # type: ignore[arg-type]
        self.cost = _total_cost(self.children)

    def eval(self, scope: Scope) -> Result:
        out: list[Hit] = []
        held = 0
        for i, child in enumerate(self.children):
            if held + (len(self.children) - i) < self.k:
                return None  # the rest cannot make up the count
            r = child.eval(scope)
            if r is not None:
                held += 1
                out.extend(r)
        return out if held >= self.k else None


@dataclass(eq=False)
class InField(Expr):
    field: int
    child: Expr

    def __post_init__(self) -> None:
        self.anchors = self.child.anchors
        self.cost = self.child.cost

    def eval(self, scope: Scope) -> Result:
        return self.child.eval(scope.within(frozenset((self.field,))))


@dataclass(eq=False)
class Near(Expr):
    """Every child holds inside one field, with one match of each at most ``within`` token
    positions apart: max(first token) - min(last token) <= within."""

    children: list[Expr]
    within: int

    def __post_init__(self) -> None:
        known = [c.anchors for c in self.children if c.anchors is not None]
        self.anchors = min(known, key=len) if known else None
        self.cost = _total_cost(self.children) + 1

    def eval(self, scope: Scope) -> Result:
        results: list[list[Hit]] = []
        for child in self.children:
            r = child.eval(scope)
            if r is None:
                return None
            if r:  # a child that holds without a position (a `not`) places no constraint
                results.append(r)
        if len(results) < 2:
            return [h for r in results for h in r]
        for f in sorted(scope.fields):
            per_child = [[h for h in r if h[0] == f] for r in results]
            if any(not hits for hits in per_child):
                continue
            chosen = self._window(per_child)
            if chosen is not None:
                return chosen
        return None

    def _window(self, per_child: list[list[Hit]]) -> list[Hit] | None:
        # Take each hit as the one ending first; every other child needs a hit ending no
        # earlier and starting at most `within` positions after it.
        for i, hits in enumerate(per_child):
            for anchor in hits:
                lo = anchor[2]
                chosen = [anchor]
                for j, others in enumerate(per_child):
                    if j == i:
                        continue
                    fit = [h for h in others if h[2] >= lo and h[1] - lo <= self.within]
                    if not fit:
                        break
                    chosen.append(min(fit, key=lambda h: h[1]))
                else:
                    return chosen
        return None

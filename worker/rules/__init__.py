"""Watch rules: what they mean, compiled once and matched against every article.

Semantics (the contract users write against; README "Rules" says the same for them):

* A rule file holds ``entities:`` (id -> label and names) and ``rules:``. Ids are unique across
  all files. A rule's ``match:`` is a term or an expression.
* Terms are compared token by token after normalization (``worker.textnorm``): a word or phrase
  matches consecutive tokens, Arabic proclitics stripped from the text's tokens (never from the
  term's, beyond its own article); ``withdraw*`` makes the last token a prefix; ``=word`` or
  ``="a phrase"`` is exact, nothing stripped on either side; ``@id`` is any name of that entity
  (a name may be exact too); ``re:PATTERN`` searches the normalized text of a field
  (case-insensitive; Arabic letters in the pattern normalized the same way) — the slow path, run
  only for rules whose other parts already hold.
* Expressions: ``any`` (one holds), ``all`` (every one), ``none`` (none holds; beside any/all it
  narrows them), ``not`` (does not hold), ``near`` + ``within: N`` (all hold inside one field with
  matches at most N token positions apart, default 10; adjacent tokens are 1 apart),
  ``at_least: K`` + ``of`` (K of them hold), ``field`` + ``match`` (holds inside that field
  alone). Keys in one mapping combine with AND; nesting has no depth limit.
* Filters: ``fields`` (default title, summary, body) bounds where every term may match;
  ``languages`` keeps articles detected in those languages (codes detection gives, ``ku`` for
  every Kurdish, or ISO 639-1; anything else is a problem); ``sources`` keeps articles from those
  source names or, with ``tag:NAME``, sources with that tag.

* Kinds: a rule is plain (alerts once per story), or carries one of ``when`` (a window of
  ``count`` stories or sources), ``spike`` (``within``, ``baseline``, ``factor``,
  ``min_count``), ``first_seen`` (``by: rule | entity | term``, ``within``; by entity needs an
  ``@entity`` in ``match``) or ``quiet`` (``sources``, ``within``; no ``match``, ``fields``,
  ``languages`` or ``sources`` of its own). What each alerts on is decided in
  ``worker.alerts.policy``; quiet rules are kept apart (``RuleSet.quiet``), nothing to match.

The package stands alone: ``model`` holds the rule files' models, ``load`` reads them with their
lines, ``compile`` and ``match`` build and run the automaton. ``worker.config`` uses it, never
the other way round.

Cost: every term of every rule and entity is one pattern in a single Aho-Corasick automaton over
the article's token keys. An article is scanned once; only rules with a hit (plus the rare rules
that can hold without one, such as a bare ``not``) are evaluated, so the cost per article grows
with the article and its hits, not with the number of rules.
"""

from worker.rules.compile import CompiledRule, compile_rules
from worker.rules.load import LoadedRules, load_rules
from worker.rules.match import RuleMatch, RuleSet
from worker.rules.model import Entity, Rule, When

__all__ = ["CompiledRule", "Entity", "LoadedRules", "Rule", "RuleMatch", "RuleSet", "When",
           "compile_rules", "load_rules"]

"""Stories: near-duplicate articles grouped, so a story alerts once however many outlets and
copies carry it.

Each article gets a MinHash signature of its normalized text (word 3-shingles of token keys, so
diacritics, tatweel, case and punctuation do not matter); locality-sensitive hashing cuts the
signature into bands, and articles sharing a band are candidates. A new article joins a story
when its estimated Jaccard similarity to one of the story's articles passes the threshold
(higher for short texts, where a few shared words mean little).

Which articles of a story are compared: the index keeps one row per (band, story), naming the
story's first article with that band, so a story offers at most ``BANDS`` representatives
however many copies it has. Of those, the ones sharing most bands with the new article (at most
``PER_STORY``) are compared, for at most ``MAX_STORIES`` candidate stories. So placement looks
at every kind of copy a story has taken (the full text, an abridged top, an abridged bottom),
not only its newest one, and its cost stays bounded when a wire flood makes hundreds of copies
share bands. An exact copy (the same text hash, any source) joins its story directly.

Band hashes live in the database under an index, so the cost per article is one indexed
look-up, whatever the number of stored articles; the index survives restarts and is shared
by every worker."""

from __future__ import annotations

import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from worker import minhash_constants, textnorm
from worker.domain import Article

PERMUTATIONS = 128
BANDS, ROWS = 32, 4                 # candidates from ~0.42 up: copies at 0.5 are rarely missed
SHINGLE = 3
THRESHOLD = 0.5                     # estimated Jaccard of 3-shingles to join a story
SHORT = 30                          # tokens: below this, a text is short …
SHORT_THRESHOLD = 0.8               # … and must be nearly the same to join
HORIZON = timedelta(hours=72)       # a story takes copies for this long after its articles
PER_STORY = 4                       # representatives compared per candidate story
MAX_STORIES = 16                    # candidate stories compared per new article
# Multiply-shift hashing: (a·x + b) mod 2^64, top 32 bits; a odd. No modulo to compute.
_A = np.array(minhash_constants.A, dtype=np.uint64)
_B = np.array(minhash_constants.B, dtype=np.uint64)
_SHIFT = np.uint64(32)


@dataclass(frozen=True, slots=True)
class Signature:
    values: np.ndarray          # PERMUTATIONS uint32 minima
    tokens: int                 # how many tokens the text had

    def bands(self) -> list[int]:
        """One signed 64-bit hash per band (BIGINT-safe), the band's index mixed in."""
        out = []
        raw = self.values.astype("<u4").tobytes()
        for b in range(BANDS):
            digest = zlib.crc32(raw[b * ROWS * 4:(b + 1) * ROWS * 4], b) | (b << 32)
            out.append(digest if digest < (1 << 63) else digest - (1 << 64))
        return out

    def to_bytes(self) -> bytes:
        return self.values.astype("<u4").tobytes() + self.tokens.to_bytes(4, "little")

    @classmethod
    def from_bytes(cls, data: bytes) -> Signature:
        return cls(np.frombuffer(data[:-4], dtype="<u4").astype(np.uint32),
                   int.from_bytes(data[-4:], "little"))

    def similarity(self, other: Signature) -> float:
        return float(np.count_nonzero(self.values == other.values)) / PERMUTATIONS

    def joins(self, other: Signature) -> bool:
        """Whether two texts tell the same story."""
        short = min(self.tokens, other.tokens) < SHORT
        return self.similarity(other) >= (SHORT_THRESHOLD if short else THRESHOLD)


def signature(article: Article) -> Signature:
    keys = [*textnorm.keys(article.field_text("title")), *textnorm.keys(article.summary),
            *textnorm.keys(article.body)]
    if len(keys) < SHINGLE:
        shingles = {" ".join(keys)}
    else:
        shingles = {" ".join(keys[i:i + SHINGLE]) for i in range(len(keys) - SHINGLE + 1)}
    hashes = np.fromiter((zlib.crc32(s.encode()) for s in shingles), dtype=np.uint64,
                         count=len(shingles))
    # every permutation of every shingle, then the minimum per permutation
    mixed = (np.outer(_A, hashes) + _B[:, None]) >> _SHIFT
    return Signature(mixed.min(axis=1).astype(np.uint32), len(keys))


def rank(rows: Iterable[tuple[int, int]]) -> list[tuple[int, list[int]]]:
    """The candidate stories of *rows* ((story id, article id) per shared band) and, per story,
    the representatives to compare: the ``MAX_STORIES`` stories sharing most bands, and of
    each the ``PER_STORY`` articles sharing most (ties: older first)."""
    shared: dict[int, Counter[int]] = defaultdict(Counter)
    for story, article in rows:
        shared[story][article] += 1
    ranked = sorted(shared.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    return [(story, [a for a, _ in sorted(articles.items(),
                                          key=lambda item: (-item[1], item[0]))[:PER_STORY]])
            for story, articles in ranked[:MAX_STORIES]]


def choose(sig: Signature, ranked: list[tuple[int, list[int]]],
           load: Callable[[int], Signature | None]) -> tuple[int | None, float]:
    """The story *sig* joins among *ranked* (see ``rank``) and the similarity that decided it,
    or ``(None, best)`` when none passes. *load* gives a representative's signature (None
    when it has none). Ties go to the older story (lower id)."""
    best, chosen = 0.0, None
    for story, reps in ranked:
        for article in reps:
            other = load(article)
            if other is None:
                continue
            score = sig.similarity(other)
            if sig.joins(other) and (chosen is None or score > best
                                     or (score == best and story < chosen)):
                best, chosen = score, story
    return chosen, best

"""One text normalizer for article text and rule terms.

The rules (``config`` users write against them; see README "Normalization"):

* Unicode NFKC, then case folding; combining marks dropped after canonical decomposition, which
  removes Latin accents (é → e) and Arabic harakat, tanwin, shadda, sukun and the superscript
  alef, and turns أ إ آ into ا, ؤ into و and ئ into ي.
* Arabic letters: ٱ → ا, ى → ي, ة → ه, Persian/Kurdish ی → ي and ک → ك; tatweel removed;
  Arabic-Indic and Eastern Arabic-Indic digits → 0-9.
* Invisible characters: the zero-width non-joiner (U+200C), which Persian and Kurdish put
  between the parts of a word, and the zero-width space (U+200B) separate tokens as a space
  does; every other format character (ZWJ, LRM/RLM/ALM, bidi embeddings, overrides and
  isolates, soft hyphen, word joiner, BOM) is removed, so it never splits or hides a word.
* Tokens are maximal runs of letters, digits and marks: punctuation and symbols of every script
  (Arabic comma and question mark, quotes, guillemets, the hyphen in al-Asad) separate them.
* Arabic proclitics: a token in Arabic script loses, in order and each only if two letters
  remain, a conjunction (و ف), a preposition (ب ل ك) and the article ال; لل is ل + ال.
  The result is the token's *key*; two tokens match when their keys are equal.

Normalization is per token and cached, so an article costs one regex scan plus a dictionary
look-up per token; positions are token indexes, stable under normalization, and each token keeps
its span in the original text for explanations.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from bisect import bisect_left
from functools import lru_cache

# Characters that separate tokens though Unicode calls them format characters.
SEPARATING = {0x200B: " ", 0x200C: " "}   # zero-width space, zero-width non-joiner
# Where the marks and format characters that matter live: the Basic Multilingual Plane and
# plane 14 (tags, variation selectors). The hundreds of small mark ranges of plane 1 (Brahmi,
# Adlam …) would make the token regex three times slower for scripts news here never uses.
_PLANES = (range(0x0000, 0x10000), range(0xE0000, 0xE1000))


def _invisible() -> tuple[list[int], list[int]]:
    """Code points inside words that normalization drops (non-spacing and enclosing marks,
    format characters) and spacing marks (vowel signs of Indic scripts), which it keeps."""
    dropped: list[int] = []
    kept: list[int] = []
    for plane in _PLANES:
        for cp in plane:
            cat = unicodedata.category(chr(cp))
            if cat in {"Mn", "Me", "Cf"} and cp not in SEPARATING:
                dropped.append(cp)
            elif cat == "Mc":
                kept.append(cp)
    return dropped, kept


def _char_class(cps: list[int]) -> str:
    ranges: list[str] = []
    for _, run in itertools.groupby(enumerate(cps), lambda p: p[1] - p[0]):
        span = [cp for _, cp in run]
        first, last = re.escape(chr(span[0])), re.escape(chr(span[-1]))
        ranges.append(first if span[0] == span[-1] else f"{first}-{last}")
    return "[" + "".join(ranges) + "]"


_DROPPED, _SPACING_MARKS = _invisible()
# Inside a token: letters and digits, marks, and the invisible characters removed below.
WORD_RE = re.compile(f"(?:[^\\W_]|{_char_class(sorted(_DROPPED + _SPACING_MARKS))})+")

_ARABIC_LETTERS = {
    "\u0671": "\u0627",  # ٱ alef wasla -> ا
    "\u0649": "\u064a",  # ى alef maksura -> ي
    "\u0629": "\u0647",  # ة teh marbuta -> ه
    "\u06cc": "\u064a",  # ی Farsi yeh -> ي
    "\u06d2": "\u064a",  # ے yeh barree -> ي
    "\u06a9": "\u0643",  # ک keheh -> ك
    "\u06aa": "\u0643",  # ڪ swash kaf -> ك
    "\u06be": "\u0647",  # ھ heh doachashmee -> ه
    "\u06c1": "\u0647",  # ہ heh goal -> ه
    "\u0640": None,      # tatweel
    # The ayn and hamza marks of transliterations (ʿAyn, ʾIrbil, Hawaiʻi) are no letters.
    "\u02bb": None, "\u02bc": None, "\u02be": None, "\u02bf": None,
}
_DIGITS = {0x0660 + i: str(i) for i in range(10)} | {0x06F0 + i: str(i) for i in range(10)}
TRANSLATE = str.maketrans({**{ord(k): v for k, v in _ARABIC_LETTERS.items()}, **_DIGITS})


# Dropped after canonical decomposition: non-spacing and enclosing marks (accents, harakat) and
# format characters; the separating ones become spaces.
MARKS: dict[int, str | None] = dict.fromkeys(_DROPPED) | SEPARATING


def normalize_text(text: str) -> str:
    """Normalize characters of *text*, keeping punctuation and spacing (for ``re:`` terms)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = unicodedata.normalize("NFD", text).translate(MARKS)
    return text.translate(TRANSLATE)


def is_arabic(word: str) -> bool:
    """Whether *word* is written in Arabic script (by its first letter)."""
    return bool(word) and _is_arabic(word[0])


def _is_arabic(ch: str) -> bool:
    return "\u0600" <= ch <= "\u06ff" or "\u0750" <= ch <= "\u077f" or "\u08a0" <= ch <= "\u08ff"


def _strip(token: str, stage: int = 0) -> str:
    """Strip proclitics greedily from *stage* on (0 conjunction, 1 preposition, 2 article)."""
    if not token or not _is_arabic(token[0]):
        return token
    if stage <= 0 and token[0] in "وف" and len(token) >= 3:
        token = token[1:]
    if stage <= 1 and token[0] in "بلك" and len(token) >= 3:
        if token.startswith("لل") and len(token) >= 4:
            return token[2:]  # لل = ل + ال, the article's alef elided
        token = token[1:]
    if stage <= 2 and token.startswith("ال") and len(token) >= 4:
        token = token[2:]
    return token


def strip_proclitics(token: str) -> str:
    """The key of a normalized token: its Arabic proclitics removed while two letters remain.
    Text tokens are looked up by this key."""
    return _strip(token)


def _forms(token: str) -> list[tuple[str, int]]:
    """The token after each proclitic it may lose, with the stage reached: its readings."""
    forms = [(token, 0)]
    if not token or not _is_arabic(token[0]):
        return forms
    for stage in (1, 2, 3):
        nxt = _strip(token, stage - 1) if stage == 3 else _strip_one(token, stage - 1)
        if nxt != token:
            if stage == 2 and token.startswith("لل") and len(nxt) == len(token) - 2:
                forms.append((nxt, 3))   # لل took the article with it: nothing more to lose
                return forms
            token = nxt
            forms.append((token, stage))
    return forms


def prefix_keys(norm: str) -> frozenset[str]:
    """The key beginnings a prefix term's last token may be found under. The article's word is
    longer than the prefix, so its proclitics are stripped under the length check of the whole
    word: strip the prefix as if it went on (``بر*`` is found under ر, as in برلمان → رلمان).
    Hits are then checked against the word's readings."""
    out = {norm}
    if norm and _is_arabic(norm[0]):
        for stage in (0, 1, 2):
            out.add(_strip(norm + "\uffff\uffff\uffff", stage).rstrip("\uffff"))
    return frozenset(out)


def _strip_one(token: str, stage: int) -> str:
    """Remove the one proclitic of *stage* if present (a preposition takes an elided article)."""
    if stage == 0:
        return token[1:] if token[0] in "وف" and len(token) >= 3 else token
    if token[0] in "بلك" and len(token) >= 3:
        return token[2:] if token.startswith("لل") and len(token) >= 4 else token[1:]
    return token


@lru_cache(maxsize=65_536)
def key_variants(norm: str) -> frozenset[str]:
    """The text keys a normalized term token matches. Proclitics are each optional, so two
    tokens match when some reading of one equals some reading of the other: the term token
    ``بغداد`` (key غداد) also matches ``ببغداد`` (key بغداد) through the reading بغداد."""
    return frozenset(_strip(form, stage) for form, _ in _forms(norm) for stage in range(4))


@lru_cache(maxsize=65_536)
def readings(norm: str) -> frozenset[str]:
    """Every form a normalized token may stand for once its optional proclitics go: two
    tokens match when they share one. ``وبالقاعده`` reads as itself, بالقاعده, القاعده and
    قاعده; ``بغداد`` as itself and غداد."""
    return frozenset(form for form, _ in _forms(norm))


@lru_cache(maxsize=262_144)
def analyse(raw: str) -> tuple[tuple[str, str], ...]:
    """(normalized form, key) of each token in one raw token. Usually one; NFKC can split a
    ligature (ﷺ) into several; none for a token made only of marks or tatweel."""
    return tuple((m.group(), strip_proclitics(m.group()))
                 for m in WORD_RE.finditer(normalize_text(raw)))


def token_norms(raw: str) -> tuple[str, ...]:
    """Normalized forms of one raw token, before proclitics are stripped."""
    return tuple(norm for norm, _ in analyse(raw))


def norms(text: str) -> list[str]:
    """The normalized tokens of *text*, proclitics kept (what a term compiles from)."""
    out: list[str] = []
    for m in WORD_RE.finditer(text):
        out.extend(token_norms(m.group()))
    return out


def keys(text: str) -> list[str]:
    """The token keys of *text*, in order."""
    return list(Tokens(text).keys)


class Tokens:
    """The tokens of one text: their keys in order (what matching needs, computed at once) and,
    on demand, their normalized forms and spans in the original text (what explanations and
    reading checks need, for the few articles that match)."""

    __slots__ = ("_analysed", "_detail", "_simple", "keys", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._analysed = analysed = [analyse(raw) for raw in WORD_RE.findall(text)]
        self._simple = all(len(a) == 1 for a in analysed)   # one token per word, as usual
        if self._simple:
            self.keys = tuple(a[0][1] for a in analysed)
        else:
            self.keys = tuple(key for a in analysed for _, key in a)
        self._detail: tuple[tuple[str, ...], tuple[tuple[int, int], ...]] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def _details(self) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
        if self._detail is None:
            words = [m.span() for m in WORD_RE.finditer(self.text)]
            if self._simple:
                self._detail = (tuple(a[0][0] for a in self._analysed), tuple(words))
            else:   # a word that gave several tokens (or none) repeats (or drops) its span
                pairs = [(norm, span) for a, span in zip(self._analysed, words, strict=True)
                         for norm, _ in a]
                self._detail = (tuple(n for n, _ in pairs), tuple(s for _, s in pairs))
        return self._detail

    @property
    def norms(self) -> tuple[str, ...]:
        return self._details()[0]

    @property
    def spans(self) -> tuple[tuple[int, int], ...]:
        return self._details()[1]

    @property
    def starts(self) -> list[int]:
        return [s for s, _ in self.spans]

    def source(self, first: int, last: int) -> str:
        """The original text of tokens first..last (inclusive)."""
        spans = self.spans
        return self.text[spans[first][0] : spans[last][1]]

    def snippet(self, first: int, last: int, width: int = 60) -> str:
        """Original text around tokens first..last, cut at word boundaries, with ellipses."""
        spans = self.spans
        start, end = spans[first][0], spans[last][1]
        lo = max(0, start - width)
        hi = min(len(self.text), end + width)
        if lo > 0:   # begin at the first token starting inside the window
            i = bisect_left(spans, (lo, -1))
            lo = spans[i][0] if i < len(spans) and spans[i][0] <= start else lo
        if hi < len(self.text):   # end at the last token ending inside it
            j = first
            while j + 1 < len(spans) and spans[j + 1][1] <= hi:
                j += 1
            hi = max(spans[j][1], end)
        body = " ".join(self.text[lo:hi].split())
        return f"{'… ' if lo > 0 else ''}{body}{' …' if hi < len(self.text) else ''}"


def tokenize(text: str) -> Tokens:
    """Split *text* into tokens, keeping where each came from."""
    return Tokens(text)


_WHITE = re.compile(r"\s+")


@lru_cache(maxsize=65_536)
def normalize_piece(text: str) -> str:
    """normalize_text with white space folded to single spaces; cached for repeated pieces."""
    return _WHITE.sub(" ", normalize_text(text))

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
* Arabic proclitics are stripped from the text, never from the term. A text token's *readings*
  are the forms it may stand for: itself, and itself after losing a conjunction (و ف), then a
  preposition (ب ل ك), then the article ال, each optional and each only while two letters
  remain; لل is ل + ال (للبيان reads البيان and بيان) or ل before a word starting with ل
  (للبنان reads لبنان). A text token matches a term token when one of its readings equals the
  term token or the term token less its own article (``term_forms``).
* Its *key* is its deepest reading, each proclitic stripped greedily (``strip_proclitics``):
  matching looks text tokens up by key, so a term token is compiled under the keys of every
  text token that may match it (``key_variants``, ``prefix_keys``), and each hit is then
  checked against the readings, unless the key alone already decides.

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


CONJUNCTIONS = "وف"
PREPOSITIONS = "بلك"
ARTICLE = "ال"


def _strip(token: str) -> str:
    """The greedy key: conjunction, preposition (لل = ل + ال) and article stripped, each while
    two letters remain."""
    if not token or not _is_arabic(token[0]):
        return token
    if token[0] in CONJUNCTIONS and len(token) >= 3:
        token = token[1:]
    if token[0] in PREPOSITIONS and len(token) >= 3:
        if token.startswith("لل") and len(token) >= 4:
            return token[2:]  # لل = ل + ال, the article's alef elided
        token = token[1:]
    if token.startswith(ARTICLE) and len(token) >= 4:
        token = token[2:]
    return token


def strip_proclitics(token: str) -> str:
    """The key of a normalized token: its Arabic proclitics stripped greedily while two letters
    remain. Text tokens are looked up by this key; it is always one of their readings."""
    return _strip(token)


def _readings(token: str) -> frozenset[str]:
    out = {token}
    if len(token) < 3 or not _is_arabic(token[0]):
        return frozenset(out)
    stems = [token]
    if token[0] in CONJUNCTIONS:
        stems.append(token[1:])
    for stem in stems:
        forms = [stem]
        if len(stem) >= 3 and stem[0] in PREPOSITIONS:
            forms.append(stem[1:])                  # للبنان: ل + لبنان
            if stem.startswith("لل") and len(stem) >= 4:
                forms.append(ARTICLE + stem[2:])    # للبيان: ل + البيان, the alef restored
        for form in forms:
            out.add(form)
            if len(form) >= 4 and form.startswith(ARTICLE):
                out.add(form[2:])
    return frozenset(out)


@lru_cache(maxsize=65_536)
def readings(norm: str) -> frozenset[str]:
    """Every form a normalized text token may stand for once its optional proclitics go (see
    the module's docstring): ``وبالقاعده`` reads as itself, بالقاعده, القاعده and قاعده;
    ``للبيان`` as itself, لبيان, البيان and بيان; ``بغداد`` as itself and غداد."""
    return _readings(norm)


def term_forms(norm: str) -> frozenset[str]:
    """What a text token's reading must equal to match the term token *norm*: the token, or the
    token less its own article while two letters remain. A term's other letters are never
    proclitics: بعقوبه is only بعقوبه."""
    if _is_arabic(norm[:1]) and norm.startswith(ARTICLE) and len(norm) >= 4:
        return frozenset((norm, norm[2:]))
    return frozenset((norm,))


def prefix_forms(norm: str) -> tuple[str, ...]:
    """What a text token's reading must start with to match the prefix term token *norm*: the
    prefix, or the prefix less its own article while two letters remain."""
    return tuple(sorted(term_forms(norm)))


# How a text token may be written around one of its readings R (a conjunction, then a
# preposition, then the article): و and ف behave alike, as do ب and ك; ل differs by لل.
_AROUND = ("", "ب", "ل", "ال", "بال", "لل")


def _spellings(reading: str) -> list[str]:
    """Text tokens that may have *reading* among their readings (a superset: each is checked)."""
    out = []
    for conj in ("", "و"):
        for around in _AROUND:
            out.append(conj + around + reading)
        if reading.startswith(ARTICLE):
            out.append(conj + "لل" + reading[2:])   # ل + ال + …, the alef elided
    return out


@lru_cache(maxsize=65_536)
def key_variants(norm: str) -> frozenset[str]:
    """The keys of every text token that may match the term token *norm*: the automaton looks
    the term up under each, and a hit is checked against the readings (``term_forms``) unless
    the key is itself one of them. ``بغداد`` is under غداد (بغداد, وبغداد) and بغداد (ببغداد)."""
    if not _is_arabic(norm[:1]):
        return frozenset((norm,))
    return frozenset(_strip(text) for form in term_forms(norm) for text in _spellings(form)
                     if form in _readings(text))


_MORE = "\uffff"   # stands for any letter that is not ا or ل, after a prefix


@lru_cache(maxsize=16_384)
def prefix_keys(norm: str) -> frozenset[str]:
    """The key beginnings under which a text token whose reading starts with the prefix *norm*
    (or *norm* less its article) is found. The greedy key of a word depends on its first four
    letters and on its length up to six, so the word is tried on with what may follow the
    prefix: ا or ل or another letter where it matters, then any length (``بر*`` is found under
    ر, as برلمان → رلمان, and under بر, as ببرلمان → برلمان). Hits are checked against the
    readings unless the key already starts with the prefix."""
    if not _is_arabic(norm[:1]):
        return frozenset((norm,))
    keys: set[str] = set()
    for form in prefix_forms(norm):
        for k in range(max(0, 4 - len(form)) + 1):
            for letters in itertools.product(("ا", "ل", _MORE), repeat=k):
                for more in range(6):
                    reading = form + "".join(letters) + _MORE * more
                    keys.update(_strip(text).split(_MORE)[0] for text in _spellings(reading)
                                if reading in _readings(text))
    # A key that starts with another finds nothing the other does not.
    return frozenset(k for k in keys if not any(o != k and k.startswith(o) for o in keys))


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

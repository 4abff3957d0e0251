"""The character encoding of a fetched document, decided before any parser guesses.

In order, the first that applies:

1. A byte-order mark (UTF-8, UTF-16, UTF-32). It beats every label: a BOM is not written by
   accident, a header is often a server's default.
2. Bytes that are valid UTF-8 (and hold no NUL, so are not UTF-16 or UTF-32) are UTF-8, whatever
   the labels say: non-ASCII text in a legacy encoding is all but never valid UTF-8, while a
   server's default ``charset=iso-8859-1`` on a UTF-8 feed is common.
3. The labels: the HTTP header's charset, then the XML declaration's encoding. The first that
   decodes every byte wins.
4. No label decodes cleanly. When the first label still reads nearly everything (the usual
   fault: one character cut in half by a byte-based truncation), it is used and the few bad
   bytes become U+FFFD: one bad byte costs that character, not the feed. When it fails on much
   of the document, or nothing is declared, the label is not believed and charset-normalizer
   sniffs the encoding (an undeclared windows-1256 Arabic feed reads right).

Whatever was replaced or overruled is said in ``Decoded.warning``; a warning is never a failure.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

BOMS = (  # longest first: the UTF-32 LE mark begins with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# "<" or "<?xm" in UTF-16/32 without a BOM, and in EBCDIC (XML 1.0, appendix F)
UNMARKED = ((b"<\0\0\0", "utf-32-le"), (b"\0\0\0<", "utf-32-be"), (b"<\0?\0", "utf-16-le"),
            (b"\0<\0?", "utf-16-be"), (b"\x4c\x6f\xa7\x94", "cp037"))
_DECLARATION = re.compile(rb"""^\s*<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][\w.:-]*)["']""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^\s"';,]+)""", re.IGNORECASE)
MOSTLY_BAD = 20   # a label is not believed when one in 20 of the non-ASCII bytes fails
# Labels Python has no codec for, that name one it has (XML and IANA names of UCS-2 and UCS-4)
ALIASES = {"ucs-2": "utf-16", "iso-10646-ucs-2": "utf-16", "csunicode": "utf-16",
           "ucs-4": "utf-32", "iso-10646-ucs-4": "utf-32", "csucs4": "utf-32"}


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str                  # the codec the text was read with
    how: str                       # "byte-order mark", "UTF-8", "the HTTP header", "detected" …
    warning: str | None = None

    def utf8(self, data: bytes) -> bytes:
        """The document as UTF-8 bytes, without a byte-order mark (*data* itself when it
        already is)."""
        if self.encoding == "utf-8" and self.how == "UTF-8":
            return data
        return self.text.encode("utf-8")


def codec(label: str | None, data: bytes = b"") -> str | None:
    """Python's name for a charset label, or None for a label no codec has. UTF-16 and UTF-32
    without a byte-order mark take the byte order of *data*'s first characters."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(ALIASES.get(label, label)).name
    except LookupError:
        return None
    if name in {"utf-16", "utf-32"}:
        order = unmarked(data) or ""
        return order if order.startswith(name) else f"{name}-be"   # big-endian by default
    return name


def unmarked(data: bytes) -> str | None:
    """UTF-16, UTF-32 or EBCDIC told by a document's first characters when it has no BOM."""
    return next((name for mark, name in UNMARKED if data.startswith(mark)), None)


def header_charset(content_type: str | None) -> str | None:
    m = _CHARSET.search(content_type or "")
    return m.group(1) if m else None


def declared_encoding(data: bytes) -> str | None:
    """The encoding an XML declaration names, read in ASCII or in unmarked UTF-16/32."""
    head = data[:1024]
    name = unmarked(head)
    if name is not None:
        head = head.decode(name, "replace").encode("ascii", "replace")
    m = _DECLARATION.match(head)
    return m.group(1).decode("ascii") if m else None


def _bad(text: str, data: bytes) -> int:
    """How many characters of *text* were put for bytes that did not decode."""
    return text.count("\ufffd") - data.count(b"\xef\xbf\xbd")


def _non_ascii(data: bytes) -> int:
    return len(data) - len(data.translate(None, bytes(range(128))))


def detect(data: bytes) -> str | None:
    """charset-normalizer's best guess, or None."""
    import charset_normalizer  # noqa: PLC0415 (its models load on first use: legacy documents only)

    best = charset_normalizer.from_bytes(data).best()
    return codec(best.encoding) if best is not None else None


def labels_of(data: bytes, content_type: str | None,
              xml: bool) -> tuple[list[tuple[str, str]], list[str]]:
    """The codecs the labels name, each with where it was read, and a note for each label that
    names no codec."""
    found: tuple[tuple[str | None, str], ...] = (
        (header_charset(content_type), "the HTTP header"),
        (declared_encoding(data) if xml else None, "the XML declaration"),
        (unmarked(data), "its first character"))
    labels: list[tuple[str, str]] = []
    notes: list[str] = []
    for label, said in found:
        known = codec(label, data)
        if known is None:
            if label:
                notes.append(f"unknown charset {label!r} in {said}")
        elif known not in {n for n, _ in labels}:
            labels.append((known, said))
    return labels, notes


def decide(data: bytes, content_type: str | None = None, *, xml: bool = True) -> Decoded:
    """The text of *data* served with the Content-Type *content_type*. With *xml*, the XML
    declaration is read as a label too (JSON has none)."""
    for mark, name in BOMS:
        if data.startswith(mark):
            body = data[len(mark):]
            text = body.decode(name, "replace")
            return Decoded(text, name, "byte-order mark",
                           _warning(_replaced(text, body, name, "its byte-order mark")))
    if b"\0" not in data:
        try:
            return Decoded(data.decode("utf-8"), "utf-8", "UTF-8")
        except UnicodeDecodeError:
            pass
    labels, notes = labels_of(data, content_type, xml)
    for name, how in labels:
        try:
            return Decoded(data.decode(name), name, how, _warning(notes))
        except UnicodeError:
            continue
    # Nothing declared is UTF-8 (XML's default, and JSON's only encoding).
    name, how = labels[0] if labels else ("utf-8", "")
    text = data.decode(name, "replace")
    if _bad(text, data) * MOSTLY_BAD > max(_non_ascii(data), MOSTLY_BAD):
        guessed = _guess(data, labels, notes)
        if guessed is not None:
            return guessed
    return Decoded(text, name, how or "default",
                   _warning([*notes, *_replaced(text, data, name, how)]))


def _guess(data: bytes, labels: list[tuple[str, str]], notes: list[str]) -> Decoded | None:
    """What the detector reads, when it reads every byte."""
    guess = detect(data)
    if guess is None:
        return None
    try:
        text = data.decode(guess)
    except UnicodeError:
        return None
    if labels:
        said = " and ".join(f"{n} by {h}" for n, h in labels)
        notes = [*notes, f"declared {said}, but it is not: read as {guess} (detected)"]
    return Decoded(text, guess, "detected", _warning(notes))


def _replaced(text: str, data: bytes, name: str, how: str) -> list[str]:
    bad = _bad(text, data)
    said = f" (as {how} says)" if how else ""
    return [f"{bad} undecodable byte sequence(s) in {name}{said}, each read as U+FFFD"] \
        if bad > 0 else []


def _warning(notes: list[str]) -> str | None:
    return "parse: " + "; ".join(notes) if notes else None

"""Plain text from HTML and from untidy feed text."""

from __future__ import annotations

import re
from html import unescape
from html.entities import html5

from bs4 import BeautifulSoup

_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANKS = re.compile(r"\n\s*\n+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Anything html_to_text may change: the start of a tag, a comment or a declaration, or of a
# character reference (complete or not).
MARKUP = re.compile(r"<[a-zA-Z!/?]|&[#a-zA-Z]")

# What the fast path leaves to BeautifulSoup, found in the fragment: elements whose content
# html.parser does not read as markup (raw text or RCDATA, depending on the Python version) or
# whose white space it keeps, comments, CDATA, doctypes, processing instructions, and the end
# tag of an empty element (``</br>``, ``</img>``), which ends a string or not depending on
# what came before it.
_EMPTY_ELEMENTS = ("area", "base", "basefont", "bgsound", "br", "col", "command", "embed",
                   "frame", "hr", "image", "img", "input", "isindex", "keygen", "link",
                   "menuitem", "meta", "nextid", "param", "source", "spacer", "track", "wbr")
_DIFFICULT = re.compile(
    r"<(?:script|style|noscript|template|textarea|title|xmp|iframe|noembed|noframes|plaintext"
    r"|pre)\b|<[!?]|</(?:" + "|".join(_EMPTY_ELEMENTS) + r")(?![^\s/>])",
    re.IGNORECASE)
# A start or end tag with no "<" inside it (html.parser reads "</p<b>" its own way).
_TAG = re.compile(r"""</?[a-zA-Z][^\s/<>]*(?:[^'"<>]|"[^"<]*"|'[^'<]*')*>""")
# ... and found once the tags are gone, what html.parser reads otherwise than html.unescape:
# a "<" that starts a tag never closed (or an end tag such as "</>" or "</ br>"), a numeric
# reference without its ";", a name without one (html.parser keeps "&copyA", html.unescape
# reads "©A"), and a name that is not a whole reference ("&notit;": html.parser "&notit",
# html.unescape "¬it;").
_AMBIGUOUS = re.compile(r"<[a-zA-Z/!?]|&#(?![0-9]+;|[xX][0-9a-fA-F]+;)"
                        r"|&[a-zA-Z][a-zA-Z0-9]*(?![a-zA-Z0-9;])")
_NAMED = re.compile(r"&([a-zA-Z][a-zA-Z0-9]*;)")
# Numeric references to what is no character (0, a surrogate, a noncharacter, past U+10FFFF)
# read differently by html.unescape and by each BeautifulSoup release; these are the ones
# worth a look: zero, and values of five decimal or four hex digits and more.
_BIG_REF = re.compile(r"&#(?:0*(?:[1-9][0-9]{4,})?|[xX]0*(?:[1-9a-fA-F][0-9a-fA-F]{3,})?);")
# BeautifulSoup turns a string of ASCII white space alone between two tags (references
# decoded) into one line break, or one space: a blank line there is no paragraph break.
_BLANK_LINE = re.compile(r"\n[ \t\r\f]*\n")
_NEWLINE_REF = re.compile(r"&(?:#0*10|#[xX]0*[aA]|NewLine);")
_ONLY_SPACE = re.compile(r"[ \t\r\f]*\n[ \t\n\r\f]*")


def strip_control(text: str) -> str:
    """*text* without control characters (a NUL from a broken feed would be refused by
    PostgreSQL); line breaks and tabs stay. A lone surrogate (from "&#xD800;" as some
    BeautifulSoup releases read it), which no encoder writes, becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", _CONTROL.sub("", text))


def clean_space(text: str) -> str:
    """Fold runs of spaces, keep paragraph breaks, drop control characters."""
    lines = (_SPACE.sub(" ", line).strip() for line in strip_control(text).split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment or page, as BeautifulSoup's ``get_text(" ")`` gives it:
    :func:`soup_text`, which :func:`fast_text` spares for the usual feed summary."""
    text = fast_text(html)
    return soup_text(html) if text is None else text


def fast_text(html: str) -> str | None:
    """:func:`soup_text` of *html* without BeautifulSoup, ten times cheaper, or None when only
    BeautifulSoup reads it right. Text without markup passes through; a fragment of plain
    tags and complete character references has its tags replaced by spaces and its
    references decoded. Scripts, styles, comments, a doctype, an unclosed tag, the end tag
    of an empty element, a reference html.parser reads otherwise: None.
    ``tests/test_htmltext.py`` holds the two paths equal."""
    if not MARKUP.search(html):
        return clean_space(html)
    if _DIFFICULT.search(html):
        return None
    if not (_BLANK_LINE.search(html) or _NEWLINE_REF.search(html)):
        text = _TAG.sub(" ", html)
        return None if _ambiguous(text) else clean_space(unescape(text))
    pieces = _TAG.split(html)   # the strings between tags, each read as BeautifulSoup does
    if _ambiguous(" ".join(pieces)):
        return None
    strings = (unescape(piece) for piece in pieces)
    return clean_space(" ".join("\n" if _ONLY_SPACE.fullmatch(s) else s for s in strings))


def _ambiguous(text: str) -> bool:
    return _AMBIGUOUS.search(text) is not None or \
        not all(m.group(1) in html5 for m in _NAMED.finditer(text)) or \
        any(_no_character(m.group()) for m in _BIG_REF.finditer(text))


def _no_character(reference: str) -> bool:
    digits = reference[2:-1]
    n = int(digits[1:], 16) if digits[:1] in ("x", "X") else int(digits or "0")
    return n == 0 or 0xD800 <= n <= 0xDFFF or 0xFDD0 <= n <= 0xFDEF or \
        (n & 0xFFFE) == 0xFFFE or n > 0x10FFFF


def soup_text(html: str) -> str:
    """The slow path, and the definition of the fast one: BeautifulSoup (html.parser) without
    scripts, styles, noscript and template elements, ``get_text(" ")``, :func:`clean_space`."""
    # The trailing space: html.parser drops the "&" of a reference-like "&T" at the very end
    # of its input ("AT&T" would read "ATT"), and BeautifulSoup takes a short text without a
    # space for a URL or a file name it should warn about; the space is folded away below.
    # The leading <html>: a fragment starting with "<?xml" would be taken for an XML document
    # and warned about. Neither changes which strings the document holds.
    soup = BeautifulSoup("<html>" + html + " ", "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return clean_space(soup.get_text(" "))

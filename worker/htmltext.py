"""Plain text from HTML and from untidy feed text."""

from __future__ import annotations

import re
from html import unescape

from bs4 import BeautifulSoup

_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANKS = re.compile(r"\n\s*\n+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
MARKUP = re.compile(r"<[a-zA-Z!/?]|&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
_DIFFICULT = re.compile(r"<(?:script|style|noscript|template|textarea)\b|<!--|<!\[CDATA\[|<\?",
                        re.IGNORECASE)
_TAG = re.compile(r"""</?[a-zA-Z][^\s/>]*(?:[^'">]|"[^"]*"|'[^']*')*>""")


def strip_control(text: str) -> str:
    """*text* without control characters (a NUL from a broken feed would be refused by
    PostgreSQL); line breaks and tabs stay."""
    return _CONTROL.sub("", text)


def clean_space(text: str) -> str:
    """Fold runs of spaces, keep paragraph breaks, drop control characters."""
    lines = (_SPACE.sub(" ", line).strip() for line in strip_control(text).split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment or page, as BeautifulSoup's ``get_text(" ")`` gives it.
    Text without markup passes through; a fragment of plain tags (the usual feed summary) has
    its tags replaced by spaces and its entities decoded, ten times cheaper; anything with
    scripts, styles, comments or CDATA goes to BeautifulSoup."""
    if not MARKUP.search(html):
        return clean_space(html)
    if not _DIFFICULT.search(html):
        return clean_space(unescape(_TAG.sub(" ", html)))
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return clean_space(soup.get_text(" "))

"""What a document is, when it is not a feed: said in the error a source records."""

from __future__ import annotations

import re
from urllib.parse import urljoin

MAGIC = (  # leading bytes of the files a feed URL most often serves by mistake
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"), (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "gzip-compressed data that no Content-Encoding announced"),
    (b"BZh", "bzip2-compressed data"), (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"), (b"ID3", "an MP3 file"),
    (b"\x00\x00\x01\x00", "an icon"), (b"wOFF", "a web font"), (b"wOF2", "a web font"),
)
_HTML = re.compile(r"^(?:\s|<!--.*?-->)*<(?:!doctype\s+html|html|head|body)[\s>]",
                   re.IGNORECASE | re.DOTALL)
_PROLOG = re.compile(r"^(?:\s|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)*",
                     re.DOTALL)
_ROOT = re.compile(r"<([A-Za-z_][\w.:-]*)")
_FEED_LINK = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""\b(rel|type|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""",
                   re.IGNORECASE)
FEED_TYPES = {"application/rss+xml", "application/atom+xml", "application/feed+json",
              "application/json", "application/rdf+xml"}


def binary_kind(data: bytes) -> str | None:
    """What *data* is by its first bytes, when it is a known kind of file that is no text."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "a WebP image"
    for magic, kind in MAGIC:
        if data.startswith(magic):
            return kind
    return None


def is_html(text: str) -> bool:
    return bool(_HTML.match(text[:4096]))


def feed_link(html: str, base: str | None) -> str | None:
    """The first feed an HTML page announces (``<link rel="alternate" type="…rss+xml">``)."""
    for tag in _FEED_LINK.findall(html[:200_000]):
        attrs = {m[0].lower(): m[1] or m[2] or m[3] for m in _ATTR.findall(tag)}
        if "alternate" in attrs.get("rel", "").lower().split() and \
                attrs.get("type", "").lower() in FEED_TYPES and attrs.get("href"):
            return urljoin(base or "", str(attrs["href"]))
    return None


def text_kind(text: str) -> str:
    """What a text that no feed parser read is: an HTML page, XML of another kind, text."""
    if is_html(text):
        return "an HTML page"
    stripped = text.lstrip()
    if stripped.startswith("<"):
        prolog = _PROLOG.match(stripped[:65536])
        rest = stripped[prolog.end():] if prolog else stripped
        m = _ROOT.match(rest)
        if m:
            return f"XML whose root element is <{m.group(1)}>, not a feed"
        if not rest.strip():
            return "an XML document with no root element"
    sample = stripped[:4096]
    if sum(c < " " and c not in "\t\n\r" for c in sample) * 20 > len(sample):
        return "binary data"
    return "plain text" if sample else "an empty document"

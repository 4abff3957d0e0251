"""OPML, the subscription list every feed reader imports and exports (OPML 2.0,
http://opml.org/spec2.opml): read into raqib sources, and written from them.

Reading: every ``<outline>`` with an ``xmlUrl`` is a feed. Its name comes from ``title`` or
``text`` (made into a source name: lower case, words joined by ``-``, unique), its tags from
its ``category`` attribute (comma-separated; ``/a/b`` paths give ``a`` and ``b``) and from the
folders (outlines without ``xmlUrl``) it sits in. Feeds with a URL raqib cannot poll (not http,
https or file) are skipped with a problem naming the line, and so are URLs seen twice. A file
that is not OPML at all (not XML, or a document other than ``<opml>``) is an ``OpmlError``.

Parsing uses the standard library's expat, which resolves no external entities and (expat
2.4.1 and later) refuses entity-expansion bombs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from xml.parsers import expat
from xml.sax.saxutils import quoteattr

import yaml

from worker.config import NAME_MAX, check_url
from worker.errors import Problem, RaqibError


class OpmlError(RaqibError):
    """A file that is not an OPML subscription list."""


@dataclass
class Feed:
    """One feed of an OPML file: the source it becomes, and the line it came from."""

    name: str
    url: str
    tags: list[str] = field(default_factory=list)
    title: str = ""
    line: int = 0


def slug(text: str) -> str:
    """A source name or tag from a title: lower case, letters and digits of any script, the
    rest collapsed into single ``-`` (``"Rudaw — عربي"`` -> ``rudaw-عربي``)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    out = re.sub(r"[^\w]+", "-", text).strip("-_")
    return out[:NAME_MAX].strip("-") or "feed"


def read(data: bytes, path: str, *, taken: Iterable[str] = (),
         known_urls: Iterable[str] = ()) -> tuple[list[Feed], list[Problem]]:
    """The feeds of an OPML document (*path* names it in problems); names are unique and
    differ from *taken*; URLs in *known_urls* (already configured) are left out, with a
    problem each. Raises ``OpmlError`` when it is not OPML."""
    feeds: list[Feed] = []
    problems: list[Problem] = []
    names = set(taken)
    urls = set(known_urls)
    folders: list[str | None] = []   # per open outline: its folder tag, or None for a feed
    seen_root: list[str] = []
    parser = expat.ParserCreate()

    def start(tag: str, attrs: dict[str, str]) -> None:
        if not seen_root:
            seen_root.append(tag)
        line = parser.CurrentLineNumber
        if tag != "outline":
            return
        url = (attrs.get("xmlUrl") or attrs.get("xmlurl") or "").strip()
        title = (attrs.get("title") or attrs.get("text") or "").strip()
        if not url:
            folders.append(slug(title) if title else None)
            return
        folders.append(None)
        try:
            check_url(url)
        except ValueError as exc:
            problems.append(Problem(path, line, f"feed {title or url!r} skipped: {exc}"))
            return
        if url in urls:
            problems.append(Problem(path, line, f"feed {title or url!r} skipped: {url} is "
                                                "already a source"))
            return
        urls.add(url)
        tags = [t for t in folders[:-1] if t]
        for category in (attrs.get("category") or "").split(","):
            tags += [slug(part) for part in category.split("/") if part.strip()]
        base = slug(title or url.split("//", 1)[-1])
        name, n = base, 2
        while name in names:
            name, n = f"{base[:NAME_MAX - 4]}-{n}", n + 1
        names.add(name)
        feeds.append(Feed(name, url, list(dict.fromkeys(tags)), title, line))

    def end(tag: str) -> None:
        if tag == "outline" and folders:
            folders.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise OpmlError(f"{path}:{exc.lineno}: not OPML: invalid XML "
                        f"({expat.ErrorString(exc.code)})") from None
    if seen_root != ["opml"]:
        raise OpmlError(f"{path}:1: not OPML: the document is <{seen_root[0] if seen_root else ''}>"
                        ", not <opml>")
    return feeds, problems


def as_yaml(feeds: Sequence[Feed]) -> str:
    """The feeds as a ``sources:`` block for the main configuration."""
    entries = [{"name": f.name, "url": f.url, **({"tags": f.tags} if f.tags else {})}
               for f in feeds]
    body = yaml.safe_dump({"sources": entries}, allow_unicode=True, sort_keys=False)
    return ("# Sources read from an OPML subscription list by `raqib sources import`:\n"
            "# paste them under the configuration's sources: (interval defaults to 15m).\n"
            + body)


def write(sources: Iterable[tuple[str, str, Sequence[str]]], title: str = "raqib") -> str:
    """An OPML 2.0 document of (name, url, tags): one outline per source, tags as its
    ``category``."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0">',
             f"  <head><title>{_text(title)}</title></head>", "  <body>"]
    for name, url, tags in sources:
        category = f" category={quoteattr(','.join(tags))}" if tags else ""
        lines.append(f"    <outline type=\"rss\" text={quoteattr(name)} title={quoteattr(name)} "
                     f"xmlUrl={quoteattr(url)}{category}/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["Feed", "OpmlError", "as_yaml", "read", "slug", "write"]

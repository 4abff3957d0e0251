"""Identity of feed items: keys, which of them a fetch shows to be no identity, and whether an
item is a duplicate, an update or new (rules.md, Alerts).

* Keys: a GUID hash, a canonical-URL hash and a normalized-text hash, all per source.
* A duplicate is the same item seen again from the same source: its text is known, or its
  GUID or link is known and the text did not change. Copies from *other* sources are never
  duplicates: they are articles of the same story (see ``worker.stories``).
* An update is an item whose GUID (or, without one, link) is known but whose text changed: a
  new version, stored in the item's story.
* A GUID or link that several different items of one fetch share is no identity: it is
  ignored for that fetch and remembered as shared for the source, so no item is lost for
  sharing it. A known GUID that now comes with another link is no identity either.

Everything here is pure: the database's answers (``KnownKey``) come in as arguments.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from worker import stories, textnorm
from worker.domain import Article, Keys, KnownKey

# Query parameters that track a click rather than name a page.
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
    "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id",
    "oly_enc_id", "vero_id", "wt_mc", "wt.mc_id", "ncid", "ocid", "cmpid", "s_cid", "at_medium",
    "at_campaign", "spm", "share", "ref_src", "ref_url", "rss", "from_rss", "feature",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hmb_", "ga_")
DEFAULT_PORTS = {"http": 80, "https": 443}
SHORT_TEXT_TOKENS = 24   # below this, the text alone is too weak a key: the URL joins it


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def canonical_url(url: str) -> str:
    """The URL with tracking parameters, fragment and default port removed, scheme and host
    lower-cased and the remaining query sorted."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port and parts.port != DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    if parts.username:
        host = f"{parts.username}@{host}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)]
    path = parts.path or ("/" if host else "")
    return urlunsplit((scheme, host, path, urlencode(sorted(query)), ""))


def _keys(text: str) -> list[str]:
    return textnorm.keys(text.replace("\u200c", "") if "\u200c" in text else text)


def content_key(article: Article) -> str:
    """A hash of the article's normalized text: diacritics, case, tatweel, punctuation and
    spacing do not change it. Short texts (a title alone) also hash their URL or GUID, so two
    different articles that share a headline are not taken for one. A zero-width non-joiner
    (which splits a Persian word for matching) changes nothing either, so the key of a text
    is the same as it was before ZWNJ began to separate tokens."""
    tokens = [*_keys(article.title), "\x1f", *_keys(article.summary), "\x1f",
              *_keys(article.body)]
    text = " ".join(tokens)
    if len(tokens) - 2 < SHORT_TEXT_TOKENS:
        text += "\x1e" + (article.url or article.guid or "")
    return digest(text)


@dataclass(slots=True)
class Prepared:
    """An article with its raw keys (hashes; ``keys`` says which identify it in this fetch)."""

    article: Article
    content_hash: str
    guid_hash: str | None
    url: str | None
    url_hash: str | None
    keys: Keys = field(init=False)
    _signature: stories.Signature | None = None

    def __post_init__(self) -> None:
        self.keys = Keys(self.content_hash, self.guid_hash, self.url_hash)

    @property
    def signature(self) -> stories.Signature:
        """The article's MinHash signature, computed when first needed (new articles only)."""
        if self._signature is None:
            self._signature = stories.signature(self.article)
        return self._signature


def prepare(article: Article) -> Prepared:
    """Keys for one feed item. A link that is no URL at all (``http://[bogus``) is kept as
    written, but is no key."""
    try:
        url = canonical_url(article.url) if article.url else None
    except ValueError:
        url = None
    return Prepared(article=article, content_hash=content_key(article),
                    guid_hash=digest(article.guid) if article.guid else None,
                    url=article.url, url_hash=digest(url) if url else None)


def prepare_seed(article: Article) -> Prepared:
    """Keys for a version of a seed file: its text, and its path as GUID. An edited file is
    an update: a new version in the story of the file's earlier versions, so it raises no
    alert a rule already raised for that story."""
    return Prepared(article=article, content_hash=content_key(article),
                    guid_hash=digest(article.guid) if article.guid else None,
                    url=article.url, url_hash=None)


def shared_in_fetch(batch: Sequence[Prepared]) -> set[str]:
    """Keys (``g:…``, ``u:…``) that different items of one fetch share. Items are different
    when their texts differ; a GUID shared by items with different links counts too."""
    texts: dict[str, set[str]] = defaultdict(set)
    links: dict[str, set[str | None]] = defaultdict(set)
    for p in batch:
        if p.guid_hash:
            texts["g:" + p.guid_hash].add(p.content_hash)
            links["g:" + p.guid_hash].add(p.url_hash)
        if p.url_hash:
            texts["u:" + p.url_hash].add(p.content_hash)
    return {k for k, v in texts.items() if len(v) > 1} | \
        {k for k, v in links.items() if len(v) > 1}


def identify(batch: Sequence[Prepared], shared: set[str]) -> None:
    """Set each item's ``keys``: its GUID and link only where they are an identity."""
    for p in batch:
        guid = p.guid_hash if p.guid_hash and "g:" + p.guid_hash not in shared else None
        url = p.url_hash if p.url_hash and "u:" + p.url_hash not in shared else None
        p.keys = Keys(p.content_hash, guid, url)


class Kind(StrEnum):
    DUPLICATE = "duplicate"
    UPDATE = "update"
    NEW = "new"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an item is (with the version it updates) and keys it showed to be shared."""

    kind: Kind
    previous: KnownKey | None = None
    shared: tuple[str, ...] = ()


def classify(keys: Keys, known: Mapping[str, KnownKey]) -> Verdict:
    """Duplicate, update or new, given what the source's keys are known to be."""
    if "c:" + keys.content in known:
        return Verdict(Kind.DUPLICATE)
    newly_shared: list[str] = []
    if keys.guid:
        k = known.get("g:" + keys.guid)
        if k is not None and not k.shared:
            if k.url and keys.url and k.url != keys.url:
                newly_shared.append("g:" + keys.guid)   # one GUID, two links: no identity
            else:
                return Verdict(Kind.UPDATE, k)
    if keys.url:
        k = known.get("u:" + keys.url)
        if k is not None and not k.shared:
            if k.guid and keys.guid and k.guid != keys.guid:
                newly_shared.append("u:" + keys.url)    # one link, two GUIDs: no identity
            else:
                return Verdict(Kind.UPDATE, k, tuple(newly_shared))
    return Verdict(Kind.NEW, None, tuple(newly_shared))

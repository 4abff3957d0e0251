"""Exact dedupe keys: a GUID hash (per source), a canonical URL hash and a normalized-text hash.

The database holds each key under a unique constraint (see worker.schema); this module only
computes them. Near-duplicates (the same story re-worded) are a different question, answered by
story grouping.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from worker import textnorm
from worker.items import Article
from worker.store import Prepared

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


def content_key(article: Article) -> str:
    """A hash of the article's normalized text: diacritics, case, tatweel, punctuation and
    spacing do not change it. Short texts (a title alone) also hash their URL or GUID, so two
    different articles that share a headline are not taken for one."""
    tokens = [*textnorm.keys(article.title), "\x1f", *textnorm.keys(article.summary), "\x1f",
              *textnorm.keys(article.body)]
    text = " ".join(tokens)
    if len(tokens) - 2 < SHORT_TEXT_TOKENS:
        text += "\x1e" + (article.url or article.guid or "")
    return digest(text)


def prepare(article: Article) -> Prepared:
    """Dedupe keys for one feed item."""
    url = canonical_url(article.url) if article.url else None
    return Prepared(
        article=article,
        guid_hash=digest(article.guid) if article.guid else None,
        url=article.url,
        url_hash=digest(url) if url else None,
        content_hash=content_key(article),
    )


def prepare_seed(article: Article) -> Prepared:
    """Dedupe keys for a version of a seed file: its text alone. An edited file is stored
    again as a new version, which continues the story of the file's earlier versions (its
    GUID is the file's path), so it raises no alert a rule already raised for that story."""
    return Prepared(article=article, guid_hash=None, url=article.url, url_hash=None,
                    content_hash=content_key(article), continues=article.guid)

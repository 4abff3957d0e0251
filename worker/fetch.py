"""Fetching feed bytes over http(s):// and file://, with conditional GET and a size limit.

One httpx client serves every source (connection pooling, proxies from the environment). The
client is passed in, so tests and the daemon choose its transport and limits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from worker import PROJECT_URL, __version__
from worker.config import Source
from worker.errors import FetchError

USER_AGENT = f"raqib/{__version__} (+{PROJECT_URL})"


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a fetch brought: a body, or ``not_modified`` for a 304."""

    url: str
    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.body is None


def make_client() -> httpx.Client:
    return httpx.Client(follow_redirects=True, max_redirects=5, trust_env=True,
                        headers={"User-Agent": USER_AGENT})


class Fetcher:
    def __init__(self, client: httpx.Client | None = None) -> None:
        self.client = client or make_client()

    def close(self) -> None:
        self.client.close()

    def fetch(self, source: Source, *, etag: str | None = None,
              last_modified: str | None = None) -> Fetched:
        if source.url.startswith("file://"):
            return self._file(source)
        return self._http(source, etag, last_modified)

    @staticmethod
    def _file(source: Source) -> Fetched:
        parts = urlsplit(source.url)
        path = Path(unquote(parts.path))
        try:
            with path.open("rb") as fh:
                body = fh.read(source.max_bytes + 1)
        except OSError as exc:
            raise FetchError(f"fetch: cannot read {path}: {exc.strerror or exc}") from exc
        if len(body) > source.max_bytes:
            raise FetchError(f"fetch: {path} is larger than max_bytes ({source.max_bytes})")
        return Fetched(source.url, body)

    def _http(self, source: Source, etag: str | None, last_modified: str | None) -> Fetched:
        headers = dict(source.headers)
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        timeout = source.timeout.total_seconds()
        deadline = time.monotonic() + timeout   # `timeout` bounds the whole request
        try:
            with self.client.stream("GET", source.url, headers=headers,
                                    timeout=httpx.Timeout(timeout)) as resp:
                if resp.status_code == 304:
                    return Fetched(str(resp.url), None, dict(resp.headers), etag, last_modified)
                if resp.status_code >= 400:
                    raise FetchError(f"fetch: HTTP {resp.status_code} {resp.reason_phrase}")
                chunks, size = [], 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > source.max_bytes:
                        raise FetchError(f"fetch: body larger than max_bytes ({source.max_bytes})")
                    if time.monotonic() > deadline:
                        raise FetchError(f"fetch: timed out after {timeout:g}s")
                    chunks.append(chunk)
                return Fetched(str(resp.url), b"".join(chunks), dict(resp.headers),
                               resp.headers.get("etag"), resp.headers.get("last-modified"))
        except httpx.TooManyRedirects as exc:
            raise FetchError("fetch: too many redirects (more than 5, or a loop)") from exc
        except httpx.TimeoutException as exc:
            raise FetchError(f"fetch: timed out after {timeout:g}s") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FetchError(f"fetch: {type(exc).__name__}: {exc}") from exc

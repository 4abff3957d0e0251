"""Fetching: feed documents over http(s):// and file://, and article pages for full text.

One httpx client serves every source (connection pooling, proxies from the environment). Each
request is bounded: ``timeout`` covers the whole request, ``max_bytes`` the body after
decompression (gzip, deflate, brotli; see worker.decode), at most five redirects (a loop is an
error; a permanent redirect of the feed's URL is reported so it can be noted on the source).
``Fetched.url`` is where the document was finally read, after redirects: the base its relative
links resolve against. A fault that does not stop the read (a Content-Encoding token that names
no coding, read as identity) is a warning in ``Fetched.warnings``, never a failure.
A global limit and a per-host limit bound how many requests run at once. ETag and
Last-Modified make polls conditional; 429 and 503 carry the server's Retry-After.

Article links come from untrusted feeds: ``fetch_page`` refuses hosts that resolve to private,
loopback, link-local or otherwise non-public addresses, at every redirect hop, unless allowed.
The client and the address resolver are passed in, so tests use local servers.
"""

from __future__ import annotations

import email.utils
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from worker import PROJECT_URL, __version__
from worker.config import Source
from worker.decode import codings, decoded, unknown_warning
from worker.errors import FetchError

USER_AGENT = f"raqib/{__version__} (+{PROJECT_URL})"
MAX_REDIRECTS = 5
REDIRECTS = {301, 302, 303, 307, 308}
PERMANENT = {301, 308}
RETRY_AFTER_STATUS = {429, 503}
MAX_RETRY_AFTER = timedelta(days=1)

Resolver = Callable[[str], list[str]]


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a fetch brought: a body, or ``not_modified`` for a 304."""

    url: str                                # where the document was finally read
    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None             # where a permanent redirect of the URL points
    warnings: tuple[str, ...] = ()          # faults read past (fetch: …), not failures

    @property
    def not_modified(self) -> bool:
        return self.body is None


def make_client() -> httpx.Client:
    """The shared client: no automatic redirects (we follow them ourselves, counting and
    checking each hop), proxies from the environment, raqib's User-Agent."""
    return httpx.Client(follow_redirects=False, trust_env=True,
                        headers={"User-Agent": USER_AGENT,
                                 "Accept-Encoding": "gzip, deflate, br"})


def resolve(host: str) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None)]


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = when - now
    return max(timedelta(0), min(delay, MAX_RETRY_AFTER))


def _describe(exc: httpx.HTTPError | httpx.InvalidURL) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        if "SSL" in text or "certificate" in text.lower():
            return f"fetch: TLS error: {text}"
        if "Name or service not known" in text or "nodename nor servname" in text \
                or "Temporary failure in name resolution" in text or "No address" in text:
            return f"fetch: DNS: cannot resolve the host ({text})"
        if "refused" in text.lower():
            return "fetch: connection refused"
    return f"fetch: {type(exc).__name__}: {text}"


class Fetcher:
    def __init__(self, client: httpx.Client | None = None, *, concurrency: int = 16,
                 per_host: int = 2, resolver: Resolver = resolve,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.client = client or make_client()
        self.resolver = resolver
        self.clock = clock or (lambda: datetime.now(UTC))
        self._global = threading.BoundedSemaphore(concurrency)
        self._per_host = per_host
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        # The fleet's share of per_host, when several workers share a database (worker.fleet).
        self.fleet_slots: Callable[[str, float], AbstractContextManager[None]] | None = None

    def close(self) -> None:
        self.client.close()

    @contextmanager
    def _slot(self, host: str, timeout: float) -> Iterator[None]:
        """One of the global slots and one of the host's (in this process, and in the fleet
        when workers share a database)."""
        with self._lock:
            sem = self._hosts.setdefault(host, threading.BoundedSemaphore(self._per_host))
        fleet = self.fleet_slots
        with self._global, sem, fleet(host, timeout) if fleet is not None else nullcontext():
            yield

    # -- feeds --------------------------------------------------------------------------------

    def fetch(self, source: Source, *, etag: str | None = None,
              last_modified: str | None = None) -> Fetched:
        if source.url.startswith("file://"):
            return self._file(source)
        headers = dict(source.headers)
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return self._get(source.url, headers, source.timeout.total_seconds(), source.max_bytes)

    @staticmethod
    def _file(source: Source) -> Fetched:
        path = Path(unquote(urlsplit(source.url).path))
        try:
            with path.open("rb") as fh:
                body = fh.read(source.max_bytes + 1)
        except OSError as exc:
            raise FetchError(f"fetch: cannot read {path}: {exc.strerror or exc}") from exc
        if len(body) > source.max_bytes:
            raise FetchError(f"fetch: {path} is larger than max_bytes ({source.max_bytes})")
        return Fetched(source.url, body)

    # -- article pages ------------------------------------------------------------------------

    def fetch_page(self, url: str, *, timeout: float, max_bytes: int,
                   allow_private: bool = False) -> Fetched:
        """An article's page, under the same limits as its feed. Unless *allow_private*, a
        host that resolves to a non-public address is refused, at every redirect hop."""
        return self._get(url, {}, timeout, max_bytes,
                         guard=None if allow_private else self._public_only)

    def _public_only(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        try:
            addresses = self.resolver(host)
        except OSError as exc:
            raise FetchError(f"fetch: DNS: cannot resolve {host}: {exc}") from exc
        for text in addresses:
            addr = ipaddress.ip_address(text.split("%")[0])
            if not addr.is_global or addr.is_multicast:
                raise FetchError(f"fetch: refused {url}: {host} is a non-public address "
                                 f"({addr}); the source may set allow_private: true")

    # -- HTTP ---------------------------------------------------------------------------------

    def _get(self, url: str, headers: dict[str, str], timeout: float, max_bytes: int,
             guard: Callable[[str], None] | None = None) -> Fetched:
        deadline = time.monotonic() + timeout
        seen = {url}
        moved_to: str | None = None
        permanent = True
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"}:
                raise FetchError(f"fetch: will not follow a redirect to {parts.scheme}://")
            if guard is not None:
                guard(url)
            with self._slot(parts.hostname or "", max(0.0, deadline - time.monotonic())):
                target = self._request(url, headers, timeout, deadline, max_bytes)
            if isinstance(target, Fetched):
                return replace(target, moved_to=moved_to)
            location, status = target
            permanent = permanent and status in PERMANENT
            if location in seen:
                raise FetchError(f"fetch: redirect loop at {location}")
            seen.add(location)
            if permanent:
                moved_to = location
            url = location
        raise FetchError(f"fetch: more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str, headers: dict[str, str], timeout: float, deadline: float,
                 max_bytes: int) -> Fetched | tuple[str, int]:
        """One hop: the document, or (where it redirects to, the status)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError(f"fetch: timed out after {timeout:g}s")
        try:
            request = self.client.build_request("GET", url, headers=headers,
                                                timeout=httpx.Timeout(remaining))
            resp = self.client.send(request, stream=True)
            try:
                return self._read(resp, url, timeout, deadline, max_bytes)
            finally:
                resp.close()
        except httpx.TimeoutException as exc:
            raise FetchError(f"fetch: timed out after {timeout:g}s") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FetchError(_describe(exc)) from exc

    def _read(self, resp: httpx.Response, url: str, timeout: float, deadline: float,
              max_bytes: int) -> Fetched | tuple[str, int]:
        if resp.status_code in REDIRECTS and "location" in resp.headers:
            return urljoin(url, resp.headers["location"]), resp.status_code
        headers = dict(resp.headers)
        if resp.status_code == 304:
            return Fetched(url, None, headers, resp.headers.get("etag"),
                           resp.headers.get("last-modified"))
        if resp.status_code >= 400:
            retry = None
            if resp.status_code in RETRY_AFTER_STATUS:
                retry = parse_retry_after(resp.headers.get("retry-after"), self.clock())
            suffix = f" (retry after {int(retry.total_seconds())}s)" if retry is not None else ""
            raise FetchError(f"fetch: HTTP {resp.status_code} {resp.reason_phrase}{suffix}",
                             retry_after=retry)
        chunks: list[bytes] = []
        size = 0
        encoding = resp.headers.get("content-encoding")
        unknown = codings(encoding)[1]
        warnings = (unknown_warning(unknown),) if unknown else ()
        # Decoded here, a slice at a time: the limit counts decompressed bytes.
        for chunk in decoded(resp.iter_raw(), encoding):
            size += len(chunk)
            if size > max_bytes:
                raise FetchError(f"fetch: body larger than max_bytes ({max_bytes})")
            if time.monotonic() > deadline:
                raise FetchError(f"fetch: timed out after {timeout:g}s")
            chunks.append(chunk)
        return Fetched(url, b"".join(chunks), headers, resp.headers.get("etag"),
                       resp.headers.get("last-modified"), warnings=warnings)

"""Fetching against a real HTTP server on 127.0.0.1 that produces every fault a feed reader
meets: compression, bombs, endless bodies, redirects, rate limits, TLS and DNS failures,
legacy encodings, hostile XML, slow hosts, private addresses."""

from __future__ import annotations

import gzip
import itertools
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import brotli
import pytest

from worker import schedule
from worker.config import Source
from worker.errors import FetchError
from worker.fetch import Fetcher, parse_retry_after
from worker.parse import parse_feed

from conftest import Response, Server

FEED = ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        "<item><title>Rockets hit Ain al-Asad</title><guid>1</guid></item></channel></rss>")


def source(url: str, **kw: object) -> Source:
    return Source.model_validate({"name": "s", "url": url, **kw})


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    f = Fetcher()
    yield f
    f.close()


@pytest.mark.parametrize(("encoding", "compress"), [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("br", brotli.compress),
])
def test_compressed_bodies(http_server: Server, fetcher: Fetcher, encoding: str,
                           compress: object) -> None:
    body = FEED.encode() * 50
    http_server.routes["/f"] = Response(200, compress(body), {"Content-Encoding": encoding})  # type: ignore[operator]
    assert fetcher.fetch(source(http_server.url("/f"))).body == body
    assert "br" in http_server.hits("/f")[0]["accept-encoding"]


@pytest.mark.parametrize("label", [
    "aws-chunked", "UTF-8", "none", "None", "binary", "8bit", "text/xml", "x-unknown",
    "identity, aws-chunked",
])
def test_unknown_content_encoding_is_read_as_identity(http_server: Server, fetcher: Fetcher,
                                                      label: str) -> None:
    """A token that names no content coding is no compression: the body is read as it came,
    with a warning (browsers, curl and httpx do the same)."""
    http_server.routes["/f"] = Response(200, FEED.encode(), {"Content-Encoding": label})
    got = fetcher.fetch(source(http_server.url("/f")))
    assert got.body == FEED.encode()
    [warning] = got.warnings
    assert warning.startswith("fetch: unknown Content-Encoding") and "identity" in warning
    assert label.rsplit(",", maxsplit=1)[-1].strip() in warning


@pytest.mark.parametrize(("label", "compress"), [
    ("aws-chunked, gzip", gzip.compress),
    ("gzip, aws-chunked", gzip.compress),
    ("x-gzip", gzip.compress),
    ("GZIP", gzip.compress),
    (" br ", brotli.compress),
    ("identity", lambda b: b),
    ("", lambda b: b),
])
def test_known_codings_among_unknown_ones(http_server: Server, fetcher: Fetcher, label: str,
                                          compress: Callable[[bytes], bytes]) -> None:
    http_server.routes["/f"] = Response(200, compress(FEED.encode()),
                                        {"Content-Encoding": label})
    got = fetcher.fetch(source(http_server.url("/f")))
    assert got.body == FEED.encode()
    assert bool(got.warnings) == ("aws-chunked" in label)


@pytest.mark.parametrize("label", ["gzip", "deflate", "br", "x-gzip", "gzip, br"])
def test_a_known_coding_that_fails_to_decode_fails(http_server: Server, fetcher: Fetcher,
                                                   label: str) -> None:
    http_server.routes["/f"] = Response(200, FEED.encode(), {"Content-Encoding": label})
    with pytest.raises(FetchError, match=r"^fetch: corrupt .* body"):
        fetcher.fetch(source(http_server.url("/f")))


@pytest.mark.parametrize("label", ["compress", "x-compress", "zstd", "aes128gcm"])
def test_a_registered_coding_we_cannot_undo_fails(http_server: Server, fetcher: Fetcher,
                                                  label: str) -> None:
    http_server.routes["/f"] = Response(200, FEED.encode(), {"Content-Encoding": label})
    with pytest.raises(FetchError, match=rf"^fetch: unsupported Content-Encoding '{label}'"):
        fetcher.fetch(source(http_server.url("/f")))


def test_the_final_url_is_the_base_of_relative_links(http_server: Server,
                                                     fetcher: Fetcher) -> None:
    feed = ("<rss version='2.0'><channel><title>t</title><item><title>a</title>"
            "<link>../news/1</link><guid>1</guid></item></channel></rss>")
    http_server.routes["/feed"] = Response(302, headers={"Location": "/feeds/ar/main.xml"})
    http_server.routes["/feeds/ar/main.xml"] = Response(200, feed.encode())
    got = fetcher.fetch(source(http_server.url("/feed")))
    assert got.url == http_server.url("/feeds/ar/main.xml")
    [article] = parse_feed(got.body or b"", source="s", url=got.url, headers=got.headers)
    assert article.url == http_server.url("/feeds/news/1")


def _bomb(megabytes: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)   # gzip framing
    zeros = b"\0" * 1_000_000
    parts = [comp.compress(zeros) for _ in range(megabytes)]
    return b"".join([*parts, comp.flush()])


def test_gzip_bomb_is_cut_at_max_bytes_without_inflating(http_server: Server,
                                                         fetcher: Fetcher) -> None:
    http_server.routes["/bomb"] = Response(200, _bomb(300), {"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match=r"larger than max_bytes \(1000000\)"):
            fetcher.fetch(source(http_server.url("/bomb"), max_bytes="1MB"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000           # 300 MB of zeros never sat in memory


@pytest.mark.parametrize(("encoding", "compress"), [
    ("br", brotli.compress), ("gzip", gzip.compress), ("deflate", zlib.compress)])
@pytest.mark.parametrize("body", [b"\0" * (8 * 256 * 1024), bytes(range(256)) * 20_000],
                         ids=["zeros", "bytes"])
def test_large_bodies_decode_whole_a_slice_at_a_time(http_server: Server, fetcher: Fetcher,
                                                     encoding: str, body: bytes,
                                                     compress: Callable[[bytes], bytes]) -> None:
    """A body that inflates to many slices from one read comes out whole (brotli's
    can_accept_more_data() says True while output is still pending)."""
    from worker.decode import decoded  # noqa: PLC0415

    packed = compress(body)
    pieces = list(decoded([packed], encoding))
    assert b"".join(pieces) == body
    assert len(pieces) > 1
    http_server.routes["/big"] = Response(200, packed, {"Content-Encoding": encoding})
    assert fetcher.fetch(source(http_server.url("/big"), max_bytes="20MB")).body == body


def test_brotli_bomb_is_cut_at_max_bytes_without_inflating(http_server: Server,
                                                           fetcher: Fetcher) -> None:
    http_server.routes["/bomb"] = Response(200, brotli.compress(b"\0" * 100_000_000, quality=1),
                                           {"Content-Encoding": "br"})
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match=r"larger than max_bytes \(1000000\)"):
            fetcher.fetch(source(http_server.url("/bomb"), max_bytes="1MB"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000


def test_endless_body_is_cut(http_server: Server, fetcher: Fetcher) -> None:
    http_server.routes["/endless"] = Response(200, stream=lambda: itertools.repeat(b"x" * 65536))
    with pytest.raises(FetchError, match="larger than max_bytes"):
        fetcher.fetch(source(http_server.url("/endless"), max_bytes="2MB"))


def test_permanent_redirect_is_followed_and_noted(http_server: Server, fetcher: Fetcher) -> None:
    http_server.routes["/old"] = Response(301, headers={"Location": "/new"})
    http_server.routes["/new"] = Response(200, FEED.encode())
    got = fetcher.fetch(source(http_server.url("/old")))
    assert (got.body, got.moved_to, got.url) == (FEED.encode(), http_server.url("/new"),
                                                 http_server.url("/new"))


def test_temporary_redirect_is_not_a_move(http_server: Server, fetcher: Fetcher) -> None:
    http_server.routes["/a"] = Response(302, headers={"Location": "/b"})
    http_server.routes["/b"] = Response(200, FEED.encode())
    assert fetcher.fetch(source(http_server.url("/a"))).moved_to is None


def test_at_most_five_redirects(http_server: Server, fetcher: Fetcher) -> None:
    for i in range(7):
        http_server.routes[f"/r{i}"] = Response(302, headers={"Location": f"/r{i + 1}"})
    http_server.routes["/r7"] = Response(200, FEED.encode())
    assert fetcher.fetch(source(http_server.url("/r2"))).body is not None   # 5 hops
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetcher.fetch(source(http_server.url("/r1")))                       # 6 hops


@pytest.mark.parametrize(("routes", "message"), [
    ({"/x": "/y", "/y": "/x"}, "redirect loop"),
    ({"/x": "file:///etc/passwd"}, "will not follow a redirect to file://"),
])
def test_bad_redirects(http_server: Server, fetcher: Fetcher, routes: dict[str, str],
                       message: str) -> None:
    for path, to in routes.items():
        http_server.routes[path] = Response(302, headers={"Location": to})
    with pytest.raises(FetchError, match=message):
        fetcher.fetch(source(http_server.url("/x")))


def test_retry_after(http_server: Server, fetcher: Fetcher) -> None:
    http_server.routes["/busy"] = Response(429, headers={"Retry-After": "120"})
    with pytest.raises(FetchError, match=r"HTTP 429 Too Many Requests \(retry after 120s\)") as e:
        fetcher.fetch(source(http_server.url("/busy")))
    assert e.value.retry_after == timedelta(seconds=120)
    when = datetime.now(UTC) + timedelta(hours=2)
    http_server.routes["/down"] = Response(503, headers={"Retry-After": format_datetime(when)})
    with pytest.raises(FetchError) as e:
        fetcher.fetch(source(http_server.url("/down")))
    assert e.value.retry_after is not None
    assert timedelta(minutes=119) < e.value.retry_after <= timedelta(hours=2)


@pytest.mark.parametrize(("value", "expected"), [
    ("30", timedelta(seconds=30)), ("soon", None), (None, None),
    ("Sat, 28 Nov 2026 22:00:00 GMT", timedelta(hours=1)),
    ("Sat, 28 Nov 2026 20:00:00 GMT", timedelta(0)),       # in the past: now
    ("999999999", timedelta(days=1)),                      # capped
])
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, datetime(2026, 11, 28, 21, tzinfo=UTC)) == expected


def test_tls_failure_is_named(http_server: Server, fetcher: Fetcher) -> None:
    with pytest.raises(FetchError, match=r"^fetch: TLS error"):
        fetcher.fetch(source(http_server.url("/f").replace("http://", "https://"),
                             timeout="5s"))


def test_dns_failure_is_named(fetcher: Fetcher) -> None:
    with pytest.raises(FetchError, match=r"^fetch: DNS: cannot resolve"):
        fetcher.fetch(source("http://no-such-host.invalid/feed", timeout="5s"))


@pytest.mark.parametrize(("charset", "declare"), [
    ("windows-1256", False), ("windows-1256", True), ("iso-8859-6", True), ("utf-16", True)])
def test_arabic_encodings_over_http(http_server: Server, fetcher: Fetcher, charset: str,
                                    declare: bool) -> None:
    """The charset comes from the HTTP header, the XML declaration or the BOM."""
    title = "انسحاب قوات التحالف من قاعدة عين الأسد"
    decl = f"<?xml version='1.0' encoding='{charset}'?>" if declare else ""
    xml = (f"{decl}<rss version='2.0'><channel><title>t</title><item><title>{title}</title>"
           "<guid>1</guid></item></channel></rss>")
    http_server.routes["/ar"] = Response(200, xml.encode(charset), {
        "Content-Type": f"application/rss+xml; charset={charset}"})
    got = fetcher.fetch(source(http_server.url("/ar")))
    [article] = parse_feed(got.body or b"", source="s", headers=got.headers)
    assert article.title == title


def test_hostile_xml_is_harmless() -> None:
    laughs = ("<?xml version='1.0'?><!DOCTYPE rss [<!ENTITY a 'lollollollollollol'>"
              + "".join(f"<!ENTITY {c} '{('&' + p + ';') * 10}'>"
                        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
              + "]><rss version='2.0'><channel><title>&i;</title><item><title>&i;</title>"
              "</item></channel></rss>")
    xxe = ("<?xml version='1.0'?><!DOCTYPE rss [<!ENTITY x SYSTEM 'file:///etc/hostname'>]>"
           "<rss version='2.0'><channel><title>t</title><item><title>a&x;b</title>"
           "<guid>1</guid></item></channel></rss>")
    tracemalloc.start()
    try:
        try:
            articles = parse_feed(laughs.encode(), source="s")
        except Exception:   # refusing the document is as good as reading it safely
            articles = []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000_000
    assert all(len(a.title) < 10_000 for a in articles)
    hostname = Path("/etc/hostname").read_text().strip()
    for a in parse_feed(xxe.encode(), source="s"):
        assert hostname not in a.title


def test_per_host_concurrency_is_bounded(http_server: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    http_server.routes["/slow"] = Response(200, b"<rss/>", trickle=0.02)
    fetcher = Fetcher(per_host=2, concurrency=16)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: fetcher.fetch(source(http_server.url("/slow"))), range(8)))
    finally:
        fetcher.close()
    assert len(http_server.hits("/slow")) == 8
    assert http_server.most_in_flight == 2


def test_private_pages_are_refused_unless_allowed(http_server: Server, fetcher: Fetcher) -> None:
    http_server.routes["/page"] = Response(200, b"<html><body><p>hello</p></body></html>")
    with pytest.raises(FetchError, match="non-public address"):
        fetcher.fetch_page(http_server.url("/page"), timeout=5, max_bytes=10**6)
    assert http_server.hits("/page") == []
    assert fetcher.fetch_page(http_server.url("/page"), timeout=5, max_bytes=10**6,
                              allow_private=True).body


def test_a_public_looking_host_that_redirects_inward_is_refused(http_server: Server) -> None:
    """Each redirect hop is checked: a public host cannot bounce a fetch to a private one."""
    http_server.routes["/out"] = Response(302, headers={"Location": http_server.url("/in")})
    http_server.routes["/in"] = Response(200, b"secret")
    public = Fetcher(resolver=lambda host: ["93.184.216.34"] if host == "news.example" else
                     ["127.0.0.1"])
    # news.example "resolves" to a public address, but the client connects to the real server
    # through a proxy-free mount: map it onto 127.0.0.1.
    import httpx  # noqa: PLC0415

    transport = httpx.HTTPTransport()

    class Local(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.host == "news.example":
                request.url = request.url.copy_with(host="127.0.0.1",
                                                    port=int(http_server.base.rsplit(":", 1)[1]))
            return transport.handle_request(request)

    public.client = httpx.Client(transport=Local(), follow_redirects=False)
    try:
        port = http_server.base.rsplit(":", 1)[1]
        with pytest.raises(FetchError, match="non-public address"):
            public.fetch_page(f"http://news.example:{port}/out", timeout=5, max_bytes=10**6)
    finally:
        public.close()
    assert http_server.hits("/out") and not http_server.hits("/in")


@pytest.mark.parametrize(("failures", "retry", "expected"), [
    (0, None, timedelta(minutes=10)),
    (1, None, timedelta(minutes=10)),
    (2, None, timedelta(minutes=20)),
    (4, None, timedelta(minutes=80)),
    (30, None, timedelta(hours=24)),                       # capped at a day
    (0, timedelta(hours=3), timedelta(hours=3)),           # Retry-After wins when longer
    (2, timedelta(seconds=5), timedelta(minutes=20)),      # … never shortens the backoff
])
def test_next_poll(failures: int, retry: timedelta | None, expected: timedelta) -> None:
    now = datetime(2026, 11, 28, 21, tzinfo=UTC)
    # rand() = 0 is no jitter; jitter only ever delays, so a source is never polled sooner
    # than its interval (or its backoff)
    assert schedule.next_poll(now, timedelta(minutes=10), failures, retry,
                              rand=lambda: 0.0) == now + expected
    low = schedule.next_poll(now, timedelta(minutes=10), failures, None, rand=lambda: 0.0)
    high = schedule.next_poll(now, timedelta(minutes=10), failures, None, rand=lambda: 1.0)
    assert low < high
    assert low >= now + min(expected, timedelta(hours=24)) or retry is not None
    assert high - low <= schedule.MAX_JITTER

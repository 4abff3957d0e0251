"""Content decoding with bounded output: gzip, deflate and brotli bodies are inflated a slice at
a time, so a compression bomb is cut at ``max_bytes`` without ever inflating in memory what a
single network read would unpack (a 64 KB read can hold 64 MB of zeros)."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator

import brotli

from worker.errors import FetchError

SLICE = 256 * 1024   # at most this many decoded bytes at a time


def _zlib(chunks: Iterable[bytes], wbits: int) -> Iterator[bytes]:
    d = zlib.decompressobj(wbits)
    for chunk in chunks:
        data = chunk
        while data:
            out = d.decompress(data, SLICE)
            if out:
                yield out
            data = d.unconsumed_tail
        if d.eof:
            return
    tail = d.flush()
    if tail:
        yield tail


def _gzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    return _zlib(chunks, 47)   # gzip or zlib framing, detected from the header


def _deflate(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """HTTP "deflate" is meant to be zlib-framed; some servers send it raw."""
    iterator = iter(chunks)
    first = next(iterator, b"")
    looks_zlib = len(first) >= 2 and (first[0] & 0x0F) == 8 and \
        int.from_bytes(first[:2], "big") % 31 == 0
    return _zlib(_prepend(first, iterator), 15 if looks_zlib else -15)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _brotli(chunks: Iterable[bytes]) -> Iterator[bytes]:
    d = brotli.Decompressor()
    for chunk in chunks:
        out = d.process(chunk, output_buffer_limit=SLICE)
        if out:
            yield out
        while not d.can_accept_more_data():   # more output is waiting for the same input
            out = d.process(b"", output_buffer_limit=SLICE)
            if out:
                yield out


DECODERS: dict[str, Callable[[Iterable[bytes]], Iterator[bytes]]] = {
    "gzip": _gzip, "x-gzip": _gzip, "deflate": _deflate, "br": _brotli,
}


def decoded(chunks: Iterable[bytes], content_encoding: str | None) -> Iterator[bytes]:
    """The body of a response given its raw *chunks* and its Content-Encoding header
    (codings applied in order, so they are undone in reverse)."""
    stream: Iterable[bytes] = chunks
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding not in DECODERS:
            raise FetchError(f"fetch: unsupported Content-Encoding {coding!r}")
        stream = DECODERS[coding](stream)
    try:
        yield from stream
    except (zlib.error, brotli.error) as exc:
        raise FetchError(f"fetch: corrupt {content_encoding} body: {exc}") from exc

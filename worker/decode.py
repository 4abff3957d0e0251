"""Content decoding with bounded output: gzip, deflate and brotli bodies are inflated a slice at
a time, so a compression bomb is cut at ``max_bytes`` without ever inflating in memory what a
single network read would unpack (a 64 KB read can hold 64 MB of zeros).

A Content-Encoding token that names no content coding at all (``aws-chunked`` from object
stores, ``UTF-8`` or ``none`` from misconfigured servers) is read as identity, with a warning,
as browsers, curl and httpx do. A registered coding we cannot undo (``compress``, ``zstd`` …) is
an error, and so is a known coding whose body fails to decode."""

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
        # More output may wait for the same input, whatever can_accept_more_data() says (it
        # answers True with output pending): ask until a call gives nothing.
        while out:
            yield out
            out = d.process(b"", output_buffer_limit=SLICE) if not d.is_finished() else b""


DECODERS: dict[str, Callable[[Iterable[bytes]], Iterator[bytes]]] = {
    "gzip": _gzip, "x-gzip": _gzip, "deflate": _deflate, "br": _brotli,
}
# Registered content codings (IANA HTTP Content Coding Registry) that we do not undo: a body in
# one of them cannot be read as identity, so it is an error. We never ask for them.
UNSUPPORTED = {"compress", "x-compress", "zstd", "exi", "pack200-gzip", "aes128gcm", "dcb", "dcz"}


def codings(content_encoding: str | None) -> tuple[list[str], list[str]]:
    """The codings of a Content-Encoding header to undo, in the order applied, and the tokens
    that name no content coding (read as identity). Raises FetchError for a registered coding
    that cannot be undone."""
    known: list[str] = []
    unknown: list[str] = []
    for token in (content_encoding or "").split(","):
        coding = token.strip().lower()
        if not coding or coding == "identity":
            continue
        if coding in DECODERS:
            known.append(coding)
        elif coding in UNSUPPORTED:
            raise FetchError(f"fetch: unsupported Content-Encoding {coding!r}")
        else:
            unknown.append(token.strip())
    return known, unknown


def unknown_warning(unknown: list[str]) -> str:
    names = ", ".join(repr(u) for u in unknown)
    return f"fetch: unknown Content-Encoding {names} read as identity (not compressed)"


def decoded(chunks: Iterable[bytes], content_encoding: str | None) -> Iterator[bytes]:
    """The body of a response given its raw *chunks* and its Content-Encoding header
    (codings applied in order, so they are undone in reverse; tokens that name no coding are
    skipped: see ``codings``)."""
    stream: Iterable[bytes] = chunks
    for coding in reversed(codings(content_encoding)[0]):
        stream = DECODERS[coding](stream)
    try:
        yield from stream
    except (zlib.error, brotli.error) as exc:
        raise FetchError(f"fetch: corrupt {content_encoding} body: {exc}") from exc

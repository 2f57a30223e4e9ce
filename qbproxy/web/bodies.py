"""Request bodies as the proxy receives them: the first 64 KiB (or the whole body) within
`server.body_timeout_seconds` before the request takes a slot, so a slow sender holds none
of `server.max_connections`; the rest streamed within the same deadline.

Bodies are kept as sent (aiohttp's decompression is off) and forwarded byte for byte with
their `Content-Encoding`; only a body the proxy parses itself is decoded, here.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from qbproxy.errors import BadBody, ClientGone, SlowBody
from qbproxy.upstream import BodyTooLarge

_PREFETCH = 64 * 1024
_CHUNK = 64 * 1024
# Content-Encoding values decoded for parsing; anything else is forwarded unread.
_GZIP = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": zlib.MAX_WBITS}


@dataclass(slots=True)
class Body:
    """A request's body: `head` received so far; the rest still in `request.content`."""

    request: web.Request
    head: bytes
    complete: bool
    deadline: float  # event loop time

    @property
    def empty(self) -> bool:
        return self.complete and not self.head

    async def read(self, limit: int) -> bytes:
        """The whole body as sent (BodyTooLarge past `limit` bytes)."""
        if not self.complete:
            parts = [chunk async for chunk in self.chunks(limit)]
            self.head, self.complete = b"".join(parts), True
        if len(self.head) > limit:
            raise BodyTooLarge
        return self.head

    def data(self, limit: int) -> bytes | AsyncIterator[bytes] | None:
        """What to send on: the bytes when all here, else a stream of them."""
        if self.complete:
            if len(self.head) > limit:
                raise BodyTooLarge
            return self.head if self.head or self.request.body_exists else None
        return self.chunks(limit)

    async def chunks(self, limit: int) -> AsyncIterator[bytes]:
        seen = len(self.head)
        if seen > limit:
            raise BodyTooLarge
        if self.head:
            yield self.head
        while True:
            chunk = await _within(self.deadline, self.request.content.read(_CHUNK))
            if not chunk:
                return
            seen += len(chunk)
            if seen > limit:
                raise BodyTooLarge
            yield chunk


async def receive(request: web.Request, within: float, limit: int) -> Body:
    """Wait (holding no slot) for the body's first 64 KiB, or all of it if shorter; the
    whole body must arrive `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    if not request.body_exists:
        return Body(request, b"", True, deadline)
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge
    parts: list[bytes] = []
    size = 0
    content = request.content
    while size < _PREFETCH:
        chunk = await _within(deadline, content.read(_PREFETCH - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return Body(request, b"".join(parts), content.at_eof(), deadline)


async def _within(deadline: float, read: object) -> bytes:
    assert asyncio.iscoroutine(read)
    try:
        async with asyncio.timeout_at(deadline):
            chunk: bytes = await read
    except TimeoutError:
        raise SlowBody from None
    except ConnectionError as exc:
        raise ClientGone("the caller closed its connection mid-body") from exc
    except (RequestPayloadError, HttpProcessingError) as exc:
        raise BadBody(str(exc)) from exc
    return chunk


def decoded(raw: bytes, content_encoding: str | None, limit: int) -> bytes | None:
    """The body as text for the proxy to parse: decoded per `Content-Encoding` (gzip,
    deflate); None for an encoding the proxy does not read (forward it unread). A corrupt
    stream is BadBody; more than `limit` bytes decoded, BodyTooLarge (a zip bomb)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return raw
    wbits = _ZLIB_WBITS.get(encoding)
    if wbits is None:
        return None
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise BadBody(f"{encoding} body cannot be decoded") from exc
    if len(out) > limit:
        raise BodyTooLarge
    if not inflater.eof or inflater.unused_data:
        raise BadBody(f"{encoding} body is truncated or has trailing bytes")
    return out

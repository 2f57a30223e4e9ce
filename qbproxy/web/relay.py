"""Answers: requests forwarded to Intuit and its answers relayed, and the proxy's own
responses (cached answers, QBO-shaped faults), each marked with `X-Cache`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from qbproxy.core import responses
from qbproxy.core.catalog import Entity
from qbproxy.errors import StoreRejected, StoreUnavailable
from qbproxy.services import Proxy
from qbproxy.upstream import Fetched, response_headers
from qbproxy.web.bodies import Body

log = logging.getLogger("qbproxy.handlers")

HIT, MISS, STALE, BYPASS = "HIT", "MISS", "STALE", "BYPASS"
# Headers Intuit's answer is relayed without: aiohttp sets them for the body it sends.
_NOT_RELAYED = frozenset({"content-length", "content-encoding"})


@dataclass(slots=True)
class Outcome:
    """A response and what the access log and metrics say about it."""

    response: web.StreamResponse
    cache: str
    route: str
    entity: str = "other"
    realm: str | None = None


async def forward(
    request: web.Request,
    proxy: Proxy,
    realm: str | None,
    body: Body,
    *,
    before_send: Callable[[], Awaitable[None]] | None = None,
    before_response: Callable[[int], Awaitable[None]] | None = None,
    trusted: bool | None = None,
) -> web.StreamResponse:
    """Stream the request to Intuit and its answer back. `realm` is the one routing parsed
    (None: the path names none), for the realm's limits and for token trust; `trusted`
    (looked up when not given) picks the realm's budget the call is held to."""
    authorization = request.headers.get("Authorization")
    if before_response is None and realm is not None:

        async def learn(status: int) -> None:
            # Every answer Intuit gives says something about the caller's token: a 401 on
            # any path drops its trust at once (design.md, promise 4).
            await proxy.tokens.learn(realm, authorization, status)

        before_response = learn
    if trusted is None:
        trusted = realm is not None and await proxy.tokens.trusted(realm, authorization)
    limit = proxy.settings.server.max_body_bytes
    data = body.data(limit)
    return await proxy.upstream.forward(
        request,
        max_body_bytes=limit,
        extra_headers={"X-Cache": BYPASS},
        body=data if isinstance(data, bytes) else None,
        stream=None if isinstance(data, bytes) else data,
        before_send=before_send,
        before_response=before_response,
        realm=realm,
        trusted=trusted,
    )


async def relay_fetch(
    request: web.Request,
    proxy: Proxy,
    realm: str,
    entity: Entity,
    body: bytes | None,
    *,
    trusted: bool,
) -> web.Response:
    """Ask Intuit for this caller, learn what its answer says of the token, relay it."""
    return relay(await ask_and_learn(request, proxy, realm, entity, body, trusted=trusted), MISS)


async def ask_and_learn(
    request: web.Request,
    proxy: Proxy,
    realm: str,
    entity: Entity,
    body: bytes | None,
    *,
    trusted: bool,
) -> Fetched:
    """Intuit's whole answer to the caller's request, having learned what it says of the
    caller's token."""
    answer = await fetch_as_sent(request, proxy, realm, entity, body, trusted=trusted)
    await proxy.tokens.learn(realm, request.headers.get("Authorization"), answer.status)
    return answer


async def fetch_as_sent(
    request: web.Request,
    proxy: Proxy,
    realm: str,
    entity: Entity,
    body: bytes | None,
    *,
    trusted: bool,
    before_send: Callable[[], Awaitable[None]] | None = None,
) -> Fetched:
    """The client's request, sent on as it came, answered whole (for answers we read)."""
    return await proxy.upstream.fetch(
        request.method,
        request.path,
        request.rel_url.raw_query_string,
        request.headers,
        body=body,
        entity=entity.name,
        realm=realm,
        trusted=trusted,
        before_send=before_send,
    )


def relay(answer: Fetched, cache: str) -> web.Response:
    headers = CIMultiDict(
        (k, v) for k, v in response_headers(answer.headers).items() if k.lower() not in _NOT_RELAYED
    )
    headers["X-Cache"] = cache
    return web.Response(status=answer.status, body=answer.body, headers=headers)


def local_response(body: bytes, cache: str) -> web.Response:
    """An answer the proxy built, with the headers Intuit's would have."""
    return web.Response(
        body=body,
        headers={
            "Content-Type": responses.JSON_CONTENT_TYPE,
            "Cache-Control": responses.CACHE_CONTROL,
            "intuit_tid": responses.new_tid(),
            "X-Cache": cache,
        },
    )


def fault(
    proxy: Proxy, status: int, message: str, detail: str, code: str = "10000"
) -> web.Response:
    """A Fault the proxy makes itself, shaped like Intuit's (qbo-api.md, Errors)."""
    body = responses.fault_body(code, message, detail, proxy.wall_clock())
    response = local_response(body, BYPASS)
    response.set_status(status)
    return response


async def store_failed(
    request: web.Request,
    proxy: Proxy,
    realm: str,
    exc: StoreUnavailable,
    body: Body,
) -> web.StreamResponse:
    """Postgres failed mid-request, or could not take this request's values: forward
    (design.md, promises 5 and 6)."""
    note_store_failure(proxy, exc)
    return await forward(request, proxy, realm, body)


def note_store_failure(proxy: Proxy, exc: StoreUnavailable) -> None:
    if isinstance(exc, StoreRejected):
        # Postgres is fine; it refused values from this request (issue 14, item 8).
        log.info("[CACHE] the cache cannot take this request's values, forwarding: %s", exc)
        return
    proxy.metrics.store_errors.inc()
    log.warning("[CACHE] postgres unavailable, forwarding: %s", exc)


async def read_within(request: web.Request, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it passes `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks = []
    seen = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        seen += len(chunk)
        if seen > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)

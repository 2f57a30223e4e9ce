"""The proxy's one route: classify the request, hand it to the module that answers its kind
(reads.py: queries and reads by id; reports.py: reports; writes.py: writes and batches;
relay.py: everything else, forwarded), map failures to QBO-shaped faults, and write the
access line.

Every /v3 answer carries `X-Cache: HIT | MISS | STALE | BYPASS`. When anything is unclear
(a query the engine cannot answer exactly, Postgres failing) the request is forwarded: a
wrong answer is worse than a slow one (design.md, promise 5).
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from qbproxy.core import responses
from qbproxy.core.limits import retry_after_header
from qbproxy.core.routing import (
    BatchRoute,
    Passthrough,
    QueryRoute,
    ReadRoute,
    ReportRoute,
    WriteRoute,
    classify,
)
from qbproxy.errors import (
    CircuitOpen,
    ClientGone,
    RateLimited,
    RequestBodyError,
    SlowBody,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from qbproxy.log import MARKERS, access, printable
from qbproxy.services import PROXY, Proxy
from qbproxy.upstream import CALLER_TRUSTED, BodyTooLarge
from qbproxy.web import bodies, reads, reports, writes
from qbproxy.web.bodies import Body
from qbproxy.web.relay import BYPASS, Outcome, fault, forward

log = logging.getLogger("qbproxy.handlers")


async def handle(request: web.Request) -> web.StreamResponse:
    proxy = request.app[PROXY]
    if not request.path.startswith("/v3/"):
        return fault(proxy, 404, "Not Found", "qbproxy serves the QBO API under /v3/ only")
    server = proxy.settings.server
    limit = server.max_header_bytes
    if any(len(name) + len(value) > limit for name, value in request.raw_headers):
        return fault(proxy, 431, "Request Header Fields Too Large", f"a header over {limit} bytes")
    started = time.perf_counter()
    # Handlers on one keep-alive connection share a context: start each request afresh.
    CALLER_TRUSTED.set(True)
    try:
        # Before taking a slot: a slow sender waits here holding none (issue 14, item 5).
        body = await bodies.receive(request, server.body_timeout_seconds, server.max_body_bytes)
    except (BodyTooLarge, RequestBodyError, ClientGone) as exc:
        outcome = Outcome(_body_failed(proxy, exc), BYPASS, "other")
        _access(request, proxy, outcome, started)
        return outcome.response
    if proxy.in_flight >= server.max_connections:
        response = fault(proxy, 503, "Service Unavailable", "too many concurrent requests")
        response.headers["Retry-After"] = "1"
        return response
    proxy.in_flight += 1
    try:
        outcome = await _dispatch(request, proxy, body)
    except asyncio.CancelledError:
        # Shutdown cancelled it after server.shutdown_timeout_seconds: still one line.
        elapsed = (time.perf_counter() - started) * 1000
        access.info("%s %s cancelled %.1fms", request.method, printable(request.path), elapsed)
        raise
    finally:
        proxy.in_flight -= 1
    _access(request, proxy, outcome, started)
    return outcome.response


def _access(request: web.Request, proxy: Proxy, outcome: Outcome, started: float) -> None:
    elapsed = time.perf_counter() - started
    proxy.metrics.requests.labels(outcome.route, outcome.entity, outcome.cache.lower()).inc()
    proxy.metrics.request_seconds.labels(outcome.cache.lower()).observe(elapsed)
    access.info(
        "%s %s %d %s realm=%s entity=%s %.1fms",
        printable(request.method),
        printable(request.path),
        outcome.response.status,
        MARKERS[outcome.cache],
        outcome.realm or "-",
        outcome.entity,
        elapsed * 1000,
    )


def _body_failed(proxy: Proxy, exc: Exception) -> web.StreamResponse:
    """The caller's body did not arrive as it should: a Fault, and the connection closed
    where the rest of the body cannot be trusted to be skipped."""
    if isinstance(exc, BodyTooLarge):
        limit = proxy.settings.server.max_body_bytes
        response = fault(proxy, 413, "Request Entity Too Large", f"body over {limit} bytes")
    elif isinstance(exc, SlowBody):
        detail = f"body not received within {proxy.settings.server.body_timeout_seconds:g}s"
        response = fault(proxy, 408, "Request Timeout", detail)
    elif isinstance(exc, ClientGone):
        # Nobody is there to read it; the access line says 499, as nginx does.
        log.debug("client went away: %s", exc)
        response = web.Response(status=499, headers={"X-Cache": BYPASS})
    else:
        response = fault(proxy, 400, "Bad Request", "the request body cannot be read", "2020")
    response.force_close()
    return response


async def _dispatch(request: web.Request, proxy: Proxy, body: Body) -> Outcome:
    route = classify(request.method, request.path, request.rel_url.raw_query_string)
    if isinstance(route, QueryRoute | ReadRoute | ReportRoute) and not proxy.migrated.is_set():
        # The schema is not in place yet: never half-use the cache.
        route = Passthrough(route.realm)
    try:
        match route:
            case QueryRoute():
                return await reads.query(request, proxy, route, body)
            case ReadRoute():
                return await reads.read(request, proxy, route, body)
            case ReportRoute():
                return await reports.report(request, proxy, route, body)
            case WriteRoute():
                return await writes.write(request, proxy, route, body)
            case BatchRoute():
                return await writes.batch(request, proxy, route, body)
            case Passthrough():
                response = await forward(request, proxy, route.realm, body)
                return Outcome(response, BYPASS, "other", realm=route.realm)
    except (BodyTooLarge, RequestBodyError, ClientGone) as exc:
        response = _body_failed(proxy, exc)
    except RateLimited as exc:
        # Intuit's own 429 shape (qbo-api.md, Errors), plus the Retry-After Intuit omits.
        response = web.Response(
            status=429,
            body=responses.throttle_body(),
            headers={
                "Content-Type": "application/xml",
                "Retry-After": retry_after_header(exc.retry_after),
                "Cache-Control": responses.CACHE_CONTROL,
                "intuit_tid": responses.new_tid(),
                "X-Cache": BYPASS,
            },
        )
    except CircuitOpen as exc:
        response = fault(proxy, 503, "Service Unavailable", "Intuit failing; retrying shortly")
        response.headers["Retry-After"] = retry_after_header(exc.retry_after)
    except UpstreamTimeout:
        response = fault(proxy, 504, "Gateway Timeout", "Intuit did not answer in time")
    except UpstreamUnavailable:
        response = fault(proxy, 502, "Bad Gateway", "Intuit could not be reached")
    return Outcome(response, BYPASS, _route_kind(route), realm=route.realm)


def _route_kind(route: object) -> str:
    return {
        QueryRoute: "query",
        ReadRoute: "read",
        ReportRoute: "report",
        WriteRoute: "write",
        BatchRoute: "batch",
    }.get(type(route), "other")

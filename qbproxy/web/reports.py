"""A report answered from cache: gather facts, ask the policy (`decide_report`,
qbproxy/core/policy.py), act, until the policy's answer is an answer.

Stored answers live in Postgres only (qbproxy/db/reports.py), never in the worker's memory:
a purge that commits there is seen by every instance's next lookup. Concurrent misses for
the same key in this process make one call to Intuit (single flight); the others wait for
it and answer from what it stored. An answer over `cache.report_max_bytes` is streamed on
and not stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import assert_never

from aiohttp import web

from qbproxy.core import policy
from qbproxy.core.policy import (
    Fail,
    Fetch,
    LookUp,
    Refresh,
    Relay,
    RelayAnswer,
    ReportFacts,
    ReportFetched,
    ServeMemory,
    ServeRows,
    ServeStale,
)
from qbproxy.core.reports import storable
from qbproxy.core.routing import ReportRoute
from qbproxy.errors import StoreUnavailable, UpstreamError, UpstreamTimeout
from qbproxy.services import Proxy
from qbproxy.upstream import Fetched, Streamed
from qbproxy.web.bodies import Body
from qbproxy.web.relay import (
    BYPASS,
    HIT,
    MISS,
    STALE,
    Outcome,
    local_response,
    note_store_failure,
    relay,
    store_failed,
)

log = logging.getLogger("qbproxy.handlers")

# The one metrics label of every report (bounded: never a report name from a caller).
LABEL = "report"


async def report(request: web.Request, proxy: Proxy, route: ReportRoute, sent: Body) -> Outcome:
    try:
        response, cache = await _answer(request, proxy, route)
    except StoreUnavailable as exc:
        forwarded = await store_failed(request, proxy, route.realm, exc, sent)
        return Outcome(forwarded, BYPASS, "report", LABEL, route.realm)
    return Outcome(response, cache, "report", LABEL, route.realm)


async def _answer(
    request: web.Request, proxy: Proxy, route: ReportRoute
) -> tuple[web.StreamResponse, str]:
    realm = route.realm
    authorization = request.headers.get("Authorization")
    trusted = await proxy.tokens.trusted(realm, authorization)
    facts = ReportFacts(trusted=trusted, now=proxy.wall_clock())
    body: bytes | None = None
    answer: Fetched | None = None
    error: UpstreamError | None = None
    while True:
        action = policy.decide_report(facts, proxy.windows)
        match action:
            case LookUp():
                try:
                    found = await proxy.reports.entry(realm, route.key.text)
                except StoreUnavailable:
                    if facts.failure is None:
                        raise
                    found = None  # Intuit and Postgres failing: nothing stale either
                body = None if found is None else found[0]
                entry = None if found is None else found[1]
                now = proxy.wall_clock()
                facts = dataclasses.replace(facts, looked_up=True, entry=entry, now=now)
            case ServeRows(cache):
                assert body is not None
                if cache == HIT:
                    proxy.metrics.calls_saved.labels(LABEL).inc()
                return local_response(body, cache), cache
            case Refresh():
                try:
                    fetched, got = await _fetch_once(request, proxy, route)
                except UpstreamError as exc:
                    error = exc
                    facts = dataclasses.replace(facts, failure=_why(exc), looked_up=False)
                    continue
                if isinstance(got, Streamed):
                    return got.response, MISS  # over the size bound: relayed as it came
                # The call taught trust for its caller's token; this caller is answered
                # from what it stored only if its own token is trusted.
                trusted = await proxy.tokens.trusted(realm, authorization)
                facts = dataclasses.replace(
                    facts, trusted=trusted, fetched=fetched, looked_up=False
                )
                if got is not None:
                    answer = got
                    failure = policy.failure_of(got.status)
                    facts = dataclasses.replace(facts, answered=True, failure=failure)
            case ServeStale():
                assert body is not None
                assert facts.failure is not None
                proxy.metrics.stale_serves.labels(LABEL, facts.failure).inc()
                log.warning("[CACHE] Intuit failing: served a stale report for realm %s", realm)
                return local_response(body, STALE), STALE
            case RelayAnswer():
                assert answer is not None
                return relay(answer, MISS), MISS
            case Relay():
                return await _relay(request, proxy, realm), MISS
            case Fail():
                assert error is not None
                raise error
            case ServeMemory() | Fetch():
                raise AssertionError("reports are never kept in memory or fetched by id")
            case _:
                assert_never(action)


async def _fetch_once(
    request: web.Request, proxy: Proxy, route: ReportRoute
) -> tuple[ReportFetched, Fetched | Streamed | None]:
    """Ask Intuit once per key in this process: the first caller asks (with its own token)
    and stores what may be stored; callers arriving meanwhile wait for it and learn
    whether an entry landed (its failure to reach Intuit is theirs too)."""
    flight_key = (route.realm, route.key.text)
    waiting = proxy.report_flights.get(flight_key)
    if waiting is not None:
        proxy.metrics.singleflight_waits.labels(LABEL).inc()
        landed = await asyncio.shield(waiting)
        return ("landed" if landed else "not_landed"), None
    flight: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    proxy.report_flights[flight_key] = flight
    landed = False
    try:
        got = await _ask_and_store(request, proxy, route)
        landed = got[1]
        return "answered", got[0]
    except UpstreamError as exc:
        flight.set_exception(exc)
        flight.exception()  # retrieved: followers may be none
        raise
    finally:
        if not flight.done():
            flight.set_result(landed)
        del proxy.report_flights[flight_key]


async def _ask_and_store(
    request: web.Request, proxy: Proxy, route: ReportRoute
) -> tuple[Fetched | Streamed, bool]:
    """This caller's request sent on as it came; a storable answer stored under the
    generation taken before the call (a purge meanwhile discards it). True: it landed."""
    realm = route.realm
    authorization = request.headers.get("Authorization")
    limit = proxy.settings.cache.report_max_bytes
    ticket = await proxy.reports.begin_fill(realm)

    async def learn(status: int) -> None:
        await proxy.tokens.learn(realm, authorization, status)

    got = await proxy.upstream.fetch_within(
        request,
        max_bytes=limit,
        extra_headers={"X-Cache": MISS},
        before_response=learn,
        entity=LABEL,
        realm=realm,
        trusted=await proxy.tokens.trusted(realm, authorization),
    )
    if isinstance(got, Streamed):
        proxy.metrics.fills.labels(LABEL, "report", "not_stored").inc()
        log.info("[CACHE] report for realm %s over %d bytes: relayed, not stored", realm, limit)
        return got, False
    await learn(got.status)
    keep = storable(route.key, got.status, got.body, limit)
    if keep is None:
        if got.status == 200:
            proxy.metrics.fills.labels(LABEL, "report", "not_stored").inc()
        return got, False
    # Entries past every window are dropped as the realm fills (bounded storage).
    windows = proxy.windows
    try:
        landed = await proxy.reports.fill(
            ticket,
            route.key.text,
            got.body,
            keep.day,
            keep_seconds=max(windows.ttl, windows.max_stale),
        )
    except StoreUnavailable as exc:
        note_store_failure(proxy, exc)
        return got, False
    proxy.metrics.fills.labels(LABEL, "report", "landed" if landed else "discarded").inc()
    if landed:
        log.info("[CACHE] cached report %s for realm %s", route.key.name, realm)
    else:
        log.info(
            "[CACHE] report %s for realm %s discarded: purged while asking", route.key.name, realm
        )
    return got, landed


async def _relay(request: web.Request, proxy: Proxy, realm: str) -> web.StreamResponse:
    """Ask Intuit for this caller and relay its answer, storing nothing."""
    authorization = request.headers.get("Authorization")

    async def learn(status: int) -> None:
        await proxy.tokens.learn(realm, authorization, status)

    got = await proxy.upstream.fetch_within(
        request,
        max_bytes=proxy.settings.cache.report_max_bytes,
        extra_headers={"X-Cache": MISS},
        before_response=learn,
        entity=LABEL,
        realm=realm,
        trusted=await proxy.tokens.trusted(realm, authorization),
    )
    if isinstance(got, Streamed):
        return got.response
    await learn(got.status)
    return relay(got, MISS)


def _why(exc: UpstreamError) -> policy.Failure:
    return "timeout" if isinstance(exc, UpstreamTimeout) else "unavailable"

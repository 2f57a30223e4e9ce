"""Request handling: the only code that sequences the pure core and the I/O shell.

Every /v3 answer carries `X-Cache: HIT | MISS | STALE | BYPASS`. When anything is
unclear (a query the engine cannot answer exactly, Postgres failing) the request is
forwarded: a wrong answer is worse than a slow one (design.md, promise 5).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from qbproxy.core import deps
from qbproxy.core import responses as qbo
from qbproxy.core.batch import Batch, parse_batch
from qbproxy.core.catalog import Entity, entity_named, row_values
from qbproxy.core.limits import retry_after_header
from qbproxy.core.qbql import Plan, Unsupported, compile_query
from qbproxy.core.routing import (
    BatchRoute,
    Passthrough,
    QueryRoute,
    ReadRoute,
    WriteRoute,
    classify,
)
from qbproxy.db.store import FillTicket, Purged, TableState
from qbproxy.errors import (
    CircuitOpen,
    RateLimited,
    StoreUnavailable,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from qbproxy.log import MARKERS, access
from qbproxy.services import PROXY, Proxy
from qbproxy.sync.invalidation import wait_for_acks
from qbproxy.sync.refresh import Discarded, Loaded, Refused
from qbproxy.upstream import BodyTooLarge, Fetched, response_headers

log = logging.getLogger("qbproxy.handlers")

HIT, MISS, STALE, BYPASS = "HIT", "MISS", "STALE", "BYPASS"
# Headers Intuit's answer is relayed without: aiohttp sets them for the body it sends.
_NOT_RELAYED = frozenset({"content-length", "content-encoding"})


@dataclass(slots=True)
class Outcome:
    response: web.StreamResponse
    cache: str
    route: str
    entity: str = "other"
    realm: str | None = None


async def handle(request: web.Request) -> web.StreamResponse:
    proxy = request.app[PROXY]
    if not request.path.startswith("/v3/"):
        return _fault(proxy, 404, "Not Found", "qbproxy serves the QBO API under /v3/ only")
    limit = proxy.settings.server.max_header_bytes
    if any(len(name) + len(value) > limit for name, value in request.raw_headers):
        return _fault(proxy, 431, "Request Header Fields Too Large", f"a header over {limit} bytes")
    if proxy.in_flight >= proxy.settings.server.max_connections:
        response = _fault(proxy, 503, "Service Unavailable", "too many concurrent requests")
        response.headers["Retry-After"] = "1"
        return response
    started = time.perf_counter()
    proxy.in_flight += 1
    try:
        outcome = await _dispatch(request, proxy)
    except asyncio.CancelledError:
        # Shutdown cancelled it after server.shutdown_timeout_seconds: still one line.
        elapsed = (time.perf_counter() - started) * 1000
        access.info("%s %s cancelled %.1fms", request.method, request.path, elapsed)
        raise
    finally:
        proxy.in_flight -= 1
    elapsed = time.perf_counter() - started
    proxy.metrics.requests.labels(outcome.route, outcome.entity, outcome.cache.lower()).inc()
    proxy.metrics.request_seconds.labels(outcome.cache.lower()).observe(elapsed)
    access.info(
        "%s %s %d %s realm=%s entity=%s %.1fms",
        request.method,
        request.path,
        outcome.response.status,
        MARKERS[outcome.cache],
        outcome.realm or "-",
        outcome.entity,
        elapsed * 1000,
    )
    return outcome.response


async def _dispatch(request: web.Request, proxy: Proxy) -> Outcome:
    route = classify(request.method, request.path, request.rel_url.raw_query_string)
    realm = None if isinstance(route, Passthrough) else route.realm
    if isinstance(route, QueryRoute | ReadRoute) and not proxy.migrated.is_set():
        # The schema is not in place yet: never half-use the cache.
        route = Passthrough(route.realm)
    try:
        match route:
            case QueryRoute():
                return await _query(request, proxy, route)
            case ReadRoute():
                return await _read(request, proxy, route)
            case WriteRoute():
                return await _write(request, proxy, route)
            case BatchRoute():
                return await _batch(request, proxy, route)
            case Passthrough():
                return Outcome(await _forward(request, proxy), BYPASS, "other", realm=route.realm)
    except BodyTooLarge:
        limit = proxy.settings.server.max_body_bytes
        response = _fault(proxy, 413, "Request Entity Too Large", f"body over {limit} bytes")
    except RateLimited as exc:
        # Intuit's own 429 shape (qbo-api.md, Errors), plus the Retry-After Intuit omits.
        response = web.Response(
            status=429,
            body=qbo.throttle_body(),
            headers={
                "Content-Type": "application/xml",
                "Retry-After": retry_after_header(exc.retry_after),
                "Cache-Control": qbo.CACHE_CONTROL,
                "intuit_tid": qbo.new_tid(),
                "X-Cache": BYPASS,
            },
        )
    except CircuitOpen as exc:
        response = _fault(proxy, 503, "Service Unavailable", "Intuit failing; retrying shortly")
        response.headers["Retry-After"] = retry_after_header(exc.retry_after)
    except UpstreamTimeout:
        response = _fault(proxy, 504, "Gateway Timeout", "Intuit did not answer in time")
    except UpstreamUnavailable:
        response = _fault(proxy, 502, "Bad Gateway", "Intuit could not be reached")
    return Outcome(response, BYPASS, _route_kind(route), realm=realm)


# --- queries -------------------------------------------------------------------------


async def _query(request: web.Request, proxy: Proxy, route: QueryRoute) -> Outcome:
    body: bytes | None = None
    text = route.text
    if text is None:
        body = await _read_body(request, proxy.settings.server.max_body_bytes)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _bypass(await _forward(request, proxy, body=body), "query", route.realm)
    if len(text) > proxy.settings.server.max_query_chars:
        limit = proxy.settings.server.max_query_chars
        response = _fault(
            proxy, 400, "QueryValidationError", f"query over {limit} characters", "4000"
        )
        return Outcome(response, BYPASS, "query", realm=route.realm)
    plan = _compile(text)
    if isinstance(plan, Unsupported):
        log.debug("forwarding a query the cache cannot answer exactly: %s", plan.reason)
        return _bypass(await _forward(request, proxy, body=body), "query", route.realm)
    entity = entity_named(plan.entity)
    assert entity is not None

    def outcome(response: web.StreamResponse, cache: str) -> Outcome:
        return Outcome(response, cache, "query", entity.name, route.realm)

    authorization = request.headers.get("Authorization")
    ttl = proxy.settings.cache.ttl_seconds
    key = (route.realm, entity.name, plan.normalized)
    generation = _hot_generation(proxy, route.realm, entity)
    if generation is not None and await proxy.tokens.trusted(route.realm, authorization):
        fragment = proxy.hot.answer(key, generation)
        if fragment is not None:
            _in_use(proxy, route.realm, entity, authorization)
            proxy.metrics.calls_saved.labels(entity.name).inc()
            body = qbo.query_body(fragment, proxy.wall_clock())
            return outcome(_local_response(body, HIT), HIT)
    try:
        state = await proxy.store.table_state(route.realm, entity, ttl)
        if state is not None and state.complete:
            _learn_state(proxy, route.realm, entity, state)
            if await proxy.tokens.trusted(route.realm, authorization):
                _in_use(proxy, route.realm, entity, authorization)
                proxy.metrics.calls_saved.labels(entity.name).inc()
                response = await _answer(proxy, route.realm, plan, HIT, state.generation)
                return outcome(response, HIT)
            # Intuit decides for a caller it has not vouched for (design.md, promise 4).
            return outcome(await _relay_fetch(request, proxy, route.realm, entity, body), MISS)
        result, led = await proxy.loader.load_table(route.realm, entity, _auth_headers(request))
    except StoreUnavailable as exc:
        return _bypass(await _store_failed(request, proxy, exc, body), "query", route.realm)
    except UpstreamError as exc:
        stale = await _stale_query(proxy, route.realm, entity, plan, authorization, _why(exc))
        if stale is None:
            raise
        return outcome(stale, STALE)

    match result:
        case Loaded():
            # The loader recorded whether Intuit accepted its caller's token; every other
            # waiter (in this instance or another) is answered only if its own token is.
            if await proxy.tokens.trusted(route.realm, authorization):
                _in_use(proxy, route.realm, entity, authorization)
                try:
                    return outcome(await _answer(proxy, route.realm, plan, MISS), MISS)
                except StoreUnavailable as exc:
                    forwarded = await _store_failed(request, proxy, exc, body)
                    return _bypass(forwarded, "query", route.realm)
        case Refused(answer) if led:
            if _is_failure(answer.status):
                stale = await _stale_query(
                    proxy, route.realm, entity, plan, authorization, _why(answer.status)
                )
                if stale is not None:
                    return outcome(stale, STALE)
            return outcome(_relay(answer, MISS), MISS)
        case Refused() | Discarded():
            pass
    # Another caller's load, or one a purge overtook: ask Intuit for this caller.
    return outcome(await _relay_fetch(request, proxy, route.realm, entity, body), MISS)


# Chat traffic repeats the same few query texts; compiling is pure, so remember results.
_compile_cached = functools.lru_cache(maxsize=4096)(compile_query)
_CACHED_TEXT_CHARS = 2_000  # longer texts are compiled each time (bounded memory)


def _compile(text: str) -> Plan | Unsupported:
    if len(text) > _CACHED_TEXT_CHARS:
        return compile_query(text)
    return _compile_cached(text)


def _is_failure(status: int) -> bool:
    """Intuit could not answer (throttled or broken), as opposed to refusing the request."""
    return status == 429 or status >= 500


def _why(failure: UpstreamError | int) -> str:
    """The stale_serves reason label for an upstream failure."""
    if isinstance(failure, int):
        return "throttled" if failure == 429 else "5xx"
    return "timeout" if isinstance(failure, UpstreamTimeout) else "unavailable"


async def _stale_query(
    proxy: Proxy,
    realm: str,
    entity: Entity,
    plan: Plan,
    authorization: str | None,
    reason: str,
) -> web.Response | None:
    """Intuit failing: answer from a table loaded within max_stale_seconds, never one a
    write has purged since (read-your-writes outranks availability), and only to a caller
    Intuit vouched for (design.md, promises 2, 4 and 6)."""
    try:
        if not await proxy.tokens.trusted(realm, authorization):
            return None
        state = await proxy.store.table_state(realm, entity, proxy.settings.cache.max_stale_seconds)
        if state is None or not state.complete:
            return None
        response = await _answer(proxy, realm, plan, STALE)
    except StoreUnavailable:
        return None
    proxy.metrics.stale_serves.labels(entity.name, reason).inc()
    log.warning("[CACHE] Intuit failing: served stale %s for realm %s", entity.name, realm)
    return response


async def _stale_read(
    proxy: Proxy,
    realm: str,
    entity: Entity,
    entity_id: str,
    authorization: str | None,
    reason: str,
) -> web.Response | None:
    """The read-by-id twin of _stale_query."""
    try:
        if not await proxy.tokens.trusted(realm, authorization):
            return None
        doc = await proxy.store.fresh_row(
            realm, entity, int(entity_id), proxy.settings.cache.max_stale_seconds
        )
    except StoreUnavailable:
        return None
    if doc is None:
        return None
    proxy.metrics.stale_serves.labels(entity.name, reason).inc()
    log.warning("[CACHE] Intuit failing: served stale %s for realm %s", entity.name, realm)
    return _local_response(qbo.entity_body(entity.name, doc, proxy.wall_clock()), STALE)


async def _answer(
    proxy: Proxy, realm: str, plan: Plan, cache: str, generation: int | None = None
) -> web.Response:
    """Answer from the table; with the generation it is complete under, also keep the
    answer in memory for the next identical query."""
    fragment = await _query_response(proxy, realm, plan)
    if generation is not None and proxy.hot.enabled:
        proxy.hot.keep((realm, plan.entity, plan.normalized), generation, fragment)
    return _local_response(qbo.query_body(fragment, proxy.wall_clock()), cache)


def _hot_generation(proxy: Proxy, realm: str, entity: Entity) -> int | None:
    """The generation memory may answer under, if it may answer at all."""
    if not proxy.hot.enabled or not proxy.invalidation.healthy:
        return None
    return proxy.hot.complete_generation(realm, entity.name, proxy.clock())


def _in_use(proxy: Proxy, realm: str, entity: Entity, authorization: str | None) -> None:
    """A trusted caller was answered about the table: keep it refreshed ahead for a while,
    with this caller's token (qbproxy/demand.py)."""
    if authorization is not None:
        proxy.demand.used(realm, entity.name, authorization, proxy.clock())


def _learn_state(proxy: Proxy, realm: str, entity: Entity, state: TableState) -> None:
    if proxy.hot.enabled and state.age is not None:
        remaining = proxy.settings.cache.ttl_seconds - state.age
        proxy.hot.learn(realm, entity.name, state.generation, remaining, proxy.clock())


async def _query_response(proxy: Proxy, realm: str, plan: Plan) -> bytes:
    if plan.count:
        return qbo.count_response(await proxy.store.count(realm, plan.sql, plan.args))
    docs = await proxy.store.select(realm, plan.sql, plan.args)
    return qbo.query_response(plan.entity, docs, plan.start_position)


# --- reads ---------------------------------------------------------------------------


async def _read(request: web.Request, proxy: Proxy, route: ReadRoute) -> Outcome:
    entity = route.entity
    authorization = request.headers.get("Authorization")
    ttl = proxy.settings.cache.ttl_seconds
    trusted = await proxy.tokens.trusted(route.realm, authorization)
    key = (route.realm, entity.name, f"#{route.entity_id}")
    generation = _hot_generation(proxy, route.realm, entity)
    if trusted and generation is not None:
        kept = proxy.hot.answer(key, generation)
        if kept is not None:
            _in_use(proxy, route.realm, entity, authorization)
            proxy.metrics.calls_saved.labels(entity.name).inc()
            body = qbo.entity_body(entity.name, kept, proxy.wall_clock())
            return Outcome(_local_response(body, HIT), HIT, "read", entity.name, route.realm)
    try:
        if trusted:
            doc = await proxy.store.fresh_row(route.realm, entity, int(route.entity_id), ttl)
            if doc is not None:
                _in_use(proxy, route.realm, entity, authorization)
                proxy.metrics.calls_saved.labels(entity.name).inc()
                encoded = doc.encode()
                if generation is not None:
                    proxy.hot.keep(key, generation, encoded)
                response = _local_response(
                    qbo.entity_body(entity.name, encoded, proxy.wall_clock()), HIT
                )
                return Outcome(response, HIT, "read", entity.name, route.realm)
            assert authorization is not None  # trusted
            refreshed = await _read_refreshed(proxy, route, authorization)
            if refreshed is not None:
                return Outcome(refreshed, MISS, "read", entity.name, route.realm)
        ticket = await proxy.store.begin_fill(route.realm, entity)
    except StoreUnavailable as exc:
        return _bypass(await _store_failed(request, proxy, exc, None), "read", route.realm)

    try:
        answer = await proxy.upstream.fetch(
            "GET",
            request.path,
            request.rel_url.raw_query_string,
            request.headers,
            entity=entity.name,
            realm=route.realm,
        )
    except UpstreamError as exc:
        stale = await _stale_read(
            proxy, route.realm, entity, route.entity_id, authorization, _why(exc)
        )
        if stale is None:
            raise
        return Outcome(stale, STALE, "read", entity.name, route.realm)
    if _is_failure(answer.status):
        stale = await _stale_read(
            proxy, route.realm, entity, route.entity_id, authorization, _why(answer.status)
        )
        if stale is not None:
            return Outcome(stale, STALE, "read", entity.name, route.realm)
    await proxy.tokens.learn(route.realm, authorization, answer.status)
    if answer.status == 200:
        await _fill_row(proxy, ticket, _entity_row(entity, answer.body, route.entity_id))
    return Outcome(_relay(answer, MISS), MISS, "read", entity.name, route.realm)


async def _read_refreshed(
    proxy: Proxy, route: ReadRoute, authorization: str
) -> web.Response | None:
    """A table loaded whole before but incomplete now (a write purged it, or its TTL ran
    out) is brought up to date by the realm's one CDC call, and the entity read from it:
    the one call the read would have cost, after which the rest of the realm's tables are
    fresh too. None: ask Intuit for the entity alone (never loaded, CDC not possible,
    Intuit failing or refusing, no such row)."""
    entity = route.entity
    try:
        result = await proxy.loader.refresh_incrementally(
            route.realm, entity, {"Authorization": authorization}
        )
    except UpstreamError:
        return None
    if not isinstance(result, Loaded):
        return None
    doc = await proxy.store.fresh_row(
        route.realm, entity, int(route.entity_id), proxy.settings.cache.ttl_seconds
    )
    if doc is None:
        return None
    _in_use(proxy, route.realm, entity, authorization)
    return _local_response(qbo.entity_body(entity.name, doc.encode(), proxy.wall_clock()), MISS)


async def _fill_row(
    proxy: Proxy, ticket: FillTicket, rows: list[tuple[str, tuple[Any, ...]]]
) -> None:
    """Land one entity Intuit just returned, if no purge came since the ticket was taken."""
    if not rows:
        return
    entity = ticket.entity.name
    try:
        if await proxy.store.fill(ticket, rows):
            proxy.metrics.rows_filled.labels(entity).inc()
            proxy.metrics.fills.labels(entity, "row", "landed").inc()
        else:
            proxy.metrics.fills.labels(entity, "row", "discarded").inc()
    except StoreUnavailable as exc:
        _note_store_failure(proxy, exc)


def _entity_row(
    entity: Entity, body: bytes, entity_id: str | None
) -> list[tuple[str, tuple[Any, ...]]]:
    """The entity of a read or write answer as a cache row; nothing if it is not one."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    item = doc.get(entity.name) if isinstance(doc, dict) else None
    if not isinstance(item, dict) or (entity_id is not None and item.get("Id") != entity_id):
        return []
    values = row_values(entity, item)
    return [] if values is None else [(orjson.dumps(item).decode(), values)]


# --- writes --------------------------------------------------------------------------


async def _write(request: web.Request, proxy: Proxy, route: WriteRoute) -> Outcome:
    body: bytes | None = None
    operation = route.operation
    cached = entity_named(route.entity)
    is_json = request.content_type == "application/json"
    if operation == "create/update":
        operation = deps.UPDATE
        # Only the body tells a create from an update; read it (a small JSON document) when
        # that narrows the purge or the answer can be written through, else stream it on.
        if is_json and (cached is not None or deps.create_purges_less(route.entity)):
            body = await _read_body(request, proxy.settings.server.max_body_bytes)
            operation = _create_or_update(body)
    elif operation == "update" and cached is not None and is_json:
        body = await _read_body(request, proxy.settings.server.max_body_bytes)
    tables = deps.tables_changed(route.entity, operation)
    # Write-through: the entity Intuit returns from a create or update is the freshest copy.
    write_through = cached if body is not None and operation in (deps.CREATE, deps.UPDATE) else None
    response = await _forward_write(
        request, proxy, route.realm, tables, body, write_through=write_through
    )
    return Outcome(response, BYPASS, "write", cached.name if cached else "other", realm=route.realm)


def _create_or_update(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return deps.UPDATE
    if isinstance(doc, dict) and "Id" not in doc and "sparse" not in doc:
        return deps.CREATE
    return deps.UPDATE


async def _batch(request: web.Request, proxy: Proxy, route: BatchRoute) -> Outcome:
    body = await _read_body(request, proxy.settings.server.max_body_bytes)
    batch = parse_batch(body)
    if batch.queries_only:
        answered = await _batch_from_cache(request, proxy, route.realm, batch)
        if answered is not None:
            return Outcome(answered, HIT, "batch", realm=route.realm)
        # A batch that only reads changes nothing: forward it without purging.
        response = await _forward(request, proxy, body=body)
        return Outcome(response, BYPASS, "batch", realm=route.realm)
    response = await _forward_write(request, proxy, route.realm, batch.tables, body)
    return Outcome(response, BYPASS, "batch", realm=route.realm)


async def _batch_from_cache(
    request: web.Request, proxy: Proxy, realm: str, batch: Batch
) -> web.Response | None:
    """Every item answered from complete tables for a trusted caller, or None (forward)."""
    plans = [(bid, compile_query(text)) for bid, text in batch.queries]
    if not plans or any(isinstance(plan, Unsupported) for _, plan in plans):
        return None
    try:
        if not await proxy.tokens.trusted(realm, request.headers.get("Authorization")):
            return None
        items: list[tuple[str, bytes]] = []
        ttl = proxy.settings.cache.ttl_seconds
        for bid, plan in plans:
            assert isinstance(plan, Plan)
            entity = entity_named(plan.entity)
            assert entity is not None
            state = await proxy.store.table_state(realm, entity, ttl)
            if state is None or not state.complete:
                return None
            items.append((bid, await _query_response(proxy, realm, plan)))
    except StoreUnavailable as exc:
        _note_store_failure(proxy, exc)
        return None
    for _, plan in plans:
        assert isinstance(plan, Plan)
        proxy.metrics.calls_saved.labels(plan.entity).inc()
    return _local_response(qbo.batch_body(items, proxy.wall_clock()), HIT)


async def _forward_write(
    request: web.Request,
    proxy: Proxy,
    realm: str,
    tables: frozenset[Entity],
    body: bytes | None,
    *,
    write_through: Entity | None = None,
) -> web.StreamResponse:
    """Purge before forwarding and again once Intuit answered, before the client hears.

    The first purge stops serving what the write may change; the second discards any fill
    that started while the write was in flight (design.md, promise 2). An untrusted
    caller cannot trigger the first (or anyone could keep a realm's cache empty); Intuit's
    401/403 means nothing was written, so nothing is purged.
    """
    authorization = request.headers.get("Authorization")
    before: Purged | None = None
    if tables and await proxy.tokens.trusted(realm, authorization):
        before = await _purge(proxy, realm, tables, "write")

    purged: list[Purged] = []

    async def after_intuit_answered(status: int) -> None:
        await proxy.tokens.learn(realm, authorization, status)
        if status in (401, 403) or not tables:
            return
        done = await _purge(proxy, realm, tables, "write")
        if done is not None:
            purged.append(done)

    if write_through is None:
        return await _forward(request, proxy, body=body, before_response=after_intuit_answered)
    answer = await _fetch_as_sent(request, proxy, realm, write_through, body)
    await after_intuit_answered(answer.status)
    name = write_through.name
    if (
        answer.status == 200
        and before is not None
        and purged
        and name in before.generations
        and purged[0].generations.get(name) == before.generations[name] + 1
    ):
        # Only when no other purge of the table came between this write's two: a write
        # Intuit committed after this one then purges after ours and discards this row,
        # and one that purged in between may be newer, so nothing lands at all.
        ticket = purged[0].ticket(realm, write_through)
        await _fill_row(proxy, ticket, _entity_row(write_through, answer.body, None))
    return _relay(answer, BYPASS)


async def _purge(proxy: Proxy, realm: str, tables: frozenset[Entity], reason: str) -> Purged | None:
    ordered = sorted(tables, key=lambda e: e.name)
    try:
        purged = await proxy.store.purge(realm, ordered)
        for name, generation in purged.generations.items():
            proxy.hot.purged(realm, name, generation)
        # Every instance's memory drops what the write may change before it answers.
        await wait_for_acks(proxy.store.connection, proxy.invalidation.instance_id, purged.seq)
    except StoreUnavailable as exc:
        # The purge may not have reached Postgres: at least this instance's memory forgets
        # everything (other instances lose their channel too and fence themselves).
        proxy.hot.clear()
        _note_store_failure(proxy, exc)
        return None
    for entity in ordered:
        proxy.metrics.purges.labels(entity.name, reason).inc()
    log.info(
        "[CACHE] purged %s for realm %s (%s)", ",".join(e.name for e in ordered), realm, reason
    )
    return purged


# --- forwarding and responses --------------------------------------------------------


async def _forward(
    request: web.Request,
    proxy: Proxy,
    *,
    body: bytes | None = None,
    before_response: Callable[[int], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    realm = _realm_of(request.path)
    if before_response is None and realm is not None:
        authorization = request.headers.get("Authorization")

        async def learn(status: int) -> None:
            # Every answer Intuit gives says something about the caller's token: a 401 on
            # any path drops its trust at once (design.md, promise 4).
            await proxy.tokens.learn(realm, authorization, status)

        before_response = learn
    return await proxy.upstream.forward(
        request,
        max_body_bytes=proxy.settings.server.max_body_bytes,
        extra_headers={"X-Cache": BYPASS},
        body=body,
        before_response=before_response,
        realm=realm,
    )


def _realm_of(path: str) -> str | None:
    """The realm a /v3 path names, for per-realm limits (routing has checked its shape)."""
    parts = path.split("/", 5)
    return parts[3] if len(parts) > 4 and parts[3].isdigit() else None


async def _relay_fetch(
    request: web.Request, proxy: Proxy, realm: str, entity: Entity, body: bytes | None
) -> web.Response:
    answer = await _fetch_as_sent(request, proxy, realm, entity, body)
    await proxy.tokens.learn(realm, request.headers.get("Authorization"), answer.status)
    return _relay(answer, MISS)


async def _fetch_as_sent(
    request: web.Request, proxy: Proxy, realm: str, entity: Entity, body: bytes | None
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
    )


def _relay(answer: Fetched, cache: str) -> web.Response:
    headers = CIMultiDict(
        (k, v) for k, v in response_headers(answer.headers).items() if k.lower() not in _NOT_RELAYED
    )
    headers["X-Cache"] = cache
    return web.Response(status=answer.status, body=answer.body, headers=headers)


def _local_response(body: bytes, cache: str) -> web.Response:
    return web.Response(
        body=body,
        headers={
            "Content-Type": qbo.JSON_CONTENT_TYPE,
            "Cache-Control": qbo.CACHE_CONTROL,
            "intuit_tid": qbo.new_tid(),
            "X-Cache": cache,
        },
    )


def _fault(
    proxy: Proxy, status: int, message: str, detail: str, code: str = "10000"
) -> web.Response:
    """A Fault the proxy makes itself, shaped like Intuit's (qbo-api.md, Errors)."""
    body = qbo.fault_body(code, message, detail, proxy.wall_clock())
    response = _local_response(body, BYPASS)
    response.set_status(status)
    return response


def _bypass(response: web.StreamResponse, route: str, realm: str) -> Outcome:
    return Outcome(response, BYPASS, route, realm=realm)


async def _store_failed(
    request: web.Request, proxy: Proxy, exc: StoreUnavailable, body: bytes | None
) -> web.StreamResponse:
    _note_store_failure(proxy, exc)
    return await _forward(request, proxy, body=body)


def _note_store_failure(proxy: Proxy, exc: StoreUnavailable) -> None:
    proxy.metrics.store_errors.inc()
    log.warning("[CACHE] postgres unavailable, forwarding: %s", exc)


async def _read_body(request: web.Request, limit: int) -> bytes:
    body = await read_within(request, limit)
    if body is None:
        raise BodyTooLarge
    return body


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


def _auth_headers(request: web.Request) -> dict[str, str]:
    auth = request.headers.get("Authorization")
    return {"Authorization": auth} if auth else {}


def _route_kind(route: object) -> str:
    return {
        QueryRoute: "query",
        ReadRoute: "read",
        WriteRoute: "write",
        BatchRoute: "batch",
    }.get(type(route), "other")

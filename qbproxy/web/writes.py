"""Writes and batches: forwarded to Intuit, with the purges their plan calls for
(qbproxy/core/policy.py, `plan_write`) before and after, and write-through when it may land;
a batch of queries only is answered from complete tables when it can be.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from qbproxy.core import policy, responses
from qbproxy.core.batch import Batch, parse_batch
from qbproxy.core.catalog import entity_named
from qbproxy.core.policy import WritePlan
from qbproxy.core.qbql import Plan, Unsupported
from qbproxy.core.routing import BatchRoute, WriteRoute
from qbproxy.db.tables import Purged
from qbproxy.errors import StoreUnavailable, UpstreamTimeout, UpstreamUnavailable
from qbproxy.services import PROXY, Proxy
from qbproxy.web.bodies import Body, decoded
from qbproxy.web.landing import entity_row, fill_row
from qbproxy.web.reads import compile_text, query_fragment
from qbproxy.web.relay import (
    BYPASS,
    HIT,
    Outcome,
    fetch_as_sent,
    forward,
    local_response,
    note_store_failure,
    relay,
)


async def write(request: web.Request, proxy: Proxy, route: WriteRoute, sent: Body) -> Outcome:
    body: bytes | None = None
    doc: dict[str, object] | None = None
    if policy.needs_body(route.entity, route.operation, request.content_type == "application/json"):
        body = await sent.read(proxy.settings.server.max_body_bytes)
        doc = _json_object(_plain(request, body))
    plan = policy.plan_write(route.entity, route.operation, doc)
    response = await _forward_write(request, proxy, route.realm, plan, sent, body)
    entity = plan.write_through.name if plan.write_through else _entity_label(route.entity)
    return Outcome(response, BYPASS, "write", entity, realm=route.realm)


async def batch(request: web.Request, proxy: Proxy, route: BatchRoute, sent: Body) -> Outcome:
    body = await sent.read(proxy.settings.server.max_body_bytes)
    parsed = parse_batch(_plain(request, body) or b"")
    if parsed.queries_only:
        answered = await batch_from_cache(request, proxy, route.realm, parsed)
        if answered is not None:
            return Outcome(answered, HIT, "batch", realm=route.realm)
        # A batch that only reads changes nothing: forward it without purging.
        response = await forward(request, proxy, route.realm, sent)
        return Outcome(response, BYPASS, "batch", realm=route.realm)
    plan = WritePlan(parsed.tables, write_through=None)
    response = await _forward_write(request, proxy, route.realm, plan, sent, body)
    return Outcome(response, BYPASS, "batch", realm=route.realm)


def _plain(request: web.Request, body: bytes) -> bytes | None:
    """The body decoded for reading (None: an encoding the proxy does not read, so the
    write is planned as one whose body is unknown: purge more)."""
    limit = request.app[PROXY].settings.server.max_body_bytes
    return decoded(body, request.headers.get("Content-Encoding"), limit)


async def _forward_write(
    request: web.Request,
    proxy: Proxy,
    realm: str,
    plan: WritePlan,
    sent: Body,
    body: bytes | None,
) -> web.StreamResponse:
    """Purge once the write is on its way to Intuit and again once Intuit answered, before
    the client hears.

    The first purge stops serving what the write may change; the second discards any fill
    that started while the write was in flight (design.md, promise 2). Neither happens for
    a write that never left: refused by an open circuit or the proxy's own 429, it changes
    nothing (issue 14, item 2). An untrusted caller cannot trigger the first (or anyone
    could keep a realm's cache empty); Intuit's 401/403/429 mean nothing was written, so
    nothing is purged after. A write sent whose answer never came may have landed: purged.
    """
    authorization = request.headers.get("Authorization")
    trusted = await proxy.tokens.trusted(realm, authorization)
    before: list[Purged] = []
    after: list[Purged] = []
    sent_to_intuit = False

    async def on_send() -> None:
        nonlocal sent_to_intuit
        sent_to_intuit = True
        if trusted:  # every write purges the realm's reports, whatever its tables
            purged = await proxy.purger.purge(realm, plan.tables, "write")
            if purged is not None:
                before.append(purged)

    answered = False

    async def after_intuit_answered(status: int) -> None:
        nonlocal answered
        answered = True
        await proxy.tokens.learn(realm, authorization, status)
        if policy.purge_after(status):
            purged = await proxy.purger.purge(realm, plan.tables, "write")
            if purged is not None:
                after.append(purged)

    through = plan.write_through
    try:
        if through is None:
            return await forward(
                request,
                proxy,
                realm,
                sent,
                before_send=on_send,
                before_response=after_intuit_answered,
                trusted=trusted,
            )
        answer = await fetch_as_sent(
            request, proxy, realm, through, body, trusted=trusted, before_send=on_send
        )
    except (UpstreamTimeout, UpstreamUnavailable):
        if sent_to_intuit and not answered:
            # Intuit may have committed it before the link failed: when unsure, purge.
            await proxy.purger.purge(realm, plan.tables, "write")
        raise
    await after_intuit_answered(answer.status)
    landed_before = before[0].generations.get(through.name) if before else None
    landed_after = after[0].generations.get(through.name) if after else None
    if policy.write_through_lands(answer.status, landed_before, landed_after):
        ticket = after[0].ticket(realm, through)
        await fill_row(proxy, ticket, entity_row(through, answer.body, None))
    return relay(answer, BYPASS)


def _json_object(body: bytes | None) -> dict[str, object] | None:
    if body is None:
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _entity_label(segment: str) -> str:
    """The metrics label of a write: a cached entity's name, else "other" (bounded)."""
    entity = entity_named(segment)
    return entity.name if entity is not None else "other"


async def batch_from_cache(
    request: web.Request, proxy: Proxy, realm: str, batch: Batch
) -> web.Response | None:
    """Every item answered from complete tables for a trusted caller, or None (forward)."""
    plans = [(bid, compile_text(text)) for bid, text in batch.queries]
    if not plans or any(isinstance(plan, Unsupported) for _, plan in plans):
        return None
    try:
        if not await proxy.tokens.trusted(realm, request.headers.get("Authorization")):
            return None
        items: list[tuple[str, bytes]] = []
        for bid, plan in plans:
            assert isinstance(plan, Plan)
            entity = entity_named(plan.entity)
            assert entity is not None
            if not policy.complete(await proxy.tables.state(realm, entity), proxy.windows):
                return None
            fragment = await query_fragment(proxy, realm, plan)
            if fragment is None:
                return None
            items.append((bid, fragment))
    except StoreUnavailable as exc:
        note_store_failure(proxy, exc)
        return None
    for _, plan in plans:
        assert isinstance(plan, Plan)
        proxy.metrics.calls_saved.labels(plan.entity).inc()
    return local_response(responses.batch_body(items, proxy.wall_clock()), HIT)

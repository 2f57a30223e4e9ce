"""Intuit webhooks endpoint, the thin shell: read the body within a cap, verify and parse it
(`webhook_events`, pure), answer at once and purge the planned tables in the background;
metrics for every delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from qbproxy.config import WebhookSettings
from qbproxy.core.catalog import ENTITIES
from qbproxy.core.webhook_events import (
    DROPPED_ENTITIES,
    MalformedPayload,
    WebhookPurges,
    affects_cache,
    parse,
    purges_for,
    verify,
)
from qbproxy.services import PROXY, Proxy
from qbproxy.web.relay import read_within

log = logging.getLogger("qbproxy.webhooks")

# Intuit's payloads are a few KiB (one entry per changed entity); anything near this is not
# Intuit. Well under server.max_body_bytes, and read before any parsing.
MAX_BODY_BYTES = 1024 * 1024
# Time in-flight purges get at shutdown before they are cancelled (the TTL still bounds
# staleness for a purge that never ran).
_SHUTDOWN_GRACE_SECONDS = 5.0


# Bounded metric labels: entity names from this set, anything else "other".
_LABELLED = DROPPED_ENTITIES | {e.path_segment for e in ENTITIES}


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "qbproxy_webhooks_received",
            "Signed, well-formed webhook deliveries accepted, by payload format.",
            ["format"],
            registry=registry,
        )
        self.rejected = Counter(
            "qbproxy_webhooks_rejected",
            "Webhook deliveries refused, by reason (disabled, signature, too_large, "
            "malformed, method); nothing was changed.",
            ["reason"],
            registry=registry,
        )
        self.events = Counter(
            "qbproxy_webhook_events",
            "Entity events in accepted webhooks, by entity and outcome (purged, dropped).",
            ["entity", "outcome"],
            registry=registry,
        )


@dataclass(slots=True)
class _Webhooks:
    settings: WebhookSettings
    metrics: WebhookMetrics
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


_STATE = web.AppKey("webhooks", _Webhooks)


def install(app: web.Application, settings: WebhookSettings) -> None:
    """Route `settings.path` on the proxy app (before its catch-all) and own its tasks.

    Needs `app[PROXY]` set: the counters go on the proxy's registry, once per app.
    """
    app[_STATE] = _Webhooks(settings, WebhookMetrics(app[PROXY].metrics.registry))
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_route("*", settings.path, webhook_handler)


async def drain(app: web.Application) -> None:
    """Wait until every purge queued by a webhook so far has run (tests, shutdown)."""
    tasks = app[_STATE].tasks
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    yield
    # Appended after the database context, so this runs while the pool is still open.
    tasks = app[_STATE].tasks
    if tasks:
        _, pending = await asyncio.wait(list(tasks), timeout=_SHUTDOWN_GRACE_SECONDS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def webhook_handler(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    metrics = state.metrics
    token = state.settings.verifier_token
    if not token:
        metrics.rejected.labels("disabled").inc()
        return web.Response(status=404, text="webhooks are not configured\n")
    if request.method != "POST":
        metrics.rejected.labels("method").inc()
        return web.Response(status=405, headers={"Allow": "POST"}, text="POST only\n")
    body = await read_within(request, MAX_BODY_BYTES)
    if body is None:
        metrics.rejected.labels("too_large").inc()
        log.warning("webhook rejected: body over %d bytes", MAX_BODY_BYTES)
        return web.Response(status=413, text="body too large\n")
    # The signature is checked on the raw bytes before anything reads them as JSON.
    if not verify(body, request.headers.get("intuit-signature"), token):
        metrics.rejected.labels("signature").inc()
        log.warning("webhook rejected: missing or bad intuit-signature")
        return web.Response(status=401, text="bad signature\n")
    try:
        fmt, events = parse(body)
    except MalformedPayload as exc:
        metrics.rejected.labels("malformed").inc()
        log.warning("webhook rejected: malformed payload: %s", exc)
        return web.Response(status=400, text="malformed payload\n")
    metrics.received.labels(fmt).inc()
    decided = purges_for(events)
    for event in events:
        outcome = "purged" if affects_cache(event.entity) else "dropped"
        metrics.events.labels(_label(event.entity), outcome).inc()
    # Every realm with an event has its reports purged, also when no cached table changes
    # (a Bill moves AgedPayables): any change can move a report.
    realms = sorted({event.realm for event in events})
    if realms:
        # Intuit wants a 200 within seconds and retries otherwise; purge after answering.
        proxy = request.app[PROXY]
        task = asyncio.get_running_loop().create_task(_apply(proxy, realms, decided))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
    return web.Response(status=200, text="ok\n")


async def _apply(proxy: Proxy, realms: list[str], decided: WebhookPurges) -> None:
    # A lost purge (Postgres down) is logged by the purger; the TTL still bounds how long
    # the change stays invisible. Each purge takes the realm's reports with its tables.
    for realm in realms:
        await proxy.purger.purge(realm, decided.purges.get(realm, frozenset()), "webhook")


def _label(entity: str) -> str:
    name = entity.lower()
    return name if name in _LABELLED else "other"

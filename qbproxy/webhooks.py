"""Intuit webhooks: verify the signature, read legacy and CloudEvents payloads, purge what
each changed entity can change (the same `deps` map writes use), in the background.

The pure part (`verify`, `parse`, `plan`) does no I/O; `webhook_handler` is the thin shell.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from qbproxy import deps
from qbproxy.config import WebhookSettings
from qbproxy.errors import StoreUnavailable
from qbproxy.handlers import read_within
from qbproxy.schema import Entity
from qbproxy.state import PROXY, Proxy

log = logging.getLogger("qbproxy.webhooks")

# Intuit's payloads are a few KiB (one entry per changed entity); anything near this is not
# Intuit. Well under server.max_body_bytes, and read before any parsing.
MAX_BODY_BYTES = 1024 * 1024
# Time in-flight purges get at shutdown before they are cancelled (the TTL still bounds
# staleness for a purge that never ran).
_SHUTDOWN_GRACE_SECONDS = 5.0

Format = Literal["legacy", "cloudevents"]


# --- pure core -----------------------------------------------------------------------------


class MalformedPayload(ValueError):
    """The body is signed but is not a webhook payload this module can read."""


@dataclass(frozen=True, slots=True)
class Event:
    realm: str
    entity: str  # as Intuit names it: "Customer" (legacy) or "customer" (CloudEvents type)
    entity_id: str
    operation: str  # Intuit's vocabulary: Create, Update, Delete, Merge, Void (or newer)


@dataclass(frozen=True, slots=True)
class Plan:
    purges: dict[str, frozenset[Entity]]  # realm -> tables to purge
    dropped: tuple[Event, ...] = ()  # events for entities that change no cached table


def sign(body: bytes, verifier_token: str) -> str:
    """`intuit-signature`: base64 of HMAC-SHA256 over the raw body (qbo-api.md "Webhooks")."""
    return base64.b64encode(_digest(body, verifier_token)).decode()


def verify(body: bytes, signature: str | None, verifier_token: str) -> bool:
    """Whether `signature` (the header value) signs `body`, compared in constant time."""
    if not signature or not verifier_token:
        return False
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, _digest(body, verifier_token))


def _digest(body: bytes, verifier_token: str) -> bytes:
    return hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()


def parse(body: bytes) -> tuple[Format, list[Event]]:
    """Events in a legacy `eventNotifications` object or a CloudEvents array.

    Raises MalformedPayload for anything else: the whole body is refused, nothing purged.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload("body is not JSON") from exc
    if isinstance(doc, dict) and "eventNotifications" in doc:
        return "legacy", _legacy(doc["eventNotifications"])
    if isinstance(doc, list):
        return "cloudevents", [_cloudevent(item, i) for i, item in enumerate(doc)]
    raise MalformedPayload("neither an eventNotifications object nor a CloudEvents array")


def _legacy(notifications: Any) -> list[Event]:
    events = []
    for i, raw_note in enumerate(_list(notifications, "eventNotifications")):
        where = f"eventNotifications[{i}]"
        note = _dict(raw_note, where)
        realm = _realm(note.get("realmId"), f"{where}.realmId")
        change = _dict(note.get("dataChangeEvent"), f"{where}.dataChangeEvent")
        for j, raw_item in enumerate(_list(change.get("entities"), f"{where}.entities")):
            at = f"{where}.entities[{j}]"
            item = _dict(raw_item, at)
            events.append(
                Event(
                    realm,
                    _text(item.get("name"), f"{at}.name"),
                    _text(item.get("id"), f"{at}.id"),
                    _text(item.get("operation"), f"{at}.operation"),
                )
            )
    return events


# qbo.<entity>.<verb>.v<n>, e.g. qbo.customer.created.v1 (qbo-api.md "Webhooks").
_CLOUDEVENT_TYPE = re.compile(r"qbo\.([a-z][a-z0-9]*)\.([a-z]+)\.v[0-9]+", re.IGNORECASE)
_VERBS = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "merged": "Merge",
    "voided": "Void",
}


def _cloudevent(raw: Any, i: int) -> Event:
    where = f"[{i}]"
    item = _dict(raw, where)
    kind = _text(item.get("type"), f"{where}.type")
    match = _CLOUDEVENT_TYPE.fullmatch(kind)
    if match is None:
        raise MalformedPayload(f"{where}.type is not qbo.<entity>.<verb>.v<n>")
    entity, verb = match.group(1).lower(), match.group(2).lower()
    return Event(
        _realm(item.get("intuitaccountid"), f"{where}.intuitaccountid"),
        entity,
        _text(item.get("intuitentityid"), f"{where}.intuitentityid"),
        # A verb this module does not know yet is treated as an update (purges the most).
        _VERBS.get(verb, verb.capitalize()),
    )


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedPayload(f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedPayload(f"{where} must be an array")
    return value


def _text(value: Any, where: str) -> str:
    # Ids may come as JSON numbers; anything else must be a non-empty string.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise MalformedPayload(f"{where} must be a non-empty string")
    return value.strip()


def _realm(value: Any, where: str) -> str:
    realm = _text(value, where)
    # Realm ids are digit strings (qbo-api.md), as routing.py requires of /v3 paths.
    if not (len(realm) <= 32 and realm.isascii() and realm.isdigit()):
        raise MalformedPayload(f"{where} must be a realm id (digits)")
    return realm


# Intuit's operation -> the deps operation. Merge rewrites the surviving entity (and every
# ref to the merged one), so it purges as an update; anything unknown does too.
_OPERATIONS = {"create": deps.CREATE, "update": deps.UPDATE, "merge": deps.UPDATE}
_OPERATIONS |= {"delete": "delete", "void": "void"}

# Entities whose changes cannot reach a cached Customer, Invoice or Payment document: no
# cached document carries a ref to them and they move no receivable balance (AP side,
# payroll, planning). Their events are counted and dropped. Everything else follows deps,
# which purges all three for entities it does not list, on purpose: the balance movers
# (CreditMemo, SalesReceipt, RefundReceipt, JournalEntry, Deposit), and entities whose
# names cached documents carry in refs (`{"value","name"}`, qbo-api.md): Item (Invoice
# lines' ItemRef), Account (DepositToAccountRef), Term, PaymentMethod, Class, Department,
# TaxCode; a rename or merge of one changes the documents Intuit would now return.
# Estimate stays out: an invoice links one by TxnId/TxnType only, and converting one
# creates an Invoice, which sends its own event.
DROPPED_ENTITIES = frozenset(
    {
        "bill",
        "billpayment",
        "budget",
        "employee",
        "estimate",
        "purchase",
        "purchaseorder",
        "timeactivity",
        "transfer",
        "vendor",
        "vendorcredit",
    }
)


def affects_cache(entity: str) -> bool:
    return entity.lower() not in DROPPED_ENTITIES


def plan(events: Iterable[Event]) -> Plan:
    """Realm -> union of the tables the events can change; the dropped events beside."""
    purges: dict[str, frozenset[Entity]] = {}
    dropped = []
    for event in events:
        if not affects_cache(event.entity):
            dropped.append(event)
            continue
        operation = _OPERATIONS.get(event.operation.lower(), deps.UPDATE)
        tables = deps.tables_changed(event.entity.lower(), operation)
        purges[event.realm] = purges.get(event.realm, frozenset()) | tables
    return Plan(purges, tuple(dropped))


# --- shell -----------------------------------------------------------------------------------

# Bounded metric labels: entity names from this set, anything else "other".
_LABELLED = DROPPED_ENTITIES | {
    "customer",
    "invoice",
    "payment",
    "creditmemo",
    "salesreceipt",
    "refundreceipt",
    "journalentry",
    "deposit",
    "item",
    "account",
}


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
    decided = plan(events)
    for event in events:
        outcome = "purged" if affects_cache(event.entity) else "dropped"
        metrics.events.labels(_label(event.entity), outcome).inc()
    if decided.purges:
        # Intuit wants a 200 within seconds and retries otherwise; purge after answering.
        proxy = request.app[PROXY]
        task = asyncio.get_running_loop().create_task(_apply(proxy, decided))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
    return web.Response(status=200, text="ok\n")


async def _apply(proxy: Proxy, decided: Plan) -> None:
    for realm, tables in decided.purges.items():
        await _purge(proxy, realm, tables)


async def _purge(proxy: Proxy, realm: str, tables: frozenset[Entity]) -> None:
    ordered = sorted(tables, key=lambda e: e.name)
    try:
        await proxy.store.purge(realm, ordered)
    except StoreUnavailable as exc:
        # Lost purge: the TTL still bounds how long the change stays invisible.
        proxy.metrics.store_errors.inc()
        log.warning("[CACHE] webhook purge for realm %s not applied: %s", realm, exc)
        return
    for entity in ordered:
        proxy.metrics.purges.labels(entity.name, "webhook").inc()
    log.info("[CACHE] purged %s for realm %s (webhook)", ",".join(e.name for e in ordered), realm)


def _label(entity: str) -> str:
    name = entity.lower()
    return name if name in _LABELLED else "other"

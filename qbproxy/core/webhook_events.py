"""Intuit webhook payloads, pure: sign and verify `intuit-signature`, parse legacy
`eventNotifications` and CloudEvents bodies into events, and plan which tables each
realm's events purge (the same `deps` map writes use). No I/O; `webhooks.py` is the shell.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from qbproxy.core import deps
from qbproxy.core.catalog import Entity
from qbproxy.core.routing import is_realm

Format = Literal["legacy", "cloudevents"]


class MalformedPayload(ValueError):
    """The body is signed but is not a webhook payload this module can read."""


@dataclass(frozen=True, slots=True)
class Event:
    realm: str
    entity: str  # as Intuit names it: "Customer" (legacy) or "customer" (CloudEvents type)
    entity_id: str
    operation: str  # Intuit's vocabulary: Create, Update, Delete, Merge, Void (or newer)


@dataclass(frozen=True, slots=True)
class WebhookPurges:
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
    if not is_realm(realm):
        raise MalformedPayload(f"{where} must be a realm id (digits)")
    return realm


# Intuit's operation -> the deps operation. Merge rewrites the surviving entity (and every
# ref to the merged one), so it purges as an update; anything unknown does too.
_OPERATIONS = {"create": deps.CREATE, "update": deps.UPDATE, "merge": deps.UPDATE}
_OPERATIONS |= {"delete": "delete", "void": "void"}

# Entities whose changes reach nothing the proxy caches: Budget (planning only; no cached
# entity refers to it and no cached report reads it). Their events are counted and
# dropped. Every other entity follows deps, which purges everything for entities it does
# not list, on purpose (qbproxy/core/deps.py).
DROPPED_ENTITIES = frozenset({"budget"})


def affects_cache(entity: str) -> bool:
    return entity.lower() not in DROPPED_ENTITIES


def purges_for(events: Iterable[Event]) -> WebhookPurges:
    """Realm -> union of the tables the events can change; the dropped events beside."""
    purges: dict[str, frozenset[Entity]] = {}
    dropped = []
    for event in events:
        if not affects_cache(event.entity):
            dropped.append(event)
            continue
        operation = _OPERATIONS.get(event.operation.lower(), deps.UPDATE)
        # A webhook does not show the entity: a create may have carried an opening balance.
        tables = deps.tables_changed(event.entity.lower(), operation, None)
        purges[event.realm] = purges.get(event.realm, frozenset()) | tables
    return WebhookPurges(purges, tuple(dropped))

"""Webhook payloads Intuit sends after writes, legacy and CloudEvents, and their signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any

import orjson


def sign(body: bytes, verifier_token: str) -> str:
    """`intuit-signature`: base64 of HMAC-SHA256 over the raw body (qbo-api.md "Webhooks")."""
    digest = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def legacy_body(realm: str, entities: list[dict[str, str]]) -> bytes:
    """entities: [{"name": "Customer", "id": "1", "operation": "Update", "lastUpdated": ..}]."""
    return orjson.dumps(
        {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": entities}}]}
    )


def cloudevents_body(realm: str, entities: list[dict[str, str]]) -> bytes:
    """The CloudEvents array Intuit is moving to: type qbo.<entity>.<verb>.v1."""
    verbs = {
        "Create": "created",
        "Update": "updated",
        "Delete": "deleted",
        "Void": "voided",
        "Merge": "merged",
    }
    events: list[dict[str, Any]] = [
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "intuit.qbo",
            "type": f"qbo.{e['name'].lower()}.{verbs.get(e['operation'], 'updated')}.v1",
            "datacontenttype": "application/json",
            "time": e["lastUpdated"],
            "intuitentityid": e["id"],
            "intuitaccountid": realm,
            "data": {},
        }
        for e in entities
    ]
    return orjson.dumps(events)

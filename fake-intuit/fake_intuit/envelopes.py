"""Intuit's response shapes: headers, JSON envelopes, the three fault bodies (qbo-api.md)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

JSON_TYPE = "application/json;charset=utf-8"
# Intuit marks everything uncacheable (qbo-api.md "Response headers that matter").
CACHE_CONTROL = "max-age=0, no-cache, no-store, must-revalidate, private"
WWW_AUTHENTICATE = 'Bearer realm="Intuit", error="invalid_token"'


@dataclass
class Reply:
    """An answer before it is sent; `stream` is a large body written in chunks."""

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    stream: AsyncIterator[bytes] | None = None


def intuit_tid() -> str:
    """A fresh per-request transaction id, shaped like Intuit's."""
    return f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"


def headers(content_type: str = JSON_TYPE) -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "intuit_tid": intuit_tid(),
        "Cache-Control": CACHE_CONTROL,
    }


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def fault(
    code: str,
    message: str,
    detail: str,
    time: str,
    *,
    element: str = "",
    type_: str = "ValidationFault",
) -> dict[str, Any]:
    """The 400 body: `Fault.Error` is a list and `code` a string (qbo-api.md "Errors")."""
    return {
        "Fault": {
            "Error": [{"Message": message, "Detail": detail, "code": code, "element": element}],
            "type": type_,
        },
        "time": time,
    }


def item_fault(code: str, message: str, detail: str, element: str = "") -> dict[str, Any]:
    """A batch item's Fault (no "time": the batch envelope carries it)."""
    return {
        "Error": [{"Message": message, "Detail": detail, "code": code, "element": element}],
        "type": "ValidationFault",
    }


def auth_fault(status: int, epoch_ms: int) -> dict[str, Any]:
    """401/403 come from Intuit's gateway in a different, lower-case shape with `time` in
    epoch milliseconds (qbo-api.md "Errors"; recorded 403 bodies have type SERVICE)."""
    if status == 401:
        error = {
            "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            "detail": "Token expired: the access token is invalid or has expired",
            "code": "3200",
            "element": None,
        }
        kind = "AUTHENTICATION"
    else:
        error = {
            "message": "message=AuthorizationFailed; errorCode=003100; statusCode=403",
            "detail": None,
            "code": "3100",
            "element": None,
        }
        kind = "SERVICE"
    return {
        "warnings": None,
        "intuitObject": None,
        "fault": {"error": [error], "type": kind},
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": epoch_ms,
        "status": None,
        "cdcresponse": [],
    }


def throttle_xml(time: str) -> bytes:
    """429 is XML even to JSON clients, and has no Retry-After (qbo-api.md "Errors")."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{time}">'
        '<Fault type="SERVICE"><Error code="3001">'
        "<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
        "<Detail>The request limit was reached.</Detail></Error></Fault></IntuitResponse>"
    ).encode()


def server_fault(status: int, time: str) -> dict[str, Any]:
    """An injected 5xx: code 10000 "An application error has occurred" (qbo-api.md)."""
    return fault(
        "10000",
        "An application error has occurred while processing your request",
        f"System Failure Error: injected HTTP {status}",
        time,
        type_="SystemFault",
    )

"""QBO-shaped response bodies and headers built by the proxy itself (pure).

Shapes follow qbo-api.md ("Envelopes", "Errors", "Response headers that matter"). Cached
entity documents are spliced in as stored bytes: a hit does no per-row JSON work.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import orjson

JSON_CONTENT_TYPE = "application/json;charset=utf-8"
# Intuit marks every answer uncacheable; a cached answer keeps that (qbo-api.md).
CACHE_CONTROL = "max-age=0, no-cache, no-store, must-revalidate, private"


def qbo_time(now: dt.datetime) -> str:
    """Intuit's `time`: ISO-8601 with milliseconds and an offset."""
    return now.isoformat(timespec="milliseconds")


def new_tid() -> str:
    """A fresh transaction id for answers the proxy makes (documented in the README)."""
    return f"qbproxy-{uuid.uuid4()}"


def query_response(entity: str, docs: Sequence[str], start_position: int) -> bytes:
    """The `QueryResponse` object of a page: maxResults is the number returned, not asked
    for; an empty page is `{}` (qbo-api.md, Envelopes)."""
    if not docs:
        return b"{}"
    return b"".join(
        (
            b'{"',
            entity.encode(),
            b'":[',
            ",".join(docs).encode(),
            b'],"startPosition":%d,"maxResults":%d}' % (start_position, len(docs)),
        )
    )


def count_response(total: int) -> bytes:
    return b'{"totalCount":%d}' % total


def query_body(response: bytes, now: dt.datetime) -> bytes:
    return b'{"QueryResponse":%s,"time":"%s"}' % (response, qbo_time(now).encode())


def query_page(entity: str, docs: Sequence[str], start_position: int, now: dt.datetime) -> bytes:
    return query_body(query_response(entity, docs, start_position), now)


def count_body(total: int, now: dt.datetime) -> bytes:
    return query_body(count_response(total), now)


def batch_body(items: Sequence[tuple[str, bytes]], now: dt.datetime) -> bytes:
    """`{"BatchItemResponse":[{"QueryResponse":..,"bId":..}],"time":..}` for query items."""
    parts = b",".join(
        b'{"QueryResponse":%s,"bId":%s}' % (response, orjson.dumps(bid)) for bid, response in items
    )
    return b'{"BatchItemResponse":[%s],"time":"%s"}' % (parts, qbo_time(now).encode())


def entity_body(entity: str, doc: str | bytes, now: dt.datetime) -> bytes:
    raw = doc.encode() if isinstance(doc, str) else doc
    return b'{"%s":%s,"time":"%s"}' % (entity.encode(), raw, qbo_time(now).encode())


def fault_body(
    code: str,
    message: str,
    detail: str,
    now: dt.datetime,
    fault_type: str = "ValidationFault",
) -> bytes:
    """Intuit's JSON Fault: `Error` a list, `code` a string (python-quickbooks reads both)."""
    return orjson.dumps(
        {
            "Fault": {
                "Error": [{"Message": message, "Detail": detail, "code": code, "element": ""}],
                "type": fault_type,
            },
            "time": qbo_time(now),
        }
    )


def throttle_body() -> bytes:
    """Intuit answers 429 with an XML Fault even to JSON clients (qbo-api.md, Errors)."""
    return (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3">'
        b'<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; '
        b"errorCode=003001; statusCode=429</Message><Detail>The request limit was reached "
        b"(qbproxy)</Detail></Error></Fault></IntuitResponse>"
    )

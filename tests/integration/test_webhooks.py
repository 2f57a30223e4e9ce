"""Intuit webhooks end to end: the fake Intuit posts signed payloads to the proxy over real
HTTP after out-of-band edits; a good one makes the change visible at once, a bad one
changes nothing. Purges run after the 200, so tests wait with `webhooks.drain(app)`."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from qbproxy.core.catalog import Entity
from qbproxy.core.webhook_events import sign
from qbproxy.web import webhooks
from qbproxy.web.webhooks import MAX_BODY_BYTES
from tests.integration.conftest import REALM, Intuit, ProxyFactory, Running

TOKEN = "verifier-7d1c"
PATH = "/webhooks/intuit"


@pytest.fixture
async def hooked(intuit: Intuit, proxy_for: ProxyFactory) -> Running:
    """A proxy with webhooks on, and the fake Intuit posting to it with the same token."""
    running = await proxy_for(intuit.url, webhooks_verifier_token=TOKEN)
    intuit.sandbox.webhook_url = running.url(PATH)
    intuit.sandbox.verifier_token = TOKEN
    return running


async def query(proxy: Running, intuit: Intuit, text: str) -> tuple[str, list[dict[str, Any]]]:
    status, headers, body = await proxy.get(
        f"/v3/company/{REALM}/query?query={quote(text)}", headers=intuit.auth()
    )
    assert status == 200, body
    response = orjson.loads(body)["QueryResponse"]
    entity = text.split()[3]
    return headers["X-Cache"], response.get(entity, [])


async def warm(proxy: Running, intuit: Intuit, text: str) -> None:
    assert (await query(proxy, intuit, text))[0] == "MISS"
    assert (await query(proxy, intuit, text))[0] == "HIT"


async def delivered(intuit: Intuit, proxy: Running) -> list[int | str]:
    """Statuses of every delivery so far, once they and the purges they queued are done."""
    await intuit.sandbox.drain_webhooks()
    await webhooks.drain(proxy.server.app)
    return [status for status, _ in intuit.sandbox.webhook_deliveries]


async def post(
    proxy: Running, body: bytes, token: str | None = TOKEN, path: str = PATH, data: Any = None
) -> tuple[int, bytes]:
    """POST `body` signed with `token` (None: no header); `data` replaces what is sent."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["intuit-signature"] = sign(body, token)
    sent = body if data is None else data
    status, _, answer = await proxy.post(path, data=sent, headers=headers)
    return status, answer


def metric(proxy: Running, name: str, **labels: str) -> float:
    return proxy.registry.get_sample_value(name, labels) or 0.0


def legacy(entity: str, id_: str, operation: str = "Update") -> bytes:
    change = {"entities": [{"name": entity, "id": id_, "operation": operation}]}
    return orjson.dumps({"eventNotifications": [{"realmId": REALM, "dataChangeEvent": change}]})


def active_customer(intuit: Intuit) -> dict[str, Any]:
    return next(c for c in intuit.sandbox.entities(REALM, "Customer") if c.get("Active"))


async def test_signed_webhook_makes_an_out_of_band_change_visible_at_once(
    intuit: Intuit, hooked: Running
) -> None:
    text = "SELECT * FROM Customer"
    await warm(hooked, intuit, text)
    customer = active_customer(intuit)
    intuit.sandbox.mutate_out_of_band(REALM, "Customer", customer["Id"], {"DisplayName": "Zed"})
    assert await delivered(intuit, hooked) == [200]
    cache, customers = await query(hooked, intuit, text)
    assert cache == "MISS"
    assert {"Id": customer["Id"], "DisplayName": "Zed"}.items() <= next(
        c for c in customers if c["Id"] == customer["Id"]
    ).items()
    assert (await query(hooked, intuit, text))[0] == "HIT"
    for entity in ("Customer", "Invoice", "Payment"):  # a customer update can rename refs
        assert metric(hooked, "qbproxy_purges_total", entity=entity, reason="webhook") == 1
    assert metric(hooked, "qbproxy_webhooks_received_total", format="legacy") == 1


async def test_wrongly_signed_webhook_changes_nothing(intuit: Intuit, hooked: Running) -> None:
    text = "SELECT * FROM Customer"
    await warm(hooked, intuit, text)
    customer = active_customer(intuit)
    intuit.sandbox.verifier_token = "someone-else"
    intuit.sandbox.mutate_out_of_band(REALM, "Customer", customer["Id"], {"DisplayName": "Zed"})
    assert await delivered(intuit, hooked) == [401]
    cache, customers = await query(hooked, intuit, text)
    assert cache == "HIT"
    assert next(c for c in customers if c["Id"] == customer["Id"]) == customer
    assert metric(hooked, "qbproxy_webhooks_rejected_total", reason="signature") == 1
    assert metric(hooked, "qbproxy_purges_total", entity="Customer", reason="webhook") == 0


async def test_missing_signature_is_refused(intuit: Intuit, hooked: Running) -> None:
    await warm(hooked, intuit, "SELECT * FROM Customer")
    status, _ = await post(hooked, legacy("Customer", "1"), token=None)
    assert status == 401
    await webhooks.drain(hooked.server.app)
    assert (await query(hooked, intuit, "SELECT * FROM Customer"))[0] == "HIT"


async def test_cloudevents_payload_works(intuit: Intuit, hooked: Running) -> None:
    text = "SELECT * FROM Invoice"
    await warm(hooked, intuit, text)
    await warm(hooked, intuit, "SELECT * FROM Customer")
    invoice = intuit.sandbox.entities(REALM, "Invoice")[3]
    intuit.sandbox.webhook_format = "cloudevents"
    intuit.sandbox.mutate_out_of_band(REALM, "Invoice", invoice["Id"], {"PrivateNote": "moved"})
    assert await delivered(intuit, hooked) == [200]
    body = intuit.sandbox.webhook_deliveries[0][1]
    assert orjson.loads(body)[0]["type"] == "qbo.invoice.updated.v1"
    cache, invoices = await query(hooked, intuit, text)
    assert cache == "MISS"
    assert next(i for i in invoices if i["Id"] == invoice["Id"])["PrivateNote"] == "moved"
    # An invoice update moves its customer's balance: that table was purged too (and the
    # Invoice query's CDC call has refreshed it already).
    assert metric(hooked, "qbproxy_purges_total", entity="Customer", reason="webhook") == 1
    assert metric(hooked, "qbproxy_webhooks_received_total", format="cloudevents") == 1


async def test_sandbox_send_cloudevents_create_purges_only_customer(
    intuit: Intuit, hooked: Running
) -> None:
    await warm(hooked, intuit, "SELECT * FROM Customer")
    await warm(hooked, intuit, "SELECT * FROM Invoice")
    intuit.sandbox.send_cloudevents(REALM, "Customer", "9999", "Create")
    assert await delivered(intuit, hooked) == [200]
    assert (await query(hooked, intuit, "SELECT * FROM Customer"))[0] == "MISS"
    assert (await query(hooked, intuit, "SELECT * FROM Invoice"))[0] == "HIT"


async def test_deleted_invoice_disappears(intuit: Intuit, hooked: Running) -> None:
    text = "SELECT * FROM Invoice"
    await warm(hooked, intuit, text)
    invoice = intuit.sandbox.entities(REALM, "Invoice")[0]
    body = {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}
    intuit.sandbox.write(REALM, "invoice", "delete", body)  # out of band: not via the proxy
    assert await delivered(intuit, hooked) == [200]
    cache, invoices = await query(hooked, intuit, text)
    assert cache == "MISS"
    assert invoice["Id"] not in {i["Id"] for i in invoices}


async def test_replayed_webhook_is_harmless(intuit: Intuit, hooked: Running) -> None:
    text = "SELECT * FROM Customer"
    await warm(hooked, intuit, text)
    body = legacy("Customer", "1")
    assert [(await post(hooked, body))[0] for _ in range(3)] == [200, 200, 200]
    await webhooks.drain(hooked.server.app)
    assert (await query(hooked, intuit, text))[0] == "MISS"
    assert (await query(hooked, intuit, text))[0] == "HIT"


async def test_events_for_uncached_entities_are_counted_and_dropped(
    intuit: Intuit, hooked: Running
) -> None:
    text = "SELECT * FROM Customer"
    await warm(hooked, intuit, text)
    assert (await post(hooked, legacy("Budget", "12")))[0] == 200
    await webhooks.drain(hooked.server.app)
    assert (await query(hooked, intuit, text))[0] == "HIT"
    labels = {"entity": "budget", "outcome": "dropped"}
    assert metric(hooked, "qbproxy_webhook_events_total", **labels) == 1


async def test_answers_before_the_purge_runs(
    intuit: Intuit, hooked: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = hooked.proxy.tables
    purge = store.purge
    gate = asyncio.Event()
    purged: list[str] = []

    async def slow_purge(realm: str, entities: list[Entity]) -> None:
        await gate.wait()
        await purge(realm, entities)
        purged.append(realm)

    monkeypatch.setattr(store, "purge", slow_purge)
    status, _ = await post(hooked, legacy("Customer", "1"))
    assert status == 200
    assert purged == []
    gate.set()
    await webhooks.drain(hooked.server.app)
    assert purged == [REALM]


async def test_purge_with_postgres_gone_is_counted_not_raised(
    intuit: Intuit, hooked: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qbproxy.errors import StoreUnavailable

    async def failing_purge(realm: str, entities: list[Entity]) -> None:
        raise StoreUnavailable("postgres: gone")

    monkeypatch.setattr(hooked.proxy.tables, "purge", failing_purge)
    assert (await post(hooked, legacy("Customer", "1")))[0] == 200
    await webhooks.drain(hooked.server.app)
    assert metric(hooked, "qbproxy_store_errors_total") == 1


Send = Callable[[Running], Awaitable[tuple[int, bytes]]]


def _oversized(proxy: Running) -> Awaitable[tuple[int, bytes]]:
    body = b"[" + b" " * MAX_BODY_BYTES + b"]"
    return post(proxy, body, data=io.BytesIO(body))  # with Content-Length


async def _oversized_chunked(proxy: Running) -> tuple[int, bytes]:
    body = b"[" + b" " * MAX_BODY_BYTES + b"]"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    return await post(proxy, body, data=chunks())  # no Content-Length: counted while read


def _malformed(proxy: Running) -> Awaitable[tuple[int, bytes]]:
    return post(proxy, b'{"eventNotifications": [{"realmId": "not-a-realm"}]}')


def _not_json(proxy: Running) -> Awaitable[tuple[int, bytes]]:
    return post(proxy, b"<xml/>")


async def _get(proxy: Running) -> tuple[int, bytes]:
    status, _, body = await proxy.get(PATH)
    return status, body


@pytest.mark.parametrize(
    ("send", "status", "reason"),
    [
        (_oversized, 413, "too_large"),
        (_oversized_chunked, 413, "too_large"),
        (_malformed, 400, "malformed"),
        (_not_json, 400, "malformed"),
        (_get, 405, "method"),
    ],
)
async def test_bad_deliveries_change_nothing(
    intuit: Intuit, hooked: Running, send: Send, status: int, reason: str
) -> None:
    text = "SELECT * FROM Customer"
    await warm(hooked, intuit, text)
    calls = intuit.sandbox.count()
    assert (await send(hooked))[0] == status
    await webhooks.drain(hooked.server.app)
    assert (await query(hooked, intuit, text))[0] == "HIT"
    assert intuit.sandbox.count() == calls  # nothing forwarded to Intuit either
    assert metric(hooked, "qbproxy_webhooks_rejected_total", reason=reason) == 1


async def test_signature_is_checked_before_the_body_is_parsed(hooked: Running) -> None:
    # Wrongly signed garbage is a 401, not a 400: nothing unauthenticated is parsed.
    assert (await post(hooked, b"<xml/>", token="someone-else"))[0] == 401


async def test_without_a_verifier_token_the_path_answers_404(
    intuit: Intuit, proxy: Running
) -> None:
    body = legacy("Customer", "1")
    assert (await post(proxy, body))[0] == 404
    assert (await post(proxy, body, token=""))[0] == 404
    assert intuit.sandbox.count() == 0  # not forwarded to Intuit as an unknown path
    assert metric(proxy, "qbproxy_webhooks_rejected_total", reason="disabled") == 2


async def test_path_is_configurable(intuit: Intuit, proxy_for: ProxyFactory) -> None:
    running = await proxy_for(intuit.url, webhooks_verifier_token=TOKEN, webhooks_path="/hooks/qbo")
    await warm(running, intuit, "SELECT * FROM Customer")
    assert (await post(running, legacy("Customer", "1"), path="/hooks/qbo"))[0] == 200
    await webhooks.drain(running.server.app)
    assert (await query(running, intuit, "SELECT * FROM Customer"))[0] == "MISS"

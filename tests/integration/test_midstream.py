"""Intuit cutting the connection mid-body (headers sent, half the body, then the link goes).

A pass-through stream has already sent its status and headers to the client, so the only
honest signal left is to cut the client's connection too: a short body, never a made-up
ending. A body the proxy buffers (a table load, a read by id) is never half-used: it
answers stale within max_stale_seconds, else a QBO-shaped 502 Fault, never a 500.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from fake_intuit.faults import Call, CallKind

from tests.integration.conftest import REALM, Intuit, ProxyFactory, Running
from tests.integration.test_resilience import age_tables

BASE = f"/v3/company/{REALM}"
TEXT = "SELECT * FROM Customer MAXRESULTS 1000"


async def query(proxy: Running, intuit: Intuit, text: str = TEXT) -> tuple[int, str, Any]:
    status, headers, body = await proxy.get(
        f"{BASE}/query?query={quote(text)}", headers=intuit.auth()
    )
    return status, headers["X-Cache"], orjson.loads(body)


def assert_bad_gateway(status: int, headers: dict[str, str], body: bytes) -> None:
    assert (status, headers["X-Cache"]) == (502, "BYPASS")
    assert headers["Content-Type"].startswith("application/json")
    error = orjson.loads(body)["Fault"]["Error"][0]
    assert (error["Message"], error["code"]) == ("Bad Gateway", "10000")


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("reports/BigReport?rows=60000", "report"),  # chunked, streamed by the fake
        ("companyinfo/1", "read"),  # by its Id, not the realm: forwarded; sent whole
    ],
)
async def test_pass_through_cut_mid_body_cuts_the_client(
    intuit: Intuit, proxy: Running, path: str, kind: CallKind
) -> None:
    intuit.sandbox.kill_mid_stream_next(1, kind=kind, realm=REALM)
    async with proxy.session.get(proxy.url(f"{BASE}/{path}"), headers=intuit.auth()) as response:
        assert response.status == 200
        assert response.headers["X-Cache"] == "BYPASS"
        assert response.headers["Content-Type"].startswith("application/json")
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    # The proxy itself is unharmed: the same request, on a new connection, goes through whole.
    status, headers, body = await proxy.get(f"{BASE}/{path}", headers=intuit.auth())
    assert (status, headers["X-Cache"]) == (200, "BYPASS")
    assert orjson.loads(body)
    assert intuit.sandbox.count(kind=kind) == 2


def refreshes(call: Call) -> bool:
    """The calls that refresh an expired table: a whole load's pages, or a CDC call."""
    return call.kind in ("query", "cdc")


@pytest.mark.parametrize("cdc", ["false", "true"], ids=["whole-load", "cdc"])
async def test_table_refresh_cut_mid_body_serves_stale_rows(
    intuit: Intuit, proxy_for: ProxyFactory, pg_dsn: str, cdc: str
) -> None:
    proxy = await proxy_for(intuit.url, sync_cdc=cdc)
    fresh = await query(proxy, intuit)
    assert fresh[:2] == (200, "MISS")
    await age_tables(pg_dsn, 400)  # past the TTL (300 s), within max_stale (3600 s)
    proxy.proxy.memory.clear()  # ageing by SQL bypasses the purge channel
    intuit.sandbox.reset_calls()
    intuit.sandbox.kill_mid_stream_next(1, where=refreshes)
    status, cache, body = await query(proxy, intuit)
    assert (status, cache) == (200, "STALE")
    assert body["QueryResponse"] == fresh[2]["QueryResponse"]
    cut = intuit.sandbox.calls[0]
    assert cut.kind == ("cdc" if cdc == "true" else "query")
    # Nothing of the cut answer landed: the next refresh lands and the table is fresh again.
    status, cache, body = await query(proxy, intuit)
    assert (status, cache) == (200, "MISS")
    assert body["QueryResponse"] == fresh[2]["QueryResponse"]
    assert (await query(proxy, intuit))[:2] == (200, "HIT")


async def test_table_load_cut_mid_body_without_stale_rows_is_a_502_fault(
    intuit: Intuit, proxy: Running
) -> None:
    intuit.sandbox.kill_mid_stream_next(1, kind="query", entity="Customer")
    status, headers, body = await proxy.get(
        f"{BASE}/query?query={quote(TEXT)}", headers=intuit.auth()
    )
    assert_bad_gateway(status, headers, body)
    # The failed load left nothing behind: the next query loads the table and answers.
    status, cache, answer = await query(proxy, intuit)
    assert (status, cache) == (200, "MISS")
    assert len(answer["QueryResponse"]["Customer"]) == len(
        [c for c in intuit.sandbox.entities(REALM, "Customer") if c["Active"]]
    )


async def test_read_cut_mid_body_without_stale_row_is_a_502_fault(
    intuit: Intuit, proxy: Running
) -> None:
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    path = f"{BASE}/customer/{customer['Id']}"
    intuit.sandbox.kill_mid_stream_next(1, kind="read", entity="Customer")
    status, headers, body = await proxy.get(path, headers=intuit.auth())
    assert_bad_gateway(status, headers, body)
    status, headers, body = await proxy.get(path, headers=intuit.auth())
    assert (status, headers["X-Cache"]) == (200, "MISS")
    assert orjson.loads(body)["Customer"] == customer


async def test_read_cut_mid_body_serves_the_stale_row(
    intuit: Intuit, proxy: Running, pg_dsn: str
) -> None:
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    path = f"{BASE}/customer/{customer['Id']}"
    status, headers, _ = await proxy.get(path, headers=intuit.auth())
    assert (status, headers["X-Cache"]) == (200, "MISS")
    await age_tables(pg_dsn, 400)  # the row past the TTL, within max_stale
    proxy.proxy.memory.clear()
    intuit.sandbox.kill_mid_stream_next(1, kind="read", entity="Customer")
    status, headers, body = await proxy.get(path, headers=intuit.auth())
    assert (status, headers["X-Cache"]) == (200, "STALE")
    assert orjson.loads(body)["Customer"] == customer

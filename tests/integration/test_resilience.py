"""Degrade, never break (design.md, promise 6): Postgres down means forwarding; Intuit down
means stale answers within max_stale_seconds or a QBO-shaped Fault; errors are never cached."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from qbproxy.web.admin import build_admin_app
from tests.integration.conftest import REALM, Intuit, ProxyFactory, Running
from tests.integration.linkcut import LinkCut

BASE = f"/v3/company/{REALM}"
TEXT = "SELECT * FROM Customer MAXRESULTS 1000"


async def query(proxy: Running, intuit: Intuit, text: str = TEXT) -> tuple[int, str, Any]:
    status, headers, body = await proxy.get(
        f"{BASE}/query?query={quote(text)}", headers=intuit.auth()
    )
    return status, headers["X-Cache"], orjson.loads(body)


async def age_tables(dsn: str, seconds: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE qbo_table_state SET loaded_at = loaded_at - make_interval(secs => $1)",
            seconds,
        )
        await conn.execute(
            "UPDATE qbo_customer SET cached_at = cached_at - make_interval(secs => $1)", seconds
        )
    finally:
        await conn.close()


@pytest.fixture
async def link(pg_dsn: str) -> AsyncIterator[LinkCut]:
    cut = LinkCut(pg_dsn)
    yield cut
    await cut.close()


async def readyz(proxy: Running) -> int:
    server = TestServer(build_admin_app(proxy.proxy, CollectorRegistry()), host="127.0.0.1")
    await server.start_server()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(server.make_url("/readyz")) as response,
        ):
            return response.status
    finally:
        await server.close()


async def test_postgres_down_forwards_everything_and_recovers(
    intuit: Intuit, proxy_for: ProxyFactory, link: LinkCut
) -> None:
    dsn = await link.start()
    proxy = await proxy_for(intuit.url, database_dsn=dsn, database_statement_timeout_seconds="1")
    assert (await query(proxy, intuit))[1] == "MISS"
    assert (await query(proxy, intuit))[1] == "HIT"
    expected = (await query(proxy, intuit))[2]
    assert await readyz(proxy) == 200

    link.cut()
    # Memory answers until the proxy sees its Postgres link drop, which takes a loop turn.
    async with asyncio.timeout(5):
        while proxy.proxy.invalidation.healthy:  # noqa: ASYNC110 - a condition, not an event
            await asyncio.sleep(0.005)
    for _ in range(3):
        status, cache, body = await query(proxy, intuit)
        assert (status, cache) == (200, "BYPASS")
        body.pop("time")
        assert body == {k: v for k, v in expected.items() if k != "time"}
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    status, headers, _ = await proxy.get(f"{BASE}/customer/{customer['Id']}", headers=intuit.auth())
    assert (status, headers["X-Cache"]) == (200, "BYPASS")
    assert await readyz(proxy) == 503

    link.restore()
    assert (await query(proxy, intuit))[1] == "HIT"  # the pool reconnected by itself
    assert await readyz(proxy) == 200


@pytest.mark.parametrize("failure", ["500", "503", "429", "hang", "down"])
async def test_intuit_failing_serves_stale_within_bound(
    intuit: Intuit, proxy_for: ProxyFactory, pg_dsn: str, failure: str
) -> None:
    proxy = await proxy_for(intuit.url, upstream_timeout_seconds="0.5")
    fresh = await query(proxy, intuit)
    await age_tables(pg_dsn, 400)  # past the TTL (300 s), within max_stale (3600 s)
    proxy.proxy.memory.clear()  # ageing by SQL bypasses the purge channel
    if failure == "hang":
        gate = intuit.sandbox.hang()
    elif failure == "down":
        await intuit.server.close()
    elif failure == "429":
        intuit.sandbox.throttle_next(5)
    else:
        intuit.sandbox.fail_next(5, status=int(failure))
    status, cache, body = await query(proxy, intuit)
    assert (status, cache) == (200, "STALE")
    assert body["QueryResponse"] == fresh[2]["QueryResponse"]
    customer = fresh[2]["QueryResponse"]["Customer"][0]
    status, headers, raw = await proxy.get(
        f"{BASE}/customer/{customer['Id']}", headers=intuit.auth()
    )
    assert (status, headers["X-Cache"]) == (200, "STALE")
    assert orjson.loads(raw)["Customer"] == customer
    if failure == "hang":
        gate.release()


async def test_intuit_failing_past_max_stale_is_a_fault(
    intuit: Intuit, proxy_for: ProxyFactory, pg_dsn: str
) -> None:
    proxy = await proxy_for(intuit.url)
    await query(proxy, intuit)
    await age_tables(pg_dsn, 4000)  # past max_stale_seconds
    proxy.proxy.memory.clear()  # ageing by SQL bypasses the purge channel
    await intuit.server.close()
    status, cache, body = await query(proxy, intuit)
    assert status == 502
    assert cache == "BYPASS"
    assert body["Fault"]["Error"][0]["Message"] == "Bad Gateway"


async def test_no_stale_answer_after_a_write_purged_the_table(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    """Read-your-writes outranks availability: a purged table is not served stale."""
    proxy = await proxy_for(intuit.url)
    await query(proxy, intuit)
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    body = {"Id": customer["Id"], "SyncToken": customer["SyncToken"], "sparse": True, "Notes": "n"}
    status, _, _ = await proxy.post(
        f"{BASE}/customer",
        data=orjson.dumps(body),
        headers={**intuit.auth(), "Content-Type": "application/json"},
    )
    assert status == 200
    intuit.sandbox.fail_next(5, status=503)
    status, cache, _ = await query(proxy, intuit)
    assert (status, cache) == (503, "MISS")


async def test_errors_are_never_cached(intuit: Intuit, proxy: Running) -> None:
    intuit.sandbox.fail_next(1, status=500)
    status, cache, _ = await query(proxy, intuit)
    assert (status, cache) == (500, "MISS")
    status, cache, body = await query(proxy, intuit)
    assert (status, cache) == (200, "MISS")
    assert body["QueryResponse"]["Customer"]
    path = f"{BASE}/payment/{intuit.sandbox.entities(REALM, 'Payment')[0]['Id']}"
    intuit.sandbox.fail_next(1, status=503)
    status, headers, _ = await proxy.get(path, headers=intuit.auth())
    assert (status, headers["X-Cache"]) == (503, "MISS")
    status, headers, _ = await proxy.get(path, headers=intuit.auth())
    assert (status, headers["X-Cache"]) == (200, "MISS")

"""Incremental refresh through Intuit's CDC endpoint: an expired or purged table is brought
up to date by one CDC call for every table of the realm, not reloaded whole; answers equal
Intuit's; a CDC answer that raced a write never lands; the cap, an unreadable or refused
answer, and a sync older than Intuit's 30 days fall back as documented (qbproxy/core/cdc.py).
Upstream calls are counted by the fake Intuit itself."""

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
from fake_intuit import SANDBOX_KEY, SandboxConfig, create_app

from tests.integration.conftest import REALM, Intuit, ProxyFactory, Running, new_invoice

BASE = f"/v3/company/{REALM}"
JSON = {"Content-Type": "application/json"}
TABLES = ("Customer", "Invoice", "Payment")
# Every row of a table, inactive customers too: what the cache holds, compared with Intuit.
EVERYTHING = {
    "Customer": "SELECT * FROM Customer WHERE Active IN (true, false) MAXRESULTS 1000",
    "Invoice": "SELECT * FROM Invoice MAXRESULTS 1000",
    "Payment": "SELECT * FROM Payment MAXRESULTS 1000",
}


def without_time(body: bytes) -> Any:
    parsed = orjson.loads(body)
    parsed.pop("time", None)
    return parsed


async def via(proxy: Running, intuit: Intuit, text: str) -> tuple[str, Any]:
    status, headers, body = await proxy.get(
        f"{BASE}/query?query={quote(text)}", headers=intuit.auth()
    )
    assert status == 200, body
    return headers["X-Cache"], without_time(body)


async def direct(intuit: Intuit, text: str) -> Any:
    """Intuit's own answer (counted by the fake: ask only after counting the proxy's calls)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{intuit.url}{BASE}/query", params={"query": text}, headers=intuit.auth()
        ) as response,
    ):
        assert response.status == 200
        return without_time(await response.read())


async def warm(proxy: Running, intuit: Intuit) -> None:
    for entity in TABLES:
        assert (await via(proxy, intuit, EVERYTHING[entity]))[0] == "MISS"
        assert (await via(proxy, intuit, EVERYTHING[entity]))[0] == "HIT"


async def age(
    proxy: Running, dsn: str, sql_set: str = "loaded_at = loaded_at - interval '301 s'"
) -> None:
    """Age the tables past the TTL (or set other state) instead of sleeping through it."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"UPDATE qbo_table_state SET {sql_set}")
    finally:
        await conn.close()
    # State changed by SQL bypasses the purge channel: forget what memory learned too.
    proxy.proxy.memory.clear()


async def assert_current(proxy: Running, intuit: Intuit) -> None:
    for entity in TABLES:
        text = EVERYTHING[entity]
        assert (await via(proxy, intuit, text))[1] == await direct(intuit, text), entity


def upstream_calls(intuit: Intuit) -> dict[str, int]:
    return {kind: intuit.sandbox.count(kind=kind) for kind in ("cdc", "query", "read")}


def metric(proxy: Running, name: str, **labels: str) -> float:
    return proxy.registry.get_sample_value(name, labels) or 0.0


async def write(proxy: Running, intuit: Intuit, path: str, body: dict[str, Any]) -> Any:
    status, _, raw = await proxy.post(
        f"{BASE}/{path}", data=orjson.dumps(body), headers={**intuit.auth(), **JSON}
    )
    assert status == 200, raw
    return orjson.loads(raw)


async def pay_part_of_an_invoice(proxy: Running, intuit: Intuit) -> tuple[dict[str, Any], float]:
    """A payment through the proxy, which purges all three tables: (the invoice, as it was
    before, and the amount paid on it)."""
    invoice = next(i for i in intuit.sandbox.entities(REALM, "Invoice") if i["Balance"] > 0)
    amount = min(10.0, invoice["Balance"])
    payment = {
        "CustomerRef": invoice["CustomerRef"],
        "TotalAmt": amount,
        "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
    }
    await write(proxy, intuit, "payment", payment)
    return invoice, amount


def active_customer(intuit: Intuit, n: int = 0) -> dict[str, Any]:
    return [c for c in intuit.sandbox.entities(REALM, "Customer") if c.get("Active")][n]


# --- out-of-band changes after the TTL -----------------------------------------------------


async def test_out_of_band_changes_after_the_ttl_cost_one_cdc_call_for_three_tables(
    intuit: Intuit, proxy: Running, pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="qbproxy")
    await warm(proxy, intuit)
    renamed, retired = active_customer(intuit, 0), active_customer(intuit, 1)
    invoice = intuit.sandbox.entities(REALM, "Invoice")[4]
    payment = intuit.sandbox.entities(REALM, "Payment")[2]
    sandbox = intuit.sandbox
    sandbox.mutate_out_of_band(REALM, "Customer", renamed["Id"], {"DisplayName": "Zed Out"})
    sandbox.mutate_out_of_band(REALM, "Customer", retired["Id"], {"Active": False})
    sandbox.mutate_out_of_band(REALM, "Invoice", invoice["Id"], {"PrivateNote": "edited in QBO"})
    sandbox.mutate_out_of_band(REALM, "Payment", payment["Id"], {"PaymentRefNum": "UI-1"})
    await age(proxy, pg_dsn)
    sandbox.reset_calls()

    results = await asyncio.gather(*(via(proxy, intuit, EVERYTHING[e]) for e in TABLES))
    assert upstream_calls(intuit) == {"cdc": 1, "query": 0, "read": 0}
    assert [cache for cache, _ in results] == ["MISS"] * 3
    for entity, (_, answer) in zip(TABLES, results, strict=True):
        assert answer == await direct(intuit, EVERYTHING[entity]), entity
    # An inactive customer is kept (Active = false) and hidden from SELECT * FROM Customer.
    cache, page = await via(proxy, intuit, "SELECT * FROM Customer MAXRESULTS 1000")
    assert cache == "HIT"
    assert retired["Id"] not in {c["Id"] for c in page["QueryResponse"]["Customer"]}
    assert page == await direct(intuit, "SELECT * FROM Customer MAXRESULTS 1000")
    # Reads by id are fresh from the refreshed tables too.
    status, headers, body = await proxy.get(
        f"{BASE}/invoice/{invoice['Id']}", headers=intuit.auth()
    )
    assert (status, headers["X-Cache"]) == (200, "HIT")
    assert without_time(body) == {"Invoice": sandbox.get(REALM, "Invoice", invoice["Id"])}
    assert sandbox.count(kind="read") == 0
    for entity in TABLES:
        assert (
            metric(proxy, "qbproxy_fills_total", entity=entity, kind="cdc", outcome="landed") == 1
        )
    assert any(
        f"[CACHE] refreshed 4 changes for realm {REALM} via CDC" in r.getMessage()
        for r in caplog.records
    )


async def test_one_query_refreshes_the_other_tables_too(
    intuit: Intuit, proxy: Running, pg_dsn: str
) -> None:
    await warm(proxy, intuit)
    await age(proxy, pg_dsn)
    intuit.sandbox.reset_calls()
    assert (await via(proxy, intuit, "SELECT * FROM Payment"))[0] == "MISS"
    for entity in ("Customer", "Invoice"):
        assert (await via(proxy, intuit, f"SELECT * FROM {entity}"))[0] == "HIT"
    assert upstream_calls(intuit) == {"cdc": 1, "query": 0, "read": 0}


async def test_deleted_invoice_disappears(intuit: Intuit, proxy: Running, pg_dsn: str) -> None:
    await warm(proxy, intuit)
    invoice = intuit.sandbox.entities(REALM, "Invoice")[0]
    body = {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}
    intuit.sandbox.write(REALM, "Invoice", "delete", body)  # out of band: not via the proxy
    await age(proxy, pg_dsn)
    intuit.sandbox.reset_calls()
    cache, page = await via(proxy, intuit, EVERYTHING["Invoice"])
    assert cache == "MISS"
    assert invoice["Id"] not in {i["Id"] for i in page["QueryResponse"]["Invoice"]}
    assert upstream_calls(intuit) == {"cdc": 1, "query": 0, "read": 0}
    cache, page = await via(proxy, intuit, f"SELECT * FROM Invoice WHERE Id = '{invoice['Id']}'")
    assert (cache, page["QueryResponse"]) == ("HIT", {})
    await assert_current(proxy, intuit)  # its payments were unlinked, balances moved


# --- after writes through the proxy --------------------------------------------------------


async def test_after_a_write_the_next_queries_cost_one_cdc_call(
    intuit: Intuit, proxy: Running
) -> None:
    await warm(proxy, intuit)
    await pay_part_of_an_invoice(proxy, intuit)
    intuit.sandbox.reset_calls()
    caches = [(await via(proxy, intuit, EVERYTHING[e]))[0] for e in TABLES]
    assert caches == ["MISS", "HIT", "HIT"]
    assert upstream_calls(intuit) == {"cdc": 1, "query": 0, "read": 0}
    await assert_current(proxy, intuit)


async def test_a_cdc_answer_that_raced_a_write_never_lands(
    intuit: Intuit, proxy: Running, pg_dsn: str
) -> None:
    """Hold the CDC answer (computed before the write), create an invoice through the proxy
    (it moves its customer's Balance), release only after the write returned: neither the
    Customer nor the Invoice table may be served from that answer."""
    await warm(proxy, intuit)
    await age(proxy, pg_dsn)
    customer = active_customer(intuit, 2)
    gate = intuit.sandbox.pause(kind="cdc")
    refreshing = asyncio.create_task(via(proxy, intuit, EVERYTHING["Customer"]))
    await gate.wait_arrived()
    created = await write(proxy, intuit, "invoice", new_invoice(customer["Id"]))
    gate.release()
    cache, _ = await refreshing
    assert cache == "MISS"  # answered by Intuit for this caller, not from the held answer
    for entity in ("Customer", "Invoice"):
        discarded = metric(
            proxy, "qbproxy_fills_total", entity=entity, kind="cdc", outcome="discarded"
        )
        assert discarded == 1, entity
    cache, page = await via(proxy, intuit, f"SELECT * FROM Customer WHERE Id = '{customer['Id']}'")
    assert page["QueryResponse"]["Customer"] == [
        intuit.sandbox.get(REALM, "Customer", customer["Id"])
    ]
    assert page["QueryResponse"]["Customer"][0]["Balance"] == customer["Balance"] + 150
    _, page = await via(
        proxy, intuit, f"SELECT * FROM Invoice WHERE Id = '{created['Invoice']['Id']}'"
    )
    assert page["QueryResponse"]["Invoice"] == [created["Invoice"]]
    await assert_current(proxy, intuit)


@pytest.mark.parametrize("cdc", ["true", "false"])
async def test_memory_never_serves_an_answer_from_before_a_refresh(
    intuit: Intuit, proxy_for: ProxyFactory, cdc: str
) -> None:
    """Answers kept in memory are keyed by generation: a CDC that lands changes, or a whole
    reload of an expired table, moves the generation on, so an answer kept before it is not
    served once another query has told memory the table is complete again."""
    # Refresh-ahead off: the refresh is the request's (test_refresh_ahead.py covers memory
    # after a background refresh).
    proxy = await proxy_for(
        intuit.url, cache_ttl_seconds="2", sync_cdc=cdc, sync_refresh_ahead_seconds="0"
    )
    kept, other = EVERYTHING["Customer"], "SELECT * FROM Customer ORDERBY DisplayName"
    await via(proxy, intuit, kept)
    assert (await via(proxy, intuit, kept))[0] == "HIT"  # kept in memory
    customer = active_customer(intuit, 3)
    intuit.sandbox.mutate_out_of_band(REALM, "Customer", customer["Id"], {"DisplayName": "Later"})
    await asyncio.sleep(2.1)  # past the TTL; nothing about time is asserted
    intuit.sandbox.reset_calls()
    assert (await via(proxy, intuit, other))[0] == "MISS"  # the refresh
    assert (await via(proxy, intuit, other))[0] == "HIT"  # memory learns: complete again
    assert intuit.sandbox.count(kind="cdc") == (1 if cdc == "true" else 0)
    _, page = await via(proxy, intuit, kept)
    assert page == await direct(intuit, kept)


# --- reads by id ---------------------------------------------------------------------------


async def test_a_read_after_a_write_refreshes_the_realm_by_one_cdc_call(
    intuit: Intuit, proxy: Running
) -> None:
    await warm(proxy, intuit)
    invoice, amount = await pay_part_of_an_invoice(proxy, intuit)
    intuit.sandbox.reset_calls()

    status, headers, body = await proxy.get(
        f"{BASE}/invoice/{invoice['Id']}", headers=intuit.auth()
    )

    assert (status, headers["X-Cache"]) == (200, "MISS")
    read = without_time(body)["Invoice"]
    assert read == intuit.sandbox.get(REALM, "Invoice", invoice["Id"])
    assert read["Balance"] == invoice["Balance"] - amount  # the write is seen
    # The call the read would have cost refreshed the realm: the queries after it are hits.
    assert upstream_calls(intuit) == {"cdc": 1, "query": 0, "read": 0}
    for entity in TABLES:
        assert (await via(proxy, intuit, EVERYTHING[entity]))[0] == "HIT"
    assert upstream_calls(intuit) == {"cdc": 1, "query": 0, "read": 0}
    await assert_current(proxy, intuit)


async def test_a_read_from_a_table_never_loaded_asks_for_that_entity_alone(
    intuit: Intuit, proxy: Running
) -> None:
    await via(proxy, intuit, EVERYTHING["Customer"])  # the token is trusted from here on
    invoice = intuit.sandbox.entities(REALM, "Invoice")[0]
    intuit.sandbox.reset_calls()
    status, headers, body = await proxy.get(
        f"{BASE}/invoice/{invoice['Id']}", headers=intuit.auth()
    )
    assert (status, headers["X-Cache"]) == (200, "MISS")
    assert without_time(body) == {"Invoice": invoice}
    # A whole load could be many pages: a read waits for one entity only.
    assert upstream_calls(intuit) == {"cdc": 0, "query": 0, "read": 1}


# --- fallbacks --------------------------------------------------------------------------------


@pytest.fixture
async def big_intuit() -> AsyncIterator[Intuit]:
    """A fake Intuit whose invoices fill more than one page."""
    app = create_app(SandboxConfig(realms=(REALM,), seed=7, invoices_per_realm=1100))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Intuit(server, app[SANDBOX_KEY])
    finally:
        await server.close()


async def test_an_answer_at_the_cap_falls_back_to_a_whole_reload(
    big_intuit: Intuit, proxy_for: ProxyFactory, pg_dsn: str
) -> None:
    intuit = big_intuit
    proxy = await proxy_for(intuit.url)
    text = "SELECT * FROM Invoice STARTPOSITION 101 MAXRESULTS 1000"
    await via(proxy, intuit, text)
    assert intuit.sandbox.count(kind="query", entity="Invoice") == 2  # 1,100 invoices
    for invoice in intuit.sandbox.entities(REALM, "Invoice")[:1000]:
        intuit.sandbox.mutate_out_of_band(REALM, "Invoice", invoice["Id"], {"PrivateNote": "bulk"})
    await age(proxy, pg_dsn)
    intuit.sandbox.reset_calls()
    cache, page = await via(proxy, intuit, text)
    assert cache == "MISS"
    assert intuit.sandbox.count(kind="cdc") == 1
    assert intuit.sandbox.count(kind="query", entity="Invoice") == 2  # reloaded whole
    assert (
        metric(proxy, "qbproxy_fills_total", entity="Invoice", kind="cdc", outcome="fallback") == 1
    )
    assert page == await direct(intuit, text)
    assert {i["PrivateNote"] for i in page["QueryResponse"]["Invoice"][:900]} == {"bulk"}


@pytest.mark.parametrize(
    "ageing",
    [
        # A sync older than Intuit's 30-day CDC window.
        "synced_at = synced_at - interval '30 days', loaded_at = loaded_at - interval '301 s'",
        # A table not reloaded whole for a day (the daily backstop).
        "reloaded_at = reloaded_at - interval '25 hours', loaded_at = loaded_at - interval '301 s'",
    ],
    ids=["sync-older-than-30-days", "no-whole-reload-for-a-day"],
)
async def test_reloads_whole_instead_of_cdc(
    intuit: Intuit, proxy: Running, pg_dsn: str, ageing: str
) -> None:
    await warm(proxy, intuit)
    await age(proxy, pg_dsn, ageing)
    intuit.sandbox.reset_calls()
    assert (await via(proxy, intuit, EVERYTHING["Payment"]))[0] == "MISS"
    assert upstream_calls(intuit) == {"cdc": 0, "query": 1, "read": 0}


async def test_a_cdc_error_falls_back_to_a_whole_reload(
    intuit: Intuit, proxy: Running, pg_dsn: str
) -> None:
    await warm(proxy, intuit)
    await age(proxy, pg_dsn)
    intuit.sandbox.reset_calls()
    intuit.sandbox.fail_next(status=400, kind="cdc")
    cache, page = await via(proxy, intuit, EVERYTHING["Invoice"])
    assert cache == "MISS"
    assert upstream_calls(intuit) == {"cdc": 1, "query": 1, "read": 0}
    assert page == await direct(intuit, EVERYTHING["Invoice"])


async def test_a_throttled_cdc_serves_stale_rows_like_a_throttled_load(
    intuit: Intuit, proxy: Running, pg_dsn: str
) -> None:
    await warm(proxy, intuit)
    await age(proxy, pg_dsn)
    intuit.sandbox.reset_calls()
    intuit.sandbox.throttle_next(kind="cdc")
    cache, _ = await via(proxy, intuit, EVERYTHING["Invoice"])
    assert cache == "STALE"
    assert upstream_calls(intuit) == {"cdc": 1, "query": 0, "read": 0}


async def test_a_refused_token_is_relayed_and_nothing_refreshes(
    intuit: Intuit, proxy: Running, pg_dsn: str
) -> None:
    await warm(proxy, intuit)
    await age(proxy, pg_dsn)
    intuit.sandbox.reset_calls()
    status, headers, _ = await proxy.get(
        f"{BASE}/query?query={quote('SELECT * FROM Invoice')}",
        headers={"Authorization": "Bearer forged"},
    )
    # The forged caller is not trusted: Intuit answers it directly, nothing is refreshed.
    assert (status, headers["X-Cache"]) == (401, "MISS")
    assert intuit.sandbox.count(kind="cdc") == 1
    assert (await via(proxy, intuit, EVERYTHING["Invoice"]))[0] == "MISS"
    await assert_current(proxy, intuit)


async def test_with_cdc_off_expired_tables_reload_whole(
    intuit: Intuit, proxy_for: ProxyFactory, pg_dsn: str
) -> None:
    proxy = await proxy_for(intuit.url, sync_cdc="false")
    await warm(proxy, intuit)
    await age(proxy, pg_dsn)
    intuit.sandbox.reset_calls()
    for entity in TABLES:
        assert (await via(proxy, intuit, EVERYTHING[entity]))[0] == "MISS"
    assert upstream_calls(intuit) == {"cdc": 0, "query": 3, "read": 0}


# --- single flight ----------------------------------------------------------------------------


async def test_two_instances_make_one_cdc_call(
    intuit: Intuit, proxy_for: ProxyFactory, pg_dsn: str
) -> None:
    a = await proxy_for(intuit.url)
    b = await proxy_for(intuit.url)
    await warm(a, intuit)
    await age(a, pg_dsn)
    b.proxy.memory.clear()
    intuit.sandbox.reset_calls()
    intuit.sandbox.latency_ms = 200
    results = await asyncio.gather(*(via(p, intuit, EVERYTHING[e]) for p in (a, b) for e in TABLES))
    intuit.sandbox.latency_ms = 0
    assert upstream_calls(intuit) == {"cdc": 1, "query": 0, "read": 0}
    for (_, answer), entity in zip(results, TABLES * 2, strict=True):
        assert answer == await direct(intuit, EVERYTHING[entity])

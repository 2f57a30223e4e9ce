"""Read-through cache: reads and queries answered from Postgres while fresh, fetched once
when not; answers equal Intuit's. Upstream calls are counted by the fake Intuit itself."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import asyncpg
import orjson
import pytest

from tests.integration.conftest import OTHER_REALM, REALM, Intuit, ProxyFactory, Running

BASE = f"/v3/company/{REALM}"


def doc(body: bytes) -> Any:
    """A response document without `time`, which differs per answer by design."""
    parsed = orjson.loads(body)
    parsed.pop("time", None)
    return parsed


async def direct(intuit: Intuit, text: str, realm: str = REALM) -> Any:
    """Intuit's own answer to a query (not counted against the proxy)."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{intuit.url}/v3/company/{realm}/query",
            params={"query": text},
            headers=intuit.auth(realm),
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return doc(await response.read())


async def query(proxy: Running, intuit: Intuit, text: str, realm: str = REALM) -> tuple[str, Any]:
    status, headers, body = await proxy.get(
        f"/v3/company/{realm}/query?query={quote(text)}&minorversion=75",
        headers=intuit.auth(realm),
    )
    assert status == 200, body
    return headers["X-Cache"], doc(body)


async def test_second_identical_read_costs_no_upstream_call(intuit: Intuit, proxy: Running) -> None:
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    path = f"{BASE}/customer/{customer['Id']}?minorversion=75"
    status1, headers1, body1 = await proxy.get(path, headers=intuit.auth())
    status2, headers2, body2 = await proxy.get(path, headers=intuit.auth())
    assert (status1, status2) == (200, 200)
    assert (headers1["X-Cache"], headers2["X-Cache"]) == ("MISS", "HIT")
    assert doc(body1) == doc(body2) == {"Customer": customer}
    assert headers2["Content-Type"] == "application/json;charset=utf-8"
    assert headers2["intuit_tid"]
    assert intuit.sandbox.count(kind="read") == 1


async def test_ten_different_queries_over_a_complete_table_cost_no_upstream_call(
    intuit: Intuit, proxy: Running
) -> None:
    queries = [
        "select * from Customer",
        "SELECT * FROM Customer WHERE Active = false",
        "SELECT COUNT(*) FROM Customer",
        "select * from customer where DisplayName LIKE 'a%' startposition 1 maxresults 1000",
        "SELECT * FROM Customer ORDERBY DisplayName DESC MAXRESULTS 5",
        "SELECT * FROM Customer WHERE Balance > '0' ORDER BY Balance",
        "SELECT * FROM Customer STARTPOSITION 11 MAXRESULTS 10",
        "SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY Id DESC",
        "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '2000-01-01T00:00:00-07:00'",
        "SELECT count(*) FROM Customer WHERE Balance = '0' STARTPOSITION 1 MAXRESULTS 1000",
    ]
    first, _ = await query(proxy, intuit, "SELECT * FROM Customer WHERE Id = '1'")
    assert first == "MISS"
    loads = intuit.sandbox.count(kind="query")
    assert loads == 1  # 30 customers: one page
    for text in queries:
        cache, answer = await query(proxy, intuit, text)
        assert cache == "HIT", text
        assert answer == await direct(intuit, text), text
    # The direct calls above are the only other query calls Intuit saw.
    assert intuit.sandbox.count(kind="query") == loads + len(queries)


async def test_post_query_with_text_body_is_answered_from_cache(
    intuit: Intuit, proxy: Running
) -> None:
    text = "SELECT * FROM Invoice WHERE Balance > '0' ORDERBY TxnDate DESC MAXRESULTS 20"
    caches = []
    for _ in range(2):
        status, headers, body = await proxy.post(
            f"{BASE}/query?minorversion=75",
            data=text.encode(),
            headers={**intuit.auth(), "Content-Type": "application/text"},
        )
        assert status == 200
        caches.append(headers["X-Cache"])
        assert doc(body) == await direct(intuit, text)
    assert caches == ["MISS", "HIT"]


async def test_read_is_served_from_a_complete_table(intuit: Intuit, proxy: Running) -> None:
    await query(proxy, intuit, "SELECT * FROM Invoice")
    invoice = intuit.sandbox.entities(REALM, "Invoice")[5]
    status, headers, body = await proxy.get(
        f"{BASE}/invoice/{invoice['Id']}", headers=intuit.auth()
    )
    assert status == 200
    assert headers["X-Cache"] == "HIT"
    assert doc(body) == {"Invoice": invoice}
    assert intuit.sandbox.count(kind="read") == 0


async def test_inactive_customer_is_readable_by_id_from_cache(
    intuit: Intuit, proxy: Running
) -> None:
    await query(proxy, intuit, "SELECT * FROM Customer")
    inactive = [c for c in intuit.sandbox.entities(REALM, "Customer") if not c.get("Active")]
    assert inactive, "the fake seeds some inactive customers"
    status, headers, body = await proxy.get(
        f"{BASE}/customer/{inactive[0]['Id']}", headers=intuit.auth()
    )
    assert (status, headers["X-Cache"]) == (200, "HIT")
    assert doc(body) == {"Customer": inactive[0]}


async def test_table_older_than_ttl_is_reloaded(
    intuit: Intuit, proxy_for: ProxyFactory, pg_dsn: str
) -> None:
    # Whole reloads; with sync.cdc on (the default) one CDC call refreshes instead (test_cdc.py).
    proxy = await proxy_for(intuit.url, sync_cdc="false")
    text = "SELECT * FROM Payment"
    assert (await query(proxy, intuit, text))[0] == "MISS"
    assert (await query(proxy, intuit, text))[0] == "HIT"
    conn = await asyncpg.connect(pg_dsn)
    try:
        # Age the load past the TTL instead of sleeping through it.
        await conn.execute(
            "UPDATE qbo_table_state SET loaded_at = loaded_at - interval '301 seconds'"
        )
    finally:
        await conn.close()
    # Ageing rows by SQL bypasses the purge channel: forget what memory learned too.
    proxy.proxy.memory.clear()
    intuit.sandbox.reset_calls()
    assert (await query(proxy, intuit, text))[0] == "MISS"
    assert intuit.sandbox.count(kind="query", entity="Payment") == 1
    assert (await query(proxy, intuit, text))[0] == "HIT"


async def test_single_flight_fifty_concurrent_misses_make_one_load(
    intuit: Intuit, proxy: Running
) -> None:
    intuit.sandbox.latency_ms = 200
    texts = [f"SELECT * FROM Invoice STARTPOSITION {i + 1} MAXRESULTS 3" for i in range(50)]
    results = await asyncio.gather(*(query(proxy, intuit, t) for t in texts))
    assert intuit.sandbox.count(kind="query", entity="Invoice") == 1
    assert {cache for cache, _ in results} == {"MISS"}
    intuit.sandbox.latency_ms = 0
    for text, (_, answer) in zip(texts[:5], results, strict=False):
        assert answer == await direct(intuit, text)


async def test_projections_are_answered_from_the_cache_as_intuit_answers_them(
    intuit: Intuit, proxy: Running
) -> None:
    texts = [
        "SELECT Id, DisplayName FROM Customer",
        "select displayname, ID from customer where Balance > '0' orderby DisplayName desc",
        "SELECT Id, SyncToken FROM Invoice STARTPOSITION 3 MAXRESULTS 4",
        "SELECT TotalAmt, CustomerRef, Nope FROM Payment WHERE TotalAmt > '10'",
        "SELECT *, Sku FROM Customer MAXRESULTS 3",
        "SELECT Id FROM Invoice STARTPOSITION 100000",  # empty page
    ]
    first, _ = await query(proxy, intuit, "SELECT COUNT(*) FROM Customer")
    for entity in ("Invoice", "Payment"):
        await query(proxy, intuit, f"SELECT COUNT(*) FROM {entity}")
    assert first == "MISS"
    loads = intuit.sandbox.count(kind="query")
    for text in texts:
        for _ in range(2):  # from Postgres, then from memory
            cache, answer = await query(proxy, intuit, text)
            assert (cache, answer) == ("HIT", await direct(intuit, text)), text
    assert intuit.sandbox.count(kind="query") == loads + 2 * len(texts)  # only `direct`'s
    rows = (await query(proxy, intuit, texts[0]))[1]["QueryResponse"]["Customer"]
    assert rows
    assert all(set(row) == {"Id", "DisplayName", "domain", "sparse"} for row in rows)


async def test_a_projection_and_select_star_never_share_an_answer(
    intuit: Intuit, proxy: Running
) -> None:
    texts = ["SELECT Id FROM Customer", "SELECT * FROM Customer", "SELECT id, Id FROM Customer"]
    answers = [await query(proxy, intuit, t) for t in texts for _ in range(2)]
    ids, whole, again = answers[1][1], answers[3][1], answers[5][1]
    assert [cache for cache, _ in answers] == ["MISS", "HIT", "HIT", "HIT", "HIT", "HIT"]
    assert ids == again == await direct(intuit, texts[0])
    assert whole == await direct(intuit, texts[1])
    assert ids != whole


@pytest.mark.parametrize(
    "text",
    [
        "SELECT Id, MetaData.CreateTime FROM Customer",  # dotted projection: unsure at Intuit
        "SELECT * FROM Budget",  # not cached
        "SELECT * FROM Customer WHERE CompanyName != 'x'",  # unsupported operator
        "SELECT * FROM Customer WHERE Nope = '1'",  # unknown field: Intuit's 400
        "SELECT * FROM Customer MAXRESULTS 1001",  # over Intuit's cap: Intuit's 400
        "SELEKT * FROM Customer",  # malformed: Intuit's 400
    ],
)
async def test_unsupported_query_is_forwarded_with_intuits_answer(
    intuit: Intuit, proxy: Running, text: str
) -> None:
    import aiohttp

    status, headers, body = await proxy.get(
        f"{BASE}/query?query={quote(text)}", headers=intuit.auth()
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{intuit.url}{BASE}/query", params={"query": text}, headers=intuit.auth()
        ) as response,
    ):
        expected_status, expected = response.status, doc(await response.read())
    assert headers["X-Cache"] == "BYPASS"
    assert (status, doc(body)) == (expected_status, expected)


async def test_realms_are_cached_apart(intuit: Intuit, proxy: Running) -> None:
    for realm in (REALM, OTHER_REALM):
        assert (await query(proxy, intuit, "SELECT * FROM Customer", realm))[0] == "MISS"
    for realm in (REALM, OTHER_REALM):
        cache, answer = await query(proxy, intuit, "SELECT * FROM Customer", realm)
        assert cache == "HIT"
        assert answer == await direct(intuit, "SELECT * FROM Customer", realm)


async def test_bad_token_gets_intuits_401_and_no_cached_data(
    intuit: Intuit, proxy: Running
) -> None:
    await query(proxy, intuit, "SELECT * FROM Customer")  # warm with a good token
    status, headers, body = await proxy.get(
        f"{BASE}/query?query={quote('SELECT * FROM Customer')}",
        headers={"Authorization": "Bearer forged"},
    )
    assert status == 401
    assert headers["X-Cache"] == "MISS"
    assert b"Customer" not in body


async def test_load_log_line_and_cache_markers(
    intuit: Intuit, proxy: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="qbproxy")
    await query(proxy, intuit, "SELECT * FROM Customer")
    await query(proxy, intuit, "SELECT * FROM Customer")
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"[CACHE] cached 30 customers for realm {REALM}" in m for m in messages)
    access = [m for m in messages if "/query" in m]
    assert "[CACHE MISS]" in access[0]
    assert "[CACHE HIT]" in access[1]


async def test_postgres_time_is_measured_per_operation(intuit: Intuit, proxy: Running) -> None:
    await query(proxy, intuit, "SELECT * FROM Customer")
    await query(proxy, intuit, "SELECT COUNT(*) FROM Customer")

    def observed(operation: str) -> float | None:
        return proxy.registry.get_sample_value(
            "qbproxy_store_duration_seconds_count", {"operation": operation}
        )

    assert observed("select") == 1
    assert observed("count") == 1
    assert observed("fill") == 1  # 30 customers: one page
    assert (observed("state") or 0) >= 2


@pytest.mark.parametrize(
    ("entity", "rule"),
    [("Vendor", "hidden"), ("Account", "hidden"), ("TaxRate", "shown"), ("TaxCode", "shown")],
)
async def test_an_unsure_inactive_rule_is_learned_from_intuits_answer(
    intuit: Intuit, proxy: Running, entity: str, rule: str
) -> None:
    """The fake hides inactive rows of every name list but TaxCode and TaxRate (its
    documented choice); the proxy, not knowing, forwards once and answers by what Intuit
    did from then on."""
    rows = intuit.sandbox.entities(REALM, entity)
    assert any(not r["Active"] for r in rows)  # the two rules disagree here
    # The table is loaded (naming Active: answered from the cache at once).
    await query(proxy, intuit, f"SELECT * FROM {entity} WHERE Active = true")
    texts = [f"SELECT * FROM {entity}", f"select count(*) from {entity.lower()}"]
    caches = []
    for text in texts:
        expected = await direct(intuit, text)
        for _ in range(2):
            cache, answer = await query(proxy, intuit, text)
            assert answer == expected
            caches.append(cache)
    # Forwarded once, when the rule was not known; answered by it from then on.
    assert caches == ["MISS", "HIT", "HIT", "HIT"]
    assert proxy.proxy.inactive_rules == {entity: rule}

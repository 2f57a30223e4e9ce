"""The admin listener scraped over real HTTP after known traffic: exact counter values,
the scrape-time gauges (hit ratio, cache state) and no secret in any label."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from qbproxy import cli
from qbproxy.core.catalog import ENTITIES
from qbproxy.stats import report
from qbproxy.web.admin import build_admin_app
from tests.integration.conftest import OTHER_REALM, REALM, Intuit, Running

BASE = f"/v3/company/{REALM}"
LITERAL = "Zebra-Secret-42"


@dataclass
class Admin:
    server: TestServer
    session: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, str, bytes]:
        async with self.session.get(self.server.make_url(path)) as response:
            return response.status, response.headers["Content-Type"], await response.read()

    async def scrape(self) -> str:
        status, content_type, body = await self.get("/metrics")
        assert status == 200
        assert content_type.startswith("text/plain; version=0.0.4")
        return body.decode()


@pytest.fixture
async def admin(proxy: Running) -> AsyncIterator[Admin]:
    server = TestServer(build_admin_app(proxy.proxy, proxy.registry), host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    try:
        yield Admin(server, session)
    finally:
        await session.close()
        await server.close()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def total(text: str, name: str, **labels: str) -> float:
    """Sum of `name` over every series whose labels include `labels`."""
    return sum(
        v for (n, ls), v in samples(text).items() if n == name and set(labels.items()) <= set(ls)
    )


async def read(proxy: Running, intuit: Intuit, entity_id: str) -> str:
    status, headers, body = await proxy.get(
        f"{BASE}/customer/{entity_id}?minorversion=75", headers=intuit.auth()
    )
    assert status == 200, body
    return headers["X-Cache"]


async def query(proxy: Running, intuit: Intuit, text: str, realm: str = REALM) -> str:
    status, headers, body = await proxy.get(
        f"/v3/company/{realm}/query?query={quote(text)}&minorversion=75",
        headers=intuit.auth(realm),
    )
    assert status == 200, body
    return headers["X-Cache"]


async def test_three_misses_then_seven_hits_give_hit_ratio_point_seven(
    intuit: Intuit, proxy: Running, admin: Admin
) -> None:
    ids = [c["Id"] for c in intuit.sandbox.entities(REALM, "Customer")[:3]]
    caches = [await read(proxy, intuit, i) for i in ids]
    caches += [await read(proxy, intuit, ids[n % 3]) for n in range(7)]
    assert caches == ["MISS"] * 3 + ["HIT"] * 7

    text = await admin.scrape()
    assert value(text, "qbproxy_requests_total", route="read", entity="Customer", cache="miss") == 3
    assert value(text, "qbproxy_requests_total", route="read", entity="Customer", cache="hit") == 7
    assert value(text, "qbproxy_cache_hit_ratio", entity="Customer") == 0.7
    assert value(text, "qbproxy_upstream_calls_saved_total", entity="Customer") == 7
    # Every upstream call the proxy counted is one the fake Intuit saw, and no more.
    assert intuit.sandbox.count() == 3
    assert total(text, "qbproxy_upstream_requests_total") == 3
    assert value(text, "qbproxy_upstream_requests_total", entity="Customer", status="2xx") == 3
    assert value(text, "qbproxy_upstream_duration_seconds_count", entity="Customer") == 3
    assert value(text, "qbproxy_request_duration_seconds_count", cache="hit") == 7
    assert value(text, "qbproxy_request_duration_seconds_count", cache="miss") == 3
    assert value(text, "qbproxy_fills_total", entity="Customer", kind="row", outcome="landed") == 3
    assert value(text, "qbproxy_rows_filled_total", entity="Customer") == 3
    # Rows fetched one by one are cached; the table itself is not complete.
    assert value(text, "qbproxy_cache_rows", entity="Customer") == 3
    assert value(text, "qbproxy_cache_tables_complete", entity="Customer") == 0
    # No entity without a cache decision gets a ratio (not 0, not NaN).
    assert value(text, "qbproxy_cache_hit_ratio", entity="Invoice") is None

    # `qbproxy stats` reads the same figures off the same scrape.
    customer_line = next(line for line in report(text).splitlines() if line.startswith("Customer"))
    assert customer_line.split() == [
        "Customer",
        "10",
        "7",
        "3",
        "0",
        "0",
        "70.0%",
        "7",
        "3",
        "3",
        "0",
    ]


async def test_table_load_fills_rows_cached_to_the_seeded_count(
    intuit: Intuit, proxy: Running, admin: Admin
) -> None:
    text = f"SELECT * FROM Invoice WHERE DocNumber = '{LITERAL}'"
    assert [await query(proxy, intuit, text) for _ in range(4)] == ["MISS", "HIT", "HIT", "HIT"]
    assert await query(proxy, intuit, "SELECT * FROM Invoice", OTHER_REALM) == "MISS"

    scraped = await admin.scrape()
    seeded = len(intuit.sandbox.entities(REALM, "Invoice"))
    seeded_other = len(intuit.sandbox.entities(OTHER_REALM, "Invoice"))
    assert value(scraped, "qbproxy_cache_rows", entity="Invoice") == seeded + seeded_other
    assert value(scraped, "qbproxy_cache_tables_complete", entity="Invoice") == 2
    assert value(scraped, "qbproxy_cache_rows", entity="Payment") == 0
    assert value(scraped, "qbproxy_cache_tables_complete", entity="Payment") == 0
    assert value(scraped, "qbproxy_rows_filled_total", entity="Invoice") == seeded + seeded_other
    assert (
        value(scraped, "qbproxy_fills_total", entity="Invoice", kind="table", outcome="landed") == 2
    )
    assert value(scraped, "qbproxy_cache_hit_ratio", entity="Invoice") == 0.6
    assert value(scraped, "qbproxy_upstream_calls_saved_total", entity="Invoice") == 3
    assert total(scraped, "qbproxy_upstream_requests_total") == intuit.sandbox.count() == 2


async def test_purged_rows_leave_the_rows_gauge(
    intuit: Intuit, proxy: Running, admin: Admin
) -> None:
    assert await query(proxy, intuit, "SELECT * FROM Payment") == "MISS"
    before = await admin.scrape()
    assert value(before, "qbproxy_cache_rows", entity="Payment") == len(
        intuit.sandbox.entities(REALM, "Payment")
    )
    assert value(before, "qbproxy_cache_tables_complete", entity="Payment") == 1
    payment = intuit.sandbox.entities(REALM, "Payment")[0]
    status, _, body = await proxy.post(
        f"{BASE}/payment?operation=delete",
        data=orjson.dumps({"Id": payment["Id"], "SyncToken": payment["SyncToken"]}),
        headers={**intuit.auth(), "Content-Type": "application/json"},
    )
    assert status == 200, body
    after = await admin.scrape()
    assert value(after, "qbproxy_cache_rows", entity="Payment") == 0
    assert value(after, "qbproxy_cache_tables_complete", entity="Payment") == 0
    assert value(after, "qbproxy_purges_total", entity="Payment", reason="write") is not None


async def test_no_label_carries_a_token_a_realm_or_a_query_literal(
    intuit: Intuit, proxy: Running, admin: Admin
) -> None:
    customer = intuit.sandbox.entities(REALM, "Customer")[4]
    token = intuit.sandbox.token_for(REALM)
    texts = [
        f"SELECT * FROM Customer WHERE DisplayName = '{LITERAL}'",  # cached
        f"SELECT * FROM Vendor WHERE DisplayName = '{LITERAL}'",  # forwarded
        f"SELECT * FROM Customer WHERE DisplayName != '{LITERAL}'",  # unsupported: forwarded
    ]
    for text in texts:
        # Whatever Intuit answers (the fake knows no Vendor): only the labels matter here.
        await proxy.get(f"{BASE}/query?query={quote(text)}", headers=intuit.auth())
    await read(proxy, intuit, customer["Id"])
    await proxy.get(f"{BASE}/companyinfo/{REALM}?q={LITERAL}", headers=intuit.auth())
    for asked in (f"ProfitAndLoss?customer={LITERAL}", f"BalanceSheet?x={LITERAL}"):
        await proxy.get(f"{BASE}/reports/{asked}", headers=intuit.auth())
    await proxy.get(f"{BASE}/customer/{customer['Id']}", headers={"Authorization": "Bearer bad"})
    await proxy.post(
        f"{BASE}/customer",
        data=orjson.dumps({"DisplayName": LITERAL}),
        headers={**intuit.auth(), "Content-Type": "application/json"},
    )

    scraped = await admin.scrape()
    secrets = [token, "Bearer", REALM, OTHER_REALM, LITERAL]
    assert not [s for s in secrets if s in scraped]
    allowed: dict[str, set[str] | None] = {
        "route": {"query", "read", "report", "write", "batch", "other"},
        # Every report is the one entity "report", never a report name.
        "entity": {e.name for e in ENTITIES} | {"report", "other"},
        "cache": {"hit", "miss", "stale", "bypass"},
        "status": {"1xx", "2xx", "3xx", "4xx", "5xx", "error"},
        "kind": {"table", "row", "report"},
        "outcome": {"landed", "discarded", "failed", "not_stored"},
        "state": {"open", "half_open"},
        "reason": None,  # bounded by the code that purges; checked for secrets above
        "operation": None,
        "le": None,
    }
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            for name, label in sample.labels.items():
                assert name in allowed, (sample.name, name)
                values = allowed[name]
                assert values is None or label in values, (sample.name, name, label)


async def test_postgres_down_leaves_out_cache_state_gauges_only(
    intuit: Intuit, proxy: Running, admin: Admin
) -> None:
    await read(proxy, intuit, intuit.sandbox.entities(REALM, "Customer")[0]["Id"])
    assert value(await admin.scrape(), "qbproxy_cache_rows", entity="Customer") == 1
    await proxy.proxy.pool.close()

    scraped = await admin.scrape()
    names = {family.name for family in text_string_to_metric_families(scraped)}
    assert "qbproxy_cache_rows" not in names
    assert "qbproxy_cache_tables_complete" not in names
    assert (
        value(scraped, "qbproxy_requests_total", route="read", entity="Customer", cache="miss") == 1
    )
    assert value(scraped, "qbproxy_cache_hit_ratio", entity="Customer") == 0.0

    status, content_type, body = await admin.get("/readyz")
    assert (status, content_type) == (503, "application/json")
    assert orjson.loads(body)["checks"]["postgres"] == "unreachable"


async def test_health_endpoints_answer_json(proxy: Running, admin: Admin) -> None:
    answers: dict[str, Any] = {}
    for path in ("/healthz", "/readyz"):
        status, content_type, body = await admin.get(path)
        assert (status, content_type) == (200, "application/json")
        answers[path] = orjson.loads(body)
    assert answers["/healthz"] == {"status": "ok"}
    assert answers["/readyz"] == {
        "status": "ready",
        "checks": {"migrations": "applied", "postgres": "ok"},
        "circuits": {"open": 0, "half_open": 0},
    }


async def test_openmetrics_is_served_when_asked_for(admin: Admin) -> None:
    async with admin.session.get(
        admin.server.make_url("/metrics"), headers={"Accept": "application/openmetrics-text"}
    ) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert (await response.text()).endswith("# EOF\n")


async def test_stats_command_prints_the_running_proxys_figures(
    intuit: Intuit, proxy: Running, admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [c["Id"] for c in intuit.sandbox.entities(REALM, "Customer")[:2]]
    for entity_id in [*ids, *ids, *ids]:
        await read(proxy, intuit, entity_id)
    url = str(admin.server.make_url("")).rstrip("/")

    code = await asyncio.to_thread(cli.main, ["stats", "--admin-url", url])

    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith(f"qbproxy stats from {url}/metrics\n")
    customer = next(line for line in out.splitlines() if line.startswith("Customer"))
    assert customer.split() == ["Customer", "6", "4", "2", "0", "0", "66.7%", "4", "2", "2", "0"]
    assert "calls saved: 4 of 6 requests answered without Intuit (66.7%)" in out

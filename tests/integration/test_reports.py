"""Reports answered from cache, end to end against the fake Intuit, which computes every
report from its data (so a stale report after a write is detectable): the proxy's answer
equals Intuit's on the MISS and on the repeat HIT, with one upstream call; writes,
webhooks, CDC changes and the company's midnight make the next answer fresh; untrusted
callers, oversized answers and Intuit's failures are handled as for tables."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg
import orjson
import pytest

from qbproxy.web import webhooks
from tests.integration.conftest import REALM, Intuit, ProxyFactory, Running, new_invoice

BASE = f"/v3/company/{REALM}"
JSON = {"Content-Type": "application/json"}
ALL_DATES = {"start_date": "2000-01-01", "end_date": "2099-12-31"}
LAST_FY = {"date_macro": "Last Fiscal Year", "accounting_method": "Cash"}
REPORTS: dict[str, list[dict[str, str]]] = {
    "BalanceSheet": [{}, ALL_DATES, LAST_FY, {"summarize_column_by": "Quarter", **ALL_DATES}],
    "ProfitAndLoss": [{}, ALL_DATES, LAST_FY, {"summarize_column_by": "Month", **ALL_DATES}],
    "CashFlow": [{}, ALL_DATES, LAST_FY],
    "TrialBalance": [{}, ALL_DATES, {"accounting_method": "Cash", "date_macro": "This Month"}],
    "GeneralLedger": [{}, ALL_DATES, LAST_FY],
    "CustomerSales": [{}, ALL_DATES, {"customer": "1", "summarize_column_by": "Month"}],
    "CustomerBalance": [{}, {"report_date": "2000-01-01"}, {"arpaid": "All"}],
    "AgedReceivables": [
        {},
        {"aging_period": "15", "num_periods": "3"},
        {"days_per_aging_period": "10"},
    ],
    "AgedReceivableDetail": [{}, {"report_date": "2099-01-01"}, {"aging_period": "15"}],
    "AgedPayables": [{}, {"num_periods": "2"}, {"report_date": "2099-12-31"}],
    "VendorExpenses": [{}, ALL_DATES, {"vendor": "1", **ALL_DATES}],
    "TransactionList": [{}, ALL_DATES, {"date_macro": "This Fiscal Year"}],
}


def url(name: str, params: dict[str, str], *, shuffle: bool = False) -> str:
    pairs = list(params.items())
    if shuffle:
        random.Random(len(pairs)).shuffle(pairs)
        pairs.reverse()
        pairs.append(("minorversion", "70"))
    else:
        pairs.append(("minorversion", "75"))
    return f"{BASE}/reports/{name}?{urlencode(pairs)}"


def without_time(body: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(body)
    doc["Header"].pop("Time")
    return doc


async def via(
    proxy: Running, intuit: Intuit, name: str, params: dict[str, str], *, shuffle: bool = False
) -> tuple[str, bytes]:
    status, headers, body = await proxy.get(
        url(name, params, shuffle=shuffle), headers=intuit.auth()
    )
    assert status == 200, body
    return headers["X-Cache"], body


async def direct(intuit: Intuit, name: str, params: dict[str, str]) -> dict[str, Any]:
    """Intuit's own answer now (a call in the fake's log: count before calling this)."""
    async with (
        asyncio.timeout(10),
        aiohttp.ClientSession() as session,
        session.get(intuit.url + url(name, params), headers=intuit.auth()) as response,
    ):
        assert response.status == 200
        return without_time(await response.read())


def calls(intuit: Intuit, name: str | None = None) -> int:
    return intuit.sandbox.count("report", realm=REALM, entity=name)


def metric(proxy: Running, name: str, **labels: str) -> float:
    return proxy.registry.get_sample_value(name, labels) or 0.0


async def write(proxy: Running, intuit: Intuit, path: str, body: dict[str, Any]) -> Any:
    status, headers, raw = await proxy.post(
        f"{BASE}/{path}", data=orjson.dumps(body), headers={**intuit.auth(), **JSON}
    )
    assert status == 200, raw
    assert headers["X-Cache"] == "BYPASS"
    return orjson.loads(raw)


async def warm(proxy: Running, intuit: Intuit, name: str, params: dict[str, str]) -> None:
    assert (await via(proxy, intuit, name, params))[0] == "MISS"
    assert (await via(proxy, intuit, name, params, shuffle=True))[0] == "HIT"


async def assert_fresh(proxy: Running, intuit: Intuit, name: str, params: dict[str, str]) -> None:
    cache, body = await via(proxy, intuit, name, params)
    assert cache == "MISS", name
    assert without_time(body) == await direct(intuit, name, params), name


# --- every report, several parameter sets ----------------------------------------------------


@pytest.mark.parametrize("name", sorted(REPORTS))
async def test_answers_equal_intuits_and_repeats_are_hits(
    intuit: Intuit, proxy: Running, name: str
) -> None:
    for params in REPORTS[name]:
        before = calls(intuit, name)
        cache, first = await via(proxy, intuit, name, params)
        assert cache == "MISS", params
        again, second = await via(proxy, intuit, name, params, shuffle=True)
        assert again == "HIT", params
        assert second == first  # Intuit's bytes, Header.Time included
        assert calls(intuit, name) == before + 1, params
        assert without_time(first) == await direct(intuit, name, params), params
    assert metric(proxy, "qbproxy_requests_total", route="report", entity="report", cache="hit")
    # One key per distinct parameter set: every set above is its own entry.
    assert metric(
        proxy, "qbproxy_fills_total", entity="report", kind="report", outcome="landed"
    ) == len(REPORTS[name])


async def test_hit_carries_intuits_headers(intuit: Intuit, proxy: Running) -> None:
    await warm(proxy, intuit, "ProfitAndLoss", {})
    status, headers, _ = await proxy.get(url("ProfitAndLoss", {}), headers=intuit.auth())
    assert status == 200
    assert headers["X-Cache"] == "HIT"
    assert headers["Content-Type"].startswith("application/json")
    assert headers["intuit_tid"].startswith("qbproxy-")
    assert "no-store" in headers["Cache-Control"]


async def test_defaults_share_a_key_and_accounting_method_does_not(
    intuit: Intuit, proxy: Running
) -> None:
    await warm(proxy, intuit, "ProfitAndLoss", {})
    spelled = {"date_macro": "This Fiscal Year-to-date", "summarize_column_by": "Total"}
    assert (await via(proxy, intuit, "ProfitAndLoss", spelled))[0] == "HIT"
    # Absent means the company's ReportBasis (Preferences): never the explicit key.
    assert (await via(proxy, intuit, "ProfitAndLoss", {"accounting_method": "Accrual"}))[
        0
    ] == "MISS"


async def test_unknown_reports_and_parameters_are_forwarded(intuit: Intuit, proxy: Running) -> None:
    for name, params in [
        ("ProfitAndLossDetail", {}),
        ("ProfitAndLoss", {"nonsense": "1"}),
        ("ProfitAndLoss", {"format": "xml"}),
    ]:
        for _ in range(2):
            status, headers, _ = await proxy.get(url(name, params), headers=intuit.auth())
            assert status == 200
            assert headers["X-Cache"] == "BYPASS"
    assert calls(intuit) == 6


# --- read-your-writes, webhooks, CDC -----------------------------------------------------


async def test_every_write_makes_the_reports_fresh(intuit: Intuit, proxy: Running) -> None:
    watched = {
        "ProfitAndLoss": {},
        "BalanceSheet": ALL_DATES,
        "AgedReceivables": {},
        "CustomerBalance": {},
        "AgedPayables": {},
        "VendorExpenses": ALL_DATES,
        "TransactionList": {},
        "GeneralLedger": ALL_DATES,
    }
    customer = next(c for c in intuit.sandbox.entities(REALM, "Customer") if c["Active"])
    vendor = next(v for v in intuit.sandbox.entities(REALM, "Vendor") if v["Active"])
    bill = {
        "VendorRef": {"value": vendor["Id"]},
        "Line": [
            {
                "Amount": 99,
                "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "17"}},
            }
        ],
    }
    invoice = (await write(proxy, intuit, "invoice", new_invoice(customer["Id"], 77.0)))["Invoice"]
    payment = {
        "CustomerRef": {"value": customer["Id"]},
        "TotalAmt": 20.0,
        "Line": [{"Amount": 20.0, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
    }
    for path, body in [
        ("invoice", new_invoice(customer["Id"], 321.5)),
        ("bill", bill),
        ("payment", payment),
    ]:
        for name, params in watched.items():
            await via(proxy, intuit, name, params)  # a MISS first time round, else a HIT
            assert (await via(proxy, intuit, name, params, shuffle=True))[0] == "HIT"
        before = {name: await direct(intuit, name, params) for name, params in watched.items()}
        await write(proxy, intuit, path, body)
        changed = 0
        for name, params in watched.items():
            now = await direct(intuit, name, params)
            changed += now != before[name]
            await assert_fresh(proxy, intuit, name, params)
        assert changed >= 3, path  # the fake's reports moved: a stale one would show


async def test_a_write_through_one_instance_purges_the_others(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    first, second = await proxy_for(intuit.url), await proxy_for(intuit.url)
    await warm(first, intuit, "AgedPayables", {})
    vendor = next(v for v in intuit.sandbox.entities(REALM, "Vendor") if v["Active"])
    await write(
        second,
        intuit,
        "bill",
        {
            "VendorRef": {"value": vendor["Id"]},
            "Line": [
                {"Amount": 55, "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "17"}}}
            ],
        },
    )
    await assert_fresh(first, intuit, "AgedPayables", {})


async def test_a_webhook_for_any_entity_purges_the_realms_reports(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    hooked = await proxy_for(intuit.url, webhooks_verifier_token="verifier-7d1c")
    intuit.sandbox.webhook_url = hooked.url("/webhooks/intuit")
    intuit.sandbox.verifier_token = "verifier-7d1c"
    await warm(hooked, intuit, "AgedPayables", {})
    # A vendor edit in QBO changes no cached table, but it may change a report.
    vendor = next(v for v in intuit.sandbox.entities(REALM, "Vendor") if v["Active"])
    intuit.sandbox.mutate_out_of_band(REALM, "Vendor", vendor["Id"], {"DisplayName": "Renamed"})
    await intuit.sandbox.drain_webhooks()
    await webhooks.drain(hooked.server.app)
    assert [status for status, _ in intuit.sandbox.webhook_deliveries] == [200]
    await assert_fresh(hooked, intuit, "AgedPayables", {})
    assert metric(hooked, "qbproxy_purges_total", entity="report", reason="webhook") == 1


async def test_a_cdc_change_purges_the_realms_reports(
    intuit: Intuit, proxy: Running, pg_dsn: str
) -> None:
    query = f"{BASE}/query?query=select%20*%20from%20Customer"
    assert (await proxy.get(query, headers=intuit.auth()))[1]["X-Cache"] == "MISS"
    await warm(proxy, intuit, "CustomerBalance", {})
    await warm(proxy, intuit, "TrialBalance", ALL_DATES)
    # An edit made in QBO, seen by the realm's next CDC call (no webhook here).
    customer = next(c for c in intuit.sandbox.entities(REALM, "Customer") if c["Active"])
    intuit.sandbox.mutate_out_of_band(REALM, "Customer", customer["Id"], {"Active": False})
    assert (await via(proxy, intuit, "CustomerBalance", {}))[0] == "HIT"  # within the TTL
    # The Customer table's TTL runs out: the next query refreshes it by one CDC call.
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("UPDATE qbo_table_state SET loaded_at = loaded_at - interval '301 s'")
    finally:
        await conn.close()
    proxy.proxy.memory.clear()  # state changed by SQL bypasses the purge channel
    before = intuit.sandbox.count("cdc")
    assert (await proxy.get(query, headers=intuit.auth()))[1]["X-Cache"] == "MISS"
    assert intuit.sandbox.count("cdc") == before + 1
    await assert_fresh(proxy, intuit, "CustomerBalance", {})
    await assert_fresh(proxy, intuit, "TrialBalance", ALL_DATES)


async def test_qbproxy_purge_purges_the_realms_reports(intuit: Intuit, proxy: Running) -> None:
    await warm(proxy, intuit, "ProfitAndLoss", ALL_DATES)
    assert await proxy.proxy.purger.purge(REALM, [], "cli") is not None
    await assert_fresh(proxy, intuit, "ProfitAndLoss", ALL_DATES)


# --- the company's day -----------------------------------------------------------------------


class Clock:
    """One instant for the fake's company clock and the proxy's wall clock."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def epoch(self) -> float:
        return self.now.timestamp()

    def aware(self) -> dt.datetime:
        return self.now.astimezone()


async def test_relative_periods_are_never_served_across_the_company_midnight(
    intuit: Intuit, proxy: Running
) -> None:
    # The fake's company runs at -07:00; 2025-03-14 20:00 there.
    noon = dt.datetime(2025, 3, 15, 3, 0, tzinfo=dt.UTC)
    clock = Clock(noon)
    intuit.sandbox.now = clock.epoch
    proxy.proxy.wall_clock = clock.aware
    today = {"date_macro": "Today"}
    await warm(proxy, intuit, "ProfitAndLoss", today)
    await warm(proxy, intuit, "AgedReceivables", {})
    await warm(proxy, intuit, "ProfitAndLoss", ALL_DATES)
    await warm(proxy, intuit, "CustomerBalance", {"report_date": "2025-03-01"})
    clock.now = noon + dt.timedelta(hours=3, minutes=30)  # 23:30: still the 14th
    assert (await via(proxy, intuit, "ProfitAndLoss", today))[0] == "HIT"
    clock.now = noon + dt.timedelta(hours=4, minutes=1)  # 00:01 on the 15th
    cache, body = await via(proxy, intuit, "ProfitAndLoss", today)
    assert cache == "MISS"
    assert orjson.loads(body)["Header"]["StartPeriod"] == "2025-03-15"
    assert without_time(body) == await direct(intuit, "ProfitAndLoss", today)
    await assert_fresh(proxy, intuit, "AgedReceivables", {})
    # Absolute periods do not depend on the day.
    assert (await via(proxy, intuit, "ProfitAndLoss", ALL_DATES))[0] == "HIT"
    assert (await via(proxy, intuit, "CustomerBalance", {"report_date": "2025-03-01"}))[0] == "HIT"


# --- trust, size, single flight, failures ------------------------------------------------


async def test_untrusted_callers_are_forwarded(intuit: Intuit, proxy: Running) -> None:
    await warm(proxy, intuit, "ProfitAndLoss", {})
    before = calls(intuit)
    for headers in (
        {"Authorization": "Bearer forged"},
        intuit.auth("9130350000000002"),  # another realm's token
        {},
    ):
        status, answer, body = await proxy.get(url("ProfitAndLoss", {}), headers=headers)
        assert status in (401, 403), body
        assert answer["X-Cache"] == "MISS"
    assert calls(intuit) == before + 3
    assert (await via(proxy, intuit, "ProfitAndLoss", {}))[0] == "HIT"  # the trusted one


async def test_oversized_reports_are_relayed_and_not_stored(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    small = await proxy_for(intuit.url, cache_report_max_bytes="2000")
    params = ALL_DATES
    expected = await direct(intuit, "GeneralLedger", params)
    assert len(orjson.dumps(expected)) > 2000
    before = calls(intuit)
    for _ in range(2):
        cache, body = await via(small, intuit, "GeneralLedger", params)
        assert cache == "MISS"
        assert without_time(body) == expected
    assert calls(intuit) == before + 2
    assert (
        metric(small, "qbproxy_fills_total", entity="report", kind="report", outcome="not_stored")
        == 2
    )
    # A small one is still stored.
    await warm(small, intuit, "CustomerBalance", {"report_date": "2000-01-01"})


class Flights(dict[tuple[str, str], "asyncio.Future[bool]"]):
    """The proxy's in-flight report calls, telling the test when `expected` requests have
    found a call in flight and are about to wait for it."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.all_waiting = asyncio.Event()

    def get(self, key: tuple[str, str], default: Any = None) -> Any:
        found = super().get(key, default)
        if found is not None:
            self.expected -= 1
            if self.expected == 0:
                self.all_waiting.set()
        return found


async def test_concurrent_misses_make_one_call(intuit: Intuit, proxy: Running) -> None:
    await warm(proxy, intuit, "CashFlow", {})  # the token is trusted from here on
    n = 8
    flights = Flights(n - 1)
    proxy.proxy.report_flights = flights
    gate = intuit.sandbox.pause(kind="report", entity="BalanceSheet", stage="before")
    tasks = [
        asyncio.create_task(via(proxy, intuit, "BalanceSheet", {}, shuffle=bool(i % 2)))
        for i in range(n)
    ]
    await gate.arrived.wait()
    await flights.all_waiting.wait()
    gate.release()
    results = await asyncio.gather(*tasks)
    assert calls(intuit, "BalanceSheet") == 1
    assert sorted(cache for cache, _ in results) == ["MISS"] * n
    assert len({body for _, body in results}) == 1
    assert metric(proxy, "qbproxy_singleflight_waits_total", entity="report") == n - 1
    assert (await via(proxy, intuit, "BalanceSheet", {}))[0] == "HIT"


async def test_stale_only_within_the_window_and_never_after_a_purge(
    intuit: Intuit, proxy: Running, pg_dsn: str
) -> None:
    await warm(proxy, intuit, "TrialBalance", ALL_DATES)
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("UPDATE qbo_report SET cached_at = cached_at - interval '301 s'")
        intuit.sandbox.fail_next(1, 503, kind="report")
        cache, body = await via(proxy, intuit, "TrialBalance", ALL_DATES)
        assert cache == "STALE"
        assert without_time(body) == await direct(intuit, "TrialBalance", ALL_DATES)
        await conn.execute("UPDATE qbo_report SET cached_at = cached_at - interval '3600 s'")
        intuit.sandbox.fail_next(1, 503, kind="report")
        status, headers, _ = await proxy.get(url("TrialBalance", ALL_DATES), headers=intuit.auth())
        assert (status, headers["X-Cache"]) == (503, "MISS")
    finally:
        await conn.close()
    await warm(proxy, intuit, "TrialBalance", ALL_DATES)
    assert await proxy.proxy.purger.purge(REALM, [], "write") is not None
    intuit.sandbox.fail_next(1, 503, kind="report")
    status, headers, _ = await proxy.get(url("TrialBalance", ALL_DATES), headers=intuit.auth())
    assert (status, headers["X-Cache"]) == (503, "MISS")  # purged: never served stale


async def test_a_fill_that_raced_a_write_never_lands(intuit: Intuit, proxy: Running) -> None:
    await warm(proxy, intuit, "CashFlow", {})  # trusted token
    # Intuit computed the report before the write, and answers after it.
    gate = intuit.sandbox.pause(kind="report", entity="AgedReceivables", stage="after")
    task = asyncio.create_task(via(proxy, intuit, "AgedReceivables", {}))
    await gate.arrived.wait()
    customer = next(c for c in intuit.sandbox.entities(REALM, "Customer") if c["Active"])
    await write(proxy, intuit, "invoice", new_invoice(customer["Id"], 500.0))
    gate.release()
    assert (await task)[0] == "MISS"
    await assert_fresh(proxy, intuit, "AgedReceivables", {})
    assert (
        metric(proxy, "qbproxy_fills_total", entity="report", kind="report", outcome="discarded")
        == 1
    )

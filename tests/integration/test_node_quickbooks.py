"""A real client library, node-quickbooks, pointed at the proxy as the README says
(`qbo.endpoint`): its queries (GET, `%20`, lower-case `from customer`, `startposition 1
maxresults 1000` on counts too, `+07:00` offsets, Dates as `.000Z`) get Intuit's answers,
they repeat without calls to Intuit, and what it writes it reads back at once.

The library runs in Node (`tests/node/client.js`, installed by `make test` from
`tests/node/package-lock.json`); without Node these tests fail rather than skip.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from qbproxy.core.catalog import ENTITIES
from tests.integration.conftest import REALM, Intuit, Running, new_invoice

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
HIT_OR_MISS = {"HIT", "MISS"}
Call = list[Any]  # a QuickBooks method name and its arguments
Result = dict[str, Any]  # {"call", "ok", "data" | "error", "http": [{..., "xCache"}]}

pytestmark = pytest.mark.slow


async def node_quickbooks(
    base: str, calls: list[Call], token: str, minor_version: int | None = None
) -> list[Result]:
    """Run `calls` in order through node-quickbooks with its endpoint at `base`."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found: these tests run node-quickbooks (install Node.js 18+)")
    if not (NODE_DIR / "node_modules" / "node-quickbooks").is_dir():
        pytest.fail("node-quickbooks is not installed: run `make node-deps`")
    env = os.environ | {
        "QBO_ACCESS_TOKEN": token,
        # The library writes a Date in the process' offset, unencoded: "+07:00" in the URL.
        "TZ": "Asia/Bangkok",
    }
    if minor_version is not None:
        env["QBO_MINOR_VERSION"] = str(minor_version)
    process = await asyncio.create_subprocess_exec(
        node,
        str(NODE_DIR / "client.js"),
        base,
        REALM,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await process.communicate(json.dumps(calls).encode())
    assert process.returncode == 0, err.decode()
    results: list[Result] = json.loads(out)["results"]
    assert [r["call"] for r in results] == [c[0] for c in calls]
    return results


def answers(results: list[Result]) -> list[Any]:
    """What each call returned, without the envelope's `time` (the proxy stamps its own)."""
    failed = [r for r in results if not r["ok"]]
    assert not failed, json.dumps(failed, indent=1)[:4000]
    return [without_time(r["data"]) for r in results]


def without_time(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if k != "time"}
    return data


def x_cache(results: list[Result]) -> list[str | None]:
    return headers(results, "xCache")


def headers(results: list[Result], name: str) -> list[str | None]:
    """One recorded response header of every HTTP exchange the calls made, in order."""
    return [exchange[name] for r in results for exchange in r["http"]]


def rows(data: dict[str, Any], entity: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = data["QueryResponse"].get(entity, [])
    return found


def read_calls(intuit: Intuit) -> dict[str, Call]:
    """Reads an app makes through node-quickbooks over the fake's seeded company, by label."""
    everyone = intuit.sandbox.entities(REALM, "Customer")
    customers = [c for c in everyone if c["Active"]]
    inactive = next(c for c in everyone if not c["Active"])
    quoted = next(c for c in customers if "'" in c["DisplayName"])
    invoices = intuit.sandbox.entities(REALM, "Invoice")
    payments = intuit.sandbox.entities(REALM, "Payment")
    txn_dates = sorted(i["TxnDate"] for i in invoices)
    updated = sorted(dt.datetime.fromisoformat(i["MetaData"]["LastUpdatedTime"]) for i in invoices)
    plus_seven = dt.timezone(dt.timedelta(hours=7))
    since = updated[len(updated) // 3].astimezone(plus_seven).isoformat()  # ...+07:00
    until = updated[2 * len(updated) // 3].astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    pages = {"field": "fetchAll", "value": True}
    return {
        "all customers": ["findCustomers"],  # "select * from customer", nothing appended
        "like": ["findCustomers", [{"field": "DisplayName", "value": "%a%", "operator": "LIKE"}]],
        # An apostrophe, escaped by the library as \' and sent as %5C%27.
        "equal": ["findCustomers", {"DisplayName": quoted["DisplayName"]}],
        "prefix": [
            "findCustomers",
            [
                {
                    "field": "DisplayName",
                    "operator": "LIKE",
                    "value": quoted["DisplayName"][:5] + "%",
                }
            ],
        ],
        # Pages of 7 until one is shorter; pages of all of them until one comes back empty.
        "fetch all": ["findCustomers", [pages, {"field": "limit", "value": 7}]],
        "fetch all, last page empty": [
            "findCustomers",
            [pages, {"field": "limit", "value": len(customers)}],
        ],
        "page": [
            "findCustomers",
            [
                {"field": "limit", "value": 5},
                {"field": "offset", "value": 6},
                {"field": "asc", "value": "DisplayName"},
            ],
        ],
        "ids": ["findCustomers", {"Id": [c["Id"] for c in customers[:4]]}],  # Id IN ('1',..)
        "count": ["findCustomers", {"count": True}],  # ... startposition 1 maxresults 1000
        "inactive": ["findCustomers", {"Active": False}],
        "customer": ["getCustomer", customers[0]["Id"]],
        "quoted customer": ["getCustomer", quoted["Id"]],
        "inactive customer": ["getCustomer", inactive["Id"]],
        "since date": [
            "findInvoices",
            [
                {"field": "TxnDate", "operator": ">=", "value": txn_dates[len(txn_dates) // 2]},
                {"field": "desc", "value": "TxnDate"},
            ],
        ],
        "since +07:00": [
            "findInvoices",
            [{"field": "MetaData.LastUpdatedTime", "value": since, "operator": ">="}],
        ],
        # A Date, as apps pass one: the library's JSON copy makes it '...T..:..:..000Z'.
        "before a Date": [
            "findInvoices",
            [{"field": "MetaData.LastUpdatedTime", "operator": "<", "value": {"$date": until}}],
        ],
        "of a customer": ["findInvoices", {"CustomerRef": invoices[0]["CustomerRef"]["value"]}],
        "invoice count": ["findInvoices", {"count": True}],
        "invoice": ["getInvoice", invoices[0]["Id"]],
        "all payments": ["findPayments"],
        "payments before": [
            "findPayments",
            [
                {
                    "field": "TxnDate",
                    "operator": "<",
                    "value": payments[len(payments) // 2]["TxnDate"],
                }
            ],
        ],
        "payment": ["getPayment", payments[0]["Id"]],
    }


async def test_node_quickbooks_reads_match_intuit_and_repeat_from_cache(
    intuit: Intuit, proxy: Running
) -> None:
    labelled = read_calls(intuit)
    calls = list(labelled.values())
    token = intuit.sandbox.token_for(REALM)
    base = proxy.url("").rstrip("/")

    direct = await node_quickbooks(intuit.url, calls, token)
    expected = answers(direct)
    got = dict(zip(labelled, expected, strict=True))
    # The calls are not vacuous: every list found something, and the filters filtered.
    for (name, *_), answer in zip(calls, expected, strict=True):
        if name.startswith("find"):
            entity = name.removeprefix("find").removesuffix("s")
            counted = answer["QueryResponse"].get("totalCount")
            assert counted or rows(answer, entity), (name, answer)
    invoices = len(intuit.sandbox.entities(REALM, "Invoice"))
    assert 0 < len(rows(got["since +07:00"], "Invoice")) < invoices
    assert 0 < len(rows(got["before a Date"], "Invoice")) < invoices
    active = got["count"]["QueryResponse"]["totalCount"]
    assert len(rows(got["fetch all"], "Customer")) == active
    assert len(rows(got["fetch all, last page empty"], "Customer")) == active
    exchanges = {label: len(r["http"]) for label, r in zip(labelled, direct, strict=True)}
    assert exchanges["fetch all"] == -(-active // 7)
    assert exchanges["fetch all, last page empty"] == 2
    assert len(rows(got["equal"], "Customer")) == 1
    assert got["inactive customer"]["Active"] is False

    intuit.sandbox.reset_calls()
    first = await node_quickbooks(base, calls, token)
    assert answers(first) == expected
    # Every read was the cache's to answer (none forwarded as a query it cannot answer).
    assert set(x_cache(first)) <= HIT_OR_MISS, x_cache(first)
    assert headers(first, "contentType") == headers(direct, "contentType")
    # One whole load per table; the reads by Id come from the loaded tables.
    assert intuit.sandbox.count() == intuit.sandbox.count(kind="query") == 3

    second = await node_quickbooks(base, calls, token)
    assert answers(second) == expected
    assert set(x_cache(second)) == {"HIT"}
    assert intuit.sandbox.count() == 3
    assert headers(second, "contentType") == headers(direct, "contentType")
    tids = headers(second, "intuitTid")
    assert all(str(tid).startswith("qbproxy-") for tid in tids)
    assert len(set(tids)) == len(tids)

    # Another minorversion (node-quickbooks apps pin 65, 70, ...) is answered the same.
    older = await node_quickbooks(base, calls, token, minor_version=65)
    assert answers(older) == expected
    assert set(x_cache(older)) == {"HIT"}
    assert intuit.sandbox.count() == 3


async def test_node_quickbooks_change_data_capture_is_forwarded_untouched(
    intuit: Intuit, proxy: Running
) -> None:
    # changeDataCapture formats a Date with the process' offset, "+07:00", unencoded in the
    # URL (qbo-api.md): the proxy must forward the raw query string as it came.
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    calls: list[Call] = [
        ["changeDataCapture", ["Customer", "Invoice", "Payment"], {"$date": since.isoformat()}]
    ]
    token = intuit.sandbox.token_for(REALM)
    direct = await node_quickbooks(intuit.url, calls, token)
    sent = intuit.sandbox.calls[-1].query_string
    via_proxy = await node_quickbooks(proxy.url("").rstrip("/"), calls, token)
    assert "+07:00" in via_proxy[0]["http"][0]["url"]
    assert intuit.sandbox.calls[-1].query_string == sent
    assert answers(via_proxy) == answers(direct)
    changed = answers(direct)[0]["CDCResponse"][0]["QueryResponse"]
    assert any(changed), "the seeded company has recent changes"
    assert x_cache(via_proxy) == ["BYPASS"]


async def test_node_quickbooks_reads_its_own_writes(intuit: Intuit, proxy: Running) -> None:
    token = intuit.sandbox.token_for(REALM)
    base = proxy.url("").rstrip("/")
    customer = next(
        c
        for c in intuit.sandbox.entities(REALM, "Customer")
        if c["Active"] and c.get("CompanyName") != "Written Through Ltd"
    )
    cid = customer["Id"]
    reads: list[Call] = [
        ["getCustomer", cid],
        ["findCustomers", {"CompanyName": "Written Through Ltd"}],
        ["findInvoices", {"CustomerRef": cid}],
    ]
    # Warm the cache, so that a stale answer is there to be served if purging failed.
    await node_quickbooks(base, reads, token)
    warm = await node_quickbooks(base, reads, token)
    assert set(x_cache(warm)) == {"HIT"}
    before, renamed, invoices = answers(warm)
    assert rows(renamed, "Customer") == []

    # A sparse update, as the library sends it: POST customer?operation=update.
    written = await node_quickbooks(
        base,
        [
            [
                "updateCustomer",
                {"Id": cid, "SyncToken": before["SyncToken"], "CompanyName": "Written Through Ltd"},
            ],
            *reads,
        ],
        token,
    )
    update, after, renamed, _ = answers(written)
    assert x_cache(written)[0] == "BYPASS"
    assert update["CompanyName"] == after.get("CompanyName") == "Written Through Ltd"
    assert after == intuit.sandbox.get(REALM, "Customer", cid)
    assert [c["Id"] for c in rows(renamed, "Customer")] == [cid]

    # An invoice for that customer raises its balance; a payment lowers both again.
    created = await node_quickbooks(
        base, [["createInvoice", new_invoice(cid, 150.0)], *reads[::2]], token
    )
    invoice, after_invoice, listed = answers(created)
    assert x_cache(created)[0] == "BYPASS"
    assert after_invoice["Balance"] == pytest.approx(before["Balance"] + 150.0)
    assert invoice["Id"] in [i["Id"] for i in rows(listed, "Invoice")]
    assert len(rows(listed, "Invoice")) == len(rows(invoices, "Invoice")) + 1

    payment = {
        "CustomerRef": {"value": cid},
        "TotalAmt": 40.0,
        "Line": [{"Amount": 40.0, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
    }
    paid = await node_quickbooks(
        base,
        [
            ["createPayment", payment],
            ["getInvoice", invoice["Id"]],
            [
                "findInvoices",
                [
                    {"field": "Balance", "value": 110, "operator": "="},
                    {"field": "CustomerRef", "value": cid},
                ],
            ],
            ["getCustomer", cid],
        ],
        token,
    )
    _, invoice_now, by_balance, customer_now = answers(paid)
    assert invoice_now["Balance"] == pytest.approx(110.0)
    assert invoice["Id"] in [i["Id"] for i in rows(by_balance, "Invoice")]
    assert customer_now["Balance"] == pytest.approx(before["Balance"] + 110.0)
    assert invoice_now == intuit.sandbox.get(REALM, "Invoice", invoice["Id"])
    assert customer_now == intuit.sandbox.get(REALM, "Customer", cid)
    assert set(x_cache(paid)[1:]) <= HIT_OR_MISS

    # A batch (one sparse update) through the library, read back by Id and by query.
    batch = [
        {
            "bId": "1",
            "operation": "update",
            "Customer": {
                "Id": cid,
                "SyncToken": customer_now["SyncToken"],
                "sparse": True,
                "CompanyName": "Batched Ltd",
            },
        }
    ]
    batched = await node_quickbooks(
        base,
        [["batch", batch], ["getCustomer", cid], ["findCustomers", {"CompanyName": "Batched Ltd"}]],
        token,
    )
    response, customer_now, renamed = answers(batched)
    assert response["BatchItemResponse"][0]["Customer"]["CompanyName"] == "Batched Ltd"
    assert customer_now == intuit.sandbox.get(REALM, "Customer", cid)
    assert customer_now["CompanyName"] == "Batched Ltd"
    assert [c["Id"] for c in rows(renamed, "Customer")] == [cid]


PLURALS = {"Class": "Classes", "TimeActivity": "TimeActivities", "JournalEntry": "JournalEntries"}


def every_entity_calls(intuit: Intuit) -> list[Call]:
    """What Intuit's MCP server asks node-quickbooks for, for every cached entity: the
    list (`find<Entities>`, `startposition 1 maxresults 1000` appended by the library), a
    count, one by Id; and getCompanyInfo, getPreferences, and the same as queries."""
    calls: list[Call] = []
    for entity in ENTITIES:
        if entity.singleton:
            continue
        plural = PLURALS.get(entity.name, entity.name + "s")
        first = intuit.sandbox.entities(REALM, entity.name)[0]
        calls += [
            [f"find{plural}"],
            [f"find{plural}", {"count": True}],
            [f"get{entity.name}", first["Id"]],
        ]
    return [
        *calls,
        ["getCompanyInfo", REALM],
        ["getPreferences"],
        ["findCompanyInfos"],
        ["findPreferenceses"],
    ]


async def test_node_quickbooks_reads_every_entity_as_intuit_and_repeats_are_hits(
    intuit: Intuit, proxy: Running
) -> None:
    calls = every_entity_calls(intuit)
    token = intuit.sandbox.token_for(REALM)
    base = proxy.url("").rstrip("/")
    expected = answers(await node_quickbooks(intuit.url, calls, token))
    # Not vacuous: every list and count found rows.
    for (name, *args), answer in zip(calls, expected, strict=True):
        if name.startswith("find"):
            assert answer["QueryResponse"], (name, args, answer)

    first = await node_quickbooks(base, calls, token)
    assert answers(first) == expected
    assert set(x_cache(first)) <= HIT_OR_MISS, x_cache(first)
    loaded = intuit.sandbox.count()

    # Every repeat is answered from the cache, as Intuit answered it.
    second = await node_quickbooks(base, calls, token)
    assert answers(second) == expected
    assert set(x_cache(second)) == {"HIT"}, [
        (c[0], x) for c, x in zip(calls, x_cache(second), strict=True) if x != "HIT"
    ]
    assert intuit.sandbox.count() == loaded

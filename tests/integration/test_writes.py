"""Writes through the proxy purge what they can change: no read after a write returns data
from before it, through this instance or another sharing the Postgres (design.md, promise 2).
Every expectation is Intuit's own answer, asked directly after the write."""

from __future__ import annotations

import asyncio
import random
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest

from tests.integration.conftest import REALM, Intuit, ProxyFactory, Running, new_invoice

BASE = f"/v3/company/{REALM}"
JSON = {"Content-Type": "application/json"}


def without_time(body: bytes) -> Any:
    parsed = orjson.loads(body)
    parsed.pop("time", None)
    return parsed


async def direct_query(intuit: Intuit, text: str) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{intuit.url}{BASE}/query", params={"query": text}, headers=intuit.auth()
        ) as response,
    ):
        return without_time(await response.read())


async def via(proxy: Running, intuit: Intuit, text: str) -> tuple[str, Any]:
    status, headers, body = await proxy.get(
        f"{BASE}/query?query={quote(text)}", headers=intuit.auth()
    )
    assert status == 200, body
    return headers["X-Cache"], without_time(body)


async def read(proxy: Running, intuit: Intuit, entity: str, id_: str) -> tuple[str, Any]:
    status, headers, body = await proxy.get(f"{BASE}/{entity}/{id_}", headers=intuit.auth())
    assert status == 200, body
    return headers["X-Cache"], without_time(body)


async def write(
    proxy: Running,
    intuit: Intuit,
    path: str,
    body: dict[str, Any],
    auth: dict[str, str] | None = None,
) -> tuple[int, Any]:
    status, headers, raw = await proxy.post(
        f"{BASE}/{path}", data=orjson.dumps(body), headers={**(auth or intuit.auth()), **JSON}
    )
    assert headers["X-Cache"] == "BYPASS"
    return status, orjson.loads(raw)


async def warm(proxy: Running, intuit: Intuit) -> None:
    for entity in ("Customer", "Invoice", "Payment"):
        await via(proxy, intuit, f"SELECT * FROM {entity}")
        assert (await via(proxy, intuit, f"SELECT * FROM {entity}"))[0] == "HIT"


def open_invoice(intuit: Intuit) -> dict[str, Any]:
    return next(i for i in intuit.sandbox.entities(REALM, "Invoice") if i["Balance"] > 0)


async def assert_everything_current(proxy: Running, intuit: Intuit) -> None:
    for text in (
        "SELECT * FROM Customer MAXRESULTS 1000",
        "SELECT * FROM Invoice MAXRESULTS 1000",
        "SELECT * FROM Payment MAXRESULTS 1000",
    ):
        assert (await via(proxy, intuit, text))[1] == await direct_query(intuit, text), text


async def test_invoice_create_shows_in_queries_and_customer_balance(
    intuit: Intuit, proxy: Running
) -> None:
    await warm(proxy, intuit)
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    status, created = await write(proxy, intuit, "invoice", new_invoice(customer["Id"]))
    assert status == 200
    invoice = created["Invoice"]
    _, page = await via(proxy, intuit, f"SELECT * FROM Invoice WHERE Id = '{invoice['Id']}'")
    assert page["QueryResponse"]["Invoice"] == [invoice]
    _, fresh = await read(proxy, intuit, "customer", customer["Id"])
    assert fresh["Customer"]["Balance"] == customer["Balance"] + 150
    await assert_everything_current(proxy, intuit)


async def test_created_invoice_is_written_through_for_reads_by_id(
    intuit: Intuit, proxy: Running
) -> None:
    customer = intuit.sandbox.entities(REALM, "Customer")[1]
    await via(proxy, intuit, "SELECT COUNT(*) FROM Invoice")  # Intuit vouches for the token
    intuit.sandbox.reset_calls()
    _, created = await write(proxy, intuit, "invoice", new_invoice(customer["Id"]))
    cache, body = await read(proxy, intuit, "invoice", created["Invoice"]["Id"])
    assert (cache, body) == ("HIT", {"Invoice": created["Invoice"]})
    assert intuit.sandbox.count(kind="read") == 0


async def test_payment_lowers_invoice_and_customer_balances(intuit: Intuit, proxy: Running) -> None:
    await warm(proxy, intuit)
    invoice = open_invoice(intuit)
    customer_id = invoice["CustomerRef"]["value"]
    amount = min(10.0, invoice["Balance"])
    status, _ = await write(
        proxy,
        intuit,
        "payment",
        {
            "CustomerRef": {"value": customer_id},
            "TotalAmt": amount,
            "Line": [
                {"Amount": amount, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
            ],
        },
    )
    assert status == 200
    _, inv = await via(proxy, intuit, f"SELECT * FROM Invoice WHERE Id = '{invoice['Id']}'")
    assert inv["QueryResponse"]["Invoice"][0]["Balance"] == pytest.approx(
        invoice["Balance"] - amount
    )
    _, cust = await read(proxy, intuit, "customer", customer_id)
    assert cust == {"Customer": intuit.sandbox.get(REALM, "Customer", customer_id)}
    await assert_everything_current(proxy, intuit)


async def test_sparse_customer_update(intuit: Intuit, proxy: Running) -> None:
    await warm(proxy, intuit)
    customer = intuit.sandbox.entities(REALM, "Customer")[2]
    status, _ = await write(
        proxy,
        intuit,
        "customer",
        {
            "Id": customer["Id"],
            "SyncToken": customer["SyncToken"],
            "sparse": True,
            "CompanyName": "Renamed Co",
        },
    )
    assert status == 200
    _, page = await via(proxy, intuit, "SELECT * FROM Customer WHERE CompanyName = 'renamed co'")
    assert [c["Id"] for c in page["QueryResponse"]["Customer"]] == [customer["Id"]]
    await assert_everything_current(proxy, intuit)


@pytest.mark.parametrize("operation", ["delete", "void"])
async def test_invoice_delete_and_void(intuit: Intuit, proxy: Running, operation: str) -> None:
    await warm(proxy, intuit)
    invoice = open_invoice(intuit)
    status, _ = await write(
        proxy,
        intuit,
        f"invoice?operation={operation}",
        {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]},
    )
    assert status == 200
    _, page = await via(proxy, intuit, f"SELECT * FROM Invoice WHERE Id = '{invoice['Id']}'")
    if operation == "delete":
        assert page["QueryResponse"] == {}
    else:
        assert page["QueryResponse"]["Invoice"][0]["Balance"] == 0
    await assert_everything_current(proxy, intuit)


async def test_stale_synctoken_fault_purges(intuit: Intuit, proxy: Running) -> None:
    """Intuit's 5010 proves the caller's copy old: the table goes, the Fault is relayed."""
    await warm(proxy, intuit)
    customer = intuit.sandbox.entities(REALM, "Customer")[3]
    intuit.sandbox.mutate_out_of_band(
        REALM, "Customer", customer["Id"], {"CompanyName": "Elsewhere"}
    )
    status, fault = await write(
        proxy,
        intuit,
        "customer",
        {"Id": customer["Id"], "SyncToken": customer["SyncToken"], "sparse": True, "Notes": "x"},
    )
    assert status == 400
    assert fault["Fault"]["Error"][0]["code"] == "5010"
    cache, _ = await via(proxy, intuit, "SELECT * FROM Customer")
    assert cache == "MISS"
    await assert_everything_current(proxy, intuit)


async def test_write_refused_for_authentication_purges_nothing(
    intuit: Intuit, proxy: Running
) -> None:
    await warm(proxy, intuit)
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    status, _ = await write(
        proxy,
        intuit,
        "invoice",
        new_invoice(customer["Id"]),
        auth={"Authorization": "Bearer forged"},
    )
    assert status == 401
    assert (await via(proxy, intuit, "SELECT * FROM Invoice"))[0] == "HIT"


async def test_batch_of_queries_is_answered_from_cache(intuit: Intuit, proxy: Running) -> None:
    await warm(proxy, intuit)
    batch = {
        "BatchItemRequest": [
            {"bId": "a", "Query": "SELECT * FROM Customer MAXRESULTS 3"},
            {"bId": "b", "Query": "SELECT COUNT(*) FROM Invoice"},
        ]
    }
    intuit.sandbox.reset_calls()
    status, headers, body = await proxy.post(
        f"{BASE}/batch", data=orjson.dumps(batch), headers={**intuit.auth(), **JSON}
    )
    assert (status, headers["X-Cache"]) == (200, "HIT")
    assert intuit.sandbox.count() == 0
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{intuit.url}{BASE}/batch", data=orjson.dumps(batch), headers={**intuit.auth(), **JSON}
        ) as response,
    ):
        assert without_time(body) == without_time(await response.read())


async def test_batch_with_a_write_purges(intuit: Intuit, proxy: Running) -> None:
    await warm(proxy, intuit)
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    batch = {
        "BatchItemRequest": [
            {"bId": "1", "operation": "create", "Invoice": new_invoice(customer["Id"])},
            {"bId": "2", "Query": "SELECT * FROM Customer MAXRESULTS 1"},
        ]
    }
    status, headers, _ = await proxy.post(
        f"{BASE}/batch", data=orjson.dumps(batch), headers={**intuit.auth(), **JSON}
    )
    assert (status, headers["X-Cache"]) == (200, "BYPASS")
    await assert_everything_current(proxy, intuit)


async def test_unreadable_batch_is_forwarded_and_purges_everything(
    intuit: Intuit, proxy: Running
) -> None:
    await warm(proxy, intuit)
    status, headers, _ = await proxy.post(
        f"{BASE}/batch", data=b"{not json", headers={**intuit.auth(), **JSON}
    )
    assert status == 400
    assert headers["X-Cache"] == "BYPASS"
    for entity in ("Customer", "Invoice", "Payment"):
        purges = proxy.registry.get_sample_value(
            "qbproxy_purges_total", {"entity": entity, "reason": "write"}
        )
        assert purges == 2, entity  # before forwarding and after Intuit answered
    # The first query refreshes all three tables with one CDC call (test_cdc.py).
    assert (await via(proxy, intuit, "SELECT * FROM Customer"))[0] == "MISS"
    await assert_everything_current(proxy, intuit)


@pytest.mark.parametrize("seed", range(8))
async def test_fill_racing_a_write_never_lands(intuit: Intuit, proxy: Running, seed: int) -> None:
    """Hold the Customer table load's page (computed before the write), create an invoice
    (which changes that customer's Balance), release: the old page must not be served
    afterwards. Even seeds release only after the write has returned to its client (the
    ordering that lands stale rows without the generation guard); odd seeds release after
    a random delay. The Customer table, not Invoice, because the created invoice itself is
    written through and would hide a stale Invoice load."""
    rng = random.Random(seed)
    gate = intuit.sandbox.pause(kind="query", entity="Customer")
    loading = asyncio.create_task(via(proxy, intuit, "SELECT * FROM Customer MAXRESULTS 1000"))
    await gate.wait_arrived()
    customer = intuit.sandbox.entities(REALM, "Customer")[rng.randrange(10)]
    writing = asyncio.create_task(write(proxy, intuit, "invoice", new_invoice(customer["Id"])))
    if seed % 2 == 0:
        await writing
    else:
        await asyncio.sleep(rng.uniform(0, 0.05))
    gate.release()
    await loading
    status, _ = await writing
    assert status == 200
    # Queries first: a read by id would refresh the one row a stale load got wrong.
    await assert_everything_current(proxy, intuit)
    _, after = await read(proxy, intuit, "customer", customer["Id"])
    assert after["Customer"]["Balance"] == customer["Balance"] + 150


async def test_two_instances_share_purges_and_single_flight(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    a = await proxy_for(intuit.url)
    b = await proxy_for(intuit.url)
    intuit.sandbox.latency_ms = 150
    texts = [f"SELECT * FROM Payment STARTPOSITION {i + 1} MAXRESULTS 2" for i in range(20)]
    results = await asyncio.gather(
        *(via(a if i % 2 else b, intuit, t) for i, t in enumerate(texts))
    )
    assert intuit.sandbox.count(kind="query", entity="Payment") == 1
    intuit.sandbox.latency_ms = 0
    for text, (_, answer) in zip(texts, results, strict=True):
        assert answer == await direct_query(intuit, text)
    # A write through A is seen by B's next read.
    await warm(b, intuit)
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    _, created = await write(a, intuit, "invoice", new_invoice(customer["Id"]))
    _, page = await via(b, intuit, f"SELECT * FROM Invoice WHERE Id = '{created['Invoice']['Id']}'")
    assert page["QueryResponse"]["Invoice"] == [created["Invoice"]]
    _, cust = await read(b, intuit, "customer", customer["Id"])
    assert cust == {"Customer": intuit.sandbox.get(REALM, "Customer", customer["Id"])}


async def test_mixed_workload_serves_no_stale_read(intuit: Intuit, proxy_for: ProxyFactory) -> None:
    """Clients on two instances read and write at once; every read that began after a write
    completed shows that write (checked against the fake's own history of SyncTokens)."""
    import time

    instances = [await proxy_for(intuit.url), await proxy_for(intuit.url)]
    intuit.sandbox.latency_ms = 5
    active = [c["Id"] for c in intuit.sandbox.entities(REALM, "Customer") if c.get("Active")]
    customers = active[:6]
    completed: dict[str, int] = {}  # customer id -> monotonic_ns its last write returned
    stale: list[str] = []

    async def client(n: int) -> None:
        rng = random.Random(n)
        proxy = instances[n % 2]
        for _ in range(15):
            cid = rng.choice(customers)
            if rng.random() < 0.3:
                current = intuit.sandbox.get(REALM, "Customer", cid)
                assert current is not None
                status, _ = await write(
                    proxy,
                    intuit,
                    "customer",
                    {
                        "Id": cid,
                        "SyncToken": current["SyncToken"],
                        "sparse": True,
                        "Notes": f"n{n}-{rng.random()}",
                    },
                )
                if status == 200:
                    completed[cid] = time.monotonic_ns()
                continue
            written_before = completed.get(cid)
            if rng.random() < 0.5:
                _, body = await read(proxy, intuit, "customer", cid)
                seen = body["Customer"]["SyncToken"]
            else:
                _, body = await via(proxy, intuit, f"SELECT * FROM Customer WHERE Id = '{cid}'")
                seen = body["QueryResponse"]["Customer"][0]["SyncToken"]
            if written_before is not None:
                expected_at_least = intuit.sandbox.sync_token_at(
                    REALM, "Customer", cid, written_before
                )
                assert expected_at_least is not None
                if int(seen) < int(expected_at_least):
                    stale.append(
                        f"customer {cid}: saw {seen}, write before read made {expected_at_least}"
                    )

    await asyncio.gather(*(client(n) for n in range(8)))
    assert stale == []


async def test_an_older_write_through_never_lands_over_a_newer_write(
    intuit: Intuit, proxy: Running
) -> None:
    """Write 1 is applied at Intuit but its answer is held; write 2 to the same customer
    completes; then write 1's answer arrives. A read after both must show write 2."""
    await warm(proxy, intuit)
    customer = next(c for c in intuit.sandbox.entities(REALM, "Customer") if c.get("Active"))

    def sparse(note: str) -> dict[str, Any]:
        current = intuit.sandbox.get(REALM, "Customer", customer["Id"])
        assert current is not None
        return {
            "Id": customer["Id"],
            "SyncToken": current["SyncToken"],
            "sparse": True,
            "Notes": note,
        }

    gate = intuit.sandbox.pause(kind="write", entity="Customer", stage="after")
    first = asyncio.create_task(write(proxy, intuit, "customer", sparse("first")))
    await gate.wait_arrived()
    status, second = await write(proxy, intuit, "customer", sparse("second"))
    assert status == 200
    gate.release()
    assert (await first)[0] == 200
    _, seen = await read(proxy, intuit, "customer", customer["Id"])
    assert seen["Customer"]["SyncToken"] == second["Customer"]["SyncToken"]
    assert seen["Customer"]["Notes"] == "second"

"""Answers kept in memory: served without Postgres while the table is complete, and gone
from every instance's memory before a write through any instance answers its client."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from qbproxy import cli
from tests.integration.conftest import REALM, Intuit, ProxyFactory, Running

BASE = f"/v3/company/{REALM}"
TEXT = "SELECT * FROM Customer ORDERBY DisplayName MAXRESULTS 50"


async def query(proxy: Running, intuit: Intuit, text: str = TEXT) -> tuple[str, Any]:
    status, headers, body = await proxy.get(
        f"{BASE}/query?query={quote(text)}", headers=intuit.auth()
    )
    assert status == 200, body
    doc = orjson.loads(body)
    doc.pop("time")
    return headers["X-Cache"], doc


def postgres_selects(proxy: Running) -> float:
    value = proxy.registry.get_sample_value(
        "qbproxy_store_duration_seconds_count", {"operation": "select"}
    )
    return value or 0.0


async def test_repeated_query_is_answered_from_memory(intuit: Intuit, proxy: Running) -> None:
    await query(proxy, intuit)  # MISS: loads the table
    first = await query(proxy, intuit)  # HIT from Postgres, kept in memory
    selects = postgres_selects(proxy)
    for _ in range(5):
        assert await query(proxy, intuit) == first
    assert first[0] == "HIT"
    assert postgres_selects(proxy) == selects  # no Postgres work for the memory hits
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    path = f"{BASE}/customer/{customer['Id']}"
    for _ in range(3):
        status, headers, body = await proxy.get(path, headers=intuit.auth())
        assert (status, headers["X-Cache"]) == (200, "HIT")
        assert orjson.loads(body)["Customer"] == customer


async def test_write_waits_until_other_instances_forget(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    """B's memory holds the customer page; a write through A must not answer until B has
    acknowledged the purge (held here), and B's next read shows the write."""
    a = await proxy_for(intuit.url)
    b = await proxy_for(intuit.url)
    for _ in range(3):
        await query(b, intuit)
    assert (await query(b, intuit))[0] == "HIT"
    customer = next(c for c in intuit.sandbox.entities(REALM, "Customer") if c.get("Active"))

    # Hold B's acknowledgements until released: B applies purges, but A cannot know.
    release = asyncio.Event()
    acknowledge = b.proxy.invalidation._ack

    async def late() -> None:
        await release.wait()
        await acknowledge()

    b.proxy.invalidation._ack = late  # type: ignore[method-assign]

    body = {
        "Id": customer["Id"],
        "SyncToken": customer["SyncToken"],
        "sparse": True,
        "DisplayName": customer["DisplayName"] + " Renamed",
    }
    writing = asyncio.create_task(
        a.post(
            f"{BASE}/customer",
            data=orjson.dumps(body),
            headers={**intuit.auth(), "Content-Type": "application/json"},
        )
    )
    await asyncio.sleep(0.3)
    assert not writing.done(), "the write answered before instance B forgot its memory"
    release.set()
    status, _, _ = await writing
    assert status == 200
    _, after = await query(b, intuit)
    names = [c["DisplayName"] for c in after["QueryResponse"]["Customer"]]
    assert customer["DisplayName"] not in names


async def test_memory_is_not_used_without_the_invalidation_channel(
    intuit: Intuit, proxy: Running
) -> None:
    await query(proxy, intuit)
    await query(proxy, intuit)
    selects = postgres_selects(proxy)
    await proxy.proxy.invalidation.close()  # the channel is down until it reconnects
    assert not proxy.proxy.invalidation.healthy
    assert (await query(proxy, intuit))[0] == "HIT"
    assert postgres_selects(proxy) == selects + 1  # answered from Postgres, not memory


async def test_qbproxy_purge_reaches_a_running_instances_memory(
    intuit: Intuit, proxy: Running, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`qbproxy purge` takes the one purge path writes and webhooks take: it NOTIFYs, and
    returns only once every live instance has dropped the tables from memory."""
    path = f"/v3/company/{REALM}/query?query={quote('select * from Customer')}"
    assert (await proxy.get(path, headers=intuit.auth()))[1]["X-Cache"] == "MISS"
    assert (await proxy.get(path, headers=intuit.auth()))[1]["X-Cache"] == "HIT"
    calls = intuit.sandbox.count(realm=REALM)
    monkeypatch.setenv("QBPROXY_DATABASE_DSN", pg_dsn)

    done = await asyncio.to_thread(cli.main, ["purge", "--realm", REALM, "--entity", "Customer"])

    assert done == 0
    assert proxy.proxy.memory.complete_generation(REALM, "Customer", proxy.proxy.clock()) is None
    assert (await proxy.get(path, headers=intuit.auth()))[1]["X-Cache"] != "HIT"
    assert intuit.sandbox.count(realm=REALM) > calls


@pytest.mark.parametrize("realm", ["1" * 40, "١٢٣", "abc"])
def test_qbproxy_purge_refuses_what_is_not_a_realm(
    realm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["purge", "--realm", realm])
    assert exc.value.code == 2
    assert "not a realm id" in capsys.readouterr().err

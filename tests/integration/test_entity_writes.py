"""Read-your-writes for every cached entity: after a write of each kind through the proxy
(a dependency edge of qbproxy/core/deps.py, narrow or "everything"), every table the
proxy answers from equals what the fake Intuit now holds. A narrow edge that missed a side
effect, or a purge that did not land, shows here as a HIT with the old rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from qbproxy.core.catalog import ENTITIES
from tests.integration.conftest import REALM, Intuit, Running, new_invoice

BASE = f"/v3/company/{REALM}"
Body = dict[str, Any]


def _sales_line(item: str, amount: float = 80.0, qty: float | None = None) -> Body:
    detail: Body = {"ItemRef": {"value": item}}
    if qty is not None:
        detail |= {"Qty": qty, "UnitPrice": amount / qty}
    return {"Amount": amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}


def _expense_line(account: str, amount: float) -> Body:
    return {
        "Amount": amount,
        "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account}},
    }


def _journal_line(posting: str, account: str, amount: float) -> Body:
    return {
        "Amount": amount,
        "DetailType": "JournalEntryLineDetail",
        "JournalEntryLineDetail": {"PostingType": posting, "AccountRef": {"value": account}},
    }


def writes(intuit: Intuit) -> dict[str, tuple[str, Callable[[], Body]]]:
    """(path segment, body) per edge, built from the seeded company."""
    customer = next(c for c in intuit.sandbox.entities(REALM, "Customer") if c["Active"])
    vendor = next(v for v in intuit.sandbox.entities(REALM, "Vendor") if v["Active"])
    cid, vid = customer["Id"], vendor["Id"]
    return {
        "customer create": ("customer", lambda: {"DisplayName": "Edge Customer"}),
        "vendor create": ("vendor", lambda: {"DisplayName": "Edge Vendor"}),
        "vendor update": (
            "vendor",
            lambda: (
                {"Id": vid, "SyncToken": _token(intuit, "Vendor", vid), "sparse": True}
                | {"CompanyName": "Edge Renamed"}
            ),
        ),
        "class create": ("class", lambda: {"Name": "Edge Class"}),
        "estimate create": (
            "estimate",
            lambda: {"CustomerRef": {"value": cid}, "Line": [_sales_line("1")]},
        ),
        "invoice create": ("invoice", lambda: new_invoice(cid, 95.0)),
        "bill create": (
            "bill",
            lambda: {
                "VendorRef": {"value": vid},
                "Line": [
                    _expense_line("18", 250.5),
                    {
                        "Amount": 125.0,
                        "DetailType": "ItemBasedExpenseLineDetail",
                        "ItemBasedExpenseLineDetail": {"ItemRef": {"value": "7"}, "Qty": 1},
                    },
                ],
            },
        ),
        "credit memo create": (
            "creditmemo",
            lambda: {"CustomerRef": {"value": cid}, "Line": [_sales_line("1", 40.0)]},
        ),
        "sales receipt create": ("salesreceipt", lambda: {"Line": [_sales_line("8", 9.0, 4)]}),
        "journal entry create": (
            "journalentry",
            lambda: {
                "Line": [_journal_line("Debit", "1", 33.0), _journal_line("Credit", "2", 33.0)]
            },
        ),
        "transfer create": (
            "transfer",
            lambda: {
                "FromAccountRef": {"value": "1"},
                "ToAccountRef": {"value": "2"},
                "Amount": 12,
            },
        ),
    }


def _token(intuit: Intuit, entity: str, entity_id: str) -> str:
    doc = intuit.sandbox.get(REALM, entity, entity_id)
    assert doc is not None
    token: str = doc["SyncToken"]
    return token


def everything(entity: str) -> str:
    """A query over the whole table (inactive rows too), as the proxy answers it."""
    spec_has_active = any(
        f.name == "Active" for e in ENTITIES if e.name == entity for f in e.fields
    )
    where = " WHERE Active IN (true, false)" if spec_has_active else ""
    return f"SELECT * FROM {entity}{where} MAXRESULTS 1000"


async def ask(proxy: Running, intuit: Intuit, text: str) -> tuple[str, Any]:
    status, headers, body = await proxy.get(
        f"{BASE}/query?query={quote(text)}&minorversion=75", headers=intuit.auth()
    )
    assert status == 200, body
    doc = orjson.loads(body)
    doc.pop("time", None)
    return headers["X-Cache"], doc


def truth(intuit: Intuit, entity: str) -> list[Body]:
    """The fake's rows in Id order, as the whole-table query returns them."""
    return sorted(intuit.sandbox.entities(REALM, entity), key=lambda d: int(d["Id"]))


@pytest.mark.parametrize(
    "edge",
    [
        "customer create",
        "vendor create",
        "vendor update",
        "class create",
        "estimate create",
        "invoice create",
        "bill create",
        "credit memo create",
        "sales receipt create",
        "journal entry create",
        "transfer create",
    ],
)
async def test_every_table_is_fresh_after_the_write(
    intuit: Intuit, proxy: Running, edge: str
) -> None:
    segment, body = writes(intuit)[edge]
    names = [e.name for e in ENTITIES]
    for name in names:  # warm: every table loaded, a stale answer ready to be served
        await ask(proxy, intuit, everything(name))
    before = {name: truth(intuit, name) for name in names}

    status, _, answer = await proxy.post(
        f"{BASE}/{segment}?minorversion=75",
        data=orjson.dumps(body()),
        headers={**intuit.auth(), "Content-Type": "application/json"},
    )
    assert status == 200, answer

    changed = [name for name in names if truth(intuit, name) != before[name]]
    assert changed  # the write did something
    for name in names:
        _, page = await ask(proxy, intuit, everything(name))
        assert page["QueryResponse"].get(name, []) == truth(intuit, name), (edge, name)

"""The fake Intuit over real HTTP: envelopes, query semantics, writes and their side effects,
batch, CDC, auth, throttling, fault injection and webhooks (qbo-api.md is the spec)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from fake_intuit import SANDBOX_KEY, Sandbox, SandboxConfig, create_app
from fake_intuit.cli import build_parser
from fake_intuit.webhooks import sign
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpClient

R1, R2 = "9130350000000001", "9130350000000002"
BODY_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-07:00$")
META_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-07:00$")
Doc = dict[str, Any]


@dataclass
class Resp:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class QBO:
    client: TestClient[web.Request, web.Application]
    sb: Sandbox
    realm: str = R1

    def auth(self, realm: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sb.token_for(realm or self.realm)}"}

    async def request(
        self, method: str, path: str, realm: str | None = None, **kwargs: Any
    ) -> Resp:
        if "headers" not in kwargs:
            kwargs["headers"] = self.auth(realm)
        url = f"/v3/company/{realm or self.realm}/{path}"
        async with self.client.request(method, url, **kwargs) as resp:
            return Resp(resp.status, CIMultiDict(resp.headers), await resp.read())

    async def get(self, path: str, **kwargs: Any) -> Resp:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, body: Any, **kwargs: Any) -> Resp:
        return await self.request("POST", path, data=orjson.dumps(body), **kwargs)

    async def query(self, text: str) -> Resp:
        return await self.get("query", params={"query": text, "minorversion": "75"})

    def balance(self, entity: str, id_: str) -> Decimal:
        doc = self.sb.get(self.realm, entity, id_)
        assert doc is not None
        return money(doc["Balance"])

    def truth(self, entity: str) -> list[Doc]:
        return self.sb.entities(self.realm, entity)


@pytest.fixture
async def qbo(aiohttp_client: AiohttpClient) -> QBO:
    app = create_app(SandboxConfig(realms=(R1, R2), customers_per_realm=40, seed=3))
    client = await aiohttp_client(app)
    return QBO(client, app[SANDBOX_KEY])


def ids(docs: list[Doc]) -> list[str]:
    return [d["Id"] for d in docs]


def by_id(docs: list[Doc]) -> list[Doc]:
    return sorted(docs, key=lambda d: int(d["Id"]))


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def open_balance(qbo: QBO, customer_id: str) -> Decimal:
    invoices = [i for i in qbo.truth("Invoice") if i["CustomerRef"]["value"] == customer_id]
    return sum((money(i["Balance"]) for i in invoices), Decimal(0))


# -- seed and envelopes -------------------------------------------------------------------
async def test_seed_is_realistic_and_consistent(qbo: QBO) -> None:
    customers = qbo.truth("Customer")
    assert len(customers) == 40
    assert 1 <= sum(not c["Active"] for c in customers) <= 10
    assert any("'" in c["DisplayName"] for c in customers)
    assert any(not c["DisplayName"].isascii() for c in customers)
    for entity in ("Customer", "Invoice", "Payment"):
        numbers = [int(i) for i in ids(qbo.truth(entity))]
        assert len(set(numbers)) == len(numbers)
        assert numbers[-1] - numbers[0] + 1 > len(numbers)  # not contiguous
    for c in customers:
        assert money(c["Balance"]) == open_balance(qbo, c["Id"])
    invoices = qbo.truth("Invoice")
    assert any(i["Balance"] == 0 for i in invoices)
    assert any(0 < i["Balance"] < i["TotalAmt"] for i in invoices)
    for pay in qbo.truth("Payment"):
        applied = sum((money(line["Amount"]) for line in pay["Line"]), Decimal(0))
        assert money(pay["TotalAmt"]) - applied == money(pay["UnappliedAmt"])
    dates = sorted(i["TxnDate"] for i in invoices)
    assert dt.date.fromisoformat(dates[-1]) - dt.date.fromisoformat(dates[0]) > dt.timedelta(
        days=365
    )


def test_same_seed_same_company() -> None:
    anchor = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    first = Sandbox(SandboxConfig(seed=5, anchor=anchor))
    second = Sandbox(SandboxConfig(seed=5, anchor=anchor))
    assert first.entities(R1, "Invoice") == second.entities(R1, "Invoice")
    assert first.entities(R1, "Customer") != first.entities(R2, "Customer")


async def test_read_envelope_and_headers(qbo: QBO) -> None:
    inactive = next(c for c in qbo.truth("Customer") if not c["Active"])
    first = await qbo.get(f"customer/{inactive['Id']}")  # a read returns inactive too
    second = await qbo.get(f"customer/{inactive['Id']}", params={"minorversion": "4"})
    assert first.status == second.status == 200
    assert first.headers["Content-Type"] == "application/json;charset=utf-8"
    assert first.headers["Cache-Control"] == (
        "max-age=0, no-cache, no-store, must-revalidate, private"
    )
    assert first.headers["intuit_tid"] != second.headers["intuit_tid"]
    body = first.json
    assert BODY_TIME.match(body["time"])
    doc = body["Customer"]
    assert doc == inactive
    assert (doc["domain"], doc["sparse"], doc["Active"]) == ("QBO", False, False)
    assert isinstance(doc["SyncToken"], str)
    assert doc["Id"].isdigit()
    assert META_TIME.match(doc["MetaData"]["CreateTime"])
    assert META_TIME.match(doc["MetaData"]["LastUpdatedTime"])


async def test_unknown_id_is_610(qbo: QBO) -> None:
    resp = await qbo.get("invoice/999999")
    assert resp.status == 400
    error = resp.json["Fault"]["Error"][0]
    assert (error["code"], error["Message"]) == ("610", "Object Not Found")
    assert resp.json["Fault"]["type"] == "ValidationFault"
    assert BODY_TIME.match(resp.json["time"])


async def test_other_endpoints(qbo: QBO) -> None:
    info = await qbo.get(f"companyinfo/{R1}")
    assert info.status == 200
    assert info.json["CompanyInfo"]["Country"] == "US"
    prefs = await qbo.get("preferences")
    assert prefs.json["Preferences"]["CurrencyPrefs"]["HomeCurrency"] == {"value": "USD"}
    report = await qbo.get("reports/ProfitAndLoss")
    assert report.json["Header"]["ReportName"] == "ProfitAndLoss"
    invoice = qbo.truth("Invoice")[0]
    pdf = await qbo.get(f"invoice/{invoice['Id']}/pdf")
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.body.startswith(b"%PDF-")
    assert pdf.body.rstrip().endswith(b"%%EOF")
    assert (await qbo.get("nosuchthing/1")).status == 404
    big = await qbo.get("reports/BigReport", params={"rows": "60000"})
    assert len(big.body) > 4_000_000
    assert len(big.json["Rows"]["Row"]) == 60000
    assert big.headers.get("Transfer-Encoding") == "chunked"


# -- query semantics ----------------------------------------------------------------------
@dataclass
class Case:
    name: str
    query: Callable[[QBO], str]
    expect: Callable[[QBO], list[str] | int | None]  # ids, a count, or None: empty page


def _active(q: QBO) -> list[Doc]:
    return by_id([c for c in q.truth("Customer") if c["Active"]])


def _apostrophe(q: QBO) -> Doc:
    return next(c for c in _active(q) if "'" in c["DisplayName"])


def _text_order(docs: list[Doc], key: str, desc: bool) -> list[str]:
    present = by_id([d for d in docs if d.get(key)])
    missing = by_id([d for d in docs if not d.get(key)])
    present.sort(key=lambda d: d[key].lower(), reverse=desc)
    return ids(missing + present if desc else present + missing)


def _email(q: QBO) -> str:
    address: str = next(c for c in _active(q) if "PrimaryEmailAddr" in c)["PrimaryEmailAddr"][
        "Address"
    ]
    return address


def _customer_of_many(q: QBO) -> str:
    refs = [i["CustomerRef"]["value"] for i in q.truth("Invoice")]
    most: str = max(set(refs), key=refs.count)
    return most


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


CASES = [
    Case(
        "default: active only, Id ascending",
        lambda q: "SELECT * FROM Customer",
        lambda q: ids(_active(q)),
    ),
    Case(
        "lower-case keywords and entity",
        lambda q: "select * from customer",
        lambda q: ids(_active(q)),
    ),
    Case(
        "Active = false",
        lambda q: "select * from Customer where Active = false",
        lambda q: ids(by_id([c for c in q.truth("Customer") if not c["Active"]])),
    ),
    Case(
        "Active IN (true, false)",
        lambda q: "select * from Customer where Active IN (true, false) maxresults 1000",
        lambda q: ids(by_id(q.truth("Customer"))),
    ),
    Case(
        "= is case-insensitive, \\' escapes",
        lambda q: (
            f"select * from Customer where DisplayName = "
            f"'{_escaped(_apostrophe(q)['DisplayName'].upper())}'"
        ),
        lambda q: [_apostrophe(q)["Id"]],
    ),
    Case(
        "LIKE prefix, case-insensitive",
        lambda q: (
            f"select * from Customer where DisplayName like "
            f"'{_escaped(_apostrophe(q)['DisplayName'][:3].lower())}%'"
        ),
        lambda q: ids(
            [
                c
                for c in _active(q)
                if c["DisplayName"].lower().startswith(_apostrophe(q)["DisplayName"][:3].lower())
            ]
        ),
    ),
    Case(
        "LIKE: _ is not a wildcard",
        lambda q: "select * from Customer where DisplayName LIKE '_%'",
        lambda q: None,
    ),
    Case(
        "IN on Id",
        lambda q: (
            f"select * from Customer where Id in ('{_active(q)[2]['Id']}', '{_active(q)[0]['Id']}')"
        ),
        lambda q: [_active(q)[0]["Id"], _active(q)[2]["Id"]],
    ),
    Case(
        "ORDER BY text DESC, lower-case order",
        lambda q: "select * from Customer order by DisplayName desc",
        lambda q: _text_order(_active(q), "DisplayName", True),
    ),
    Case(
        "ORDERBY with nulls last ascending",
        lambda q: "select * from Customer ORDERBY CompanyName",
        lambda q: _text_order(_active(q), "CompanyName", False),
    ),
    Case(
        "nulls first descending",
        lambda q: "select * from Customer ORDERBY CompanyName DESC",
        lambda q: _text_order(_active(q), "CompanyName", True),
    ),
    Case(
        "paging, MAXRESULTS before STARTPOSITION",
        lambda q: "select * from Customer MAXRESULTS 5 STARTPOSITION 3",
        lambda q: ids(_active(q))[2:7],
    ),
    Case("page past the end", lambda q: "select * from Customer startposition 500", lambda q: None),
    Case(
        "no match",
        lambda q: "select * from Customer where DisplayName = 'nobody at all'",
        lambda q: None,
    ),
    Case(
        "count ignores paging",
        lambda q: "SELECT COUNT(*) FROM Customer startposition 1 maxresults 1000",
        lambda q: len(_active(q)),
    ),
    Case(
        "count with where",
        lambda q: "select count(*) from Invoice where Balance = '0'",
        lambda q: sum(1 for i in q.truth("Invoice") if i["Balance"] == 0),
    ),
    Case(
        "ref compares its value",
        lambda q: (
            f"select * from Invoice where CustomerRef = '{_customer_of_many(q)}' maxresults 1000"
        ),
        lambda q: ids(
            by_id(
                [i for i in q.truth("Invoice") if i["CustomerRef"]["value"] == _customer_of_many(q)]
            )
        ),
    ),
    Case(
        "quoted money",
        lambda q: "select * from Invoice where Balance > '0' MAXRESULTS 1000",
        lambda q: ids(by_id([i for i in q.truth("Invoice") if i["Balance"] > 0])),
    ),
    Case(
        "dates, order by date desc",
        lambda q: (
            "select * from Invoice where TxnDate >= "
            f"'{sorted(i['TxnDate'] for i in q.truth('Invoice'))[30]}' orderby TxnDate desc"
        ),
        lambda q: ids(
            sorted(
                by_id(
                    [
                        i
                        for i in q.truth("Invoice")
                        if i["TxnDate"] >= sorted(j["TxnDate"] for j in q.truth("Invoice"))[30]
                    ]
                ),
                key=lambda i: i["TxnDate"],
                reverse=True,
            )
        ),
    ),
    Case(
        "Metadata.LastUpdatedTime as an instant, another offset",
        lambda q: (
            "select * from Payment where Metadata.LastUpdatedTime > "
            "'2000-01-01T00:00:00+14:00' maxresults 1000"
        ),
        lambda q: ids(by_id(q.truth("Payment"))),
    ),
    Case(
        "PrimaryEmailAddr compares its Address",
        lambda q: f"select * from Customer where PrimaryEmailAddr = '{_email(q).upper()}'",
        lambda q: [
            c["Id"] for c in _active(q) if c.get("PrimaryEmailAddr") == {"Address": _email(q)}
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_query_semantics(qbo: QBO, case: Case) -> None:
    resp = await qbo.query(case.query(qbo))
    assert resp.status == 200, resp.body
    response = resp.json["QueryResponse"]
    expected = case.expect(qbo)
    if expected is None:
        assert response == {}
    elif isinstance(expected, int):
        assert response == {"totalCount": expected}
    else:
        entity = next(k for k in response if k not in ("startPosition", "maxResults"))
        assert ids(response[entity]) == expected[:100]
        assert response["maxResults"] == len(response[entity])
        assert response["startPosition"] >= 1


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("select * from Foo", "4001"),
        ("select * from Customer where Notes = 'x'", "4001"),
        ("select * from Customer maxresults 1001", "4001"),
        ("select * from Invoice where CustomerRef LIKE '1%'", "4001"),
        ("select * from Customer where DisplayName = 'x' or Active = true", "4000"),
        ("select * from Customer where DisplayName != 'x'", "4000"),
        ("select * from Customer where DisplayName = 'unterminated", "4000"),
        ("select * from Invoice where Balance > 'lots'", "4000"),
        ("select * form Customer", "4000"),
        ("", "4000"),
    ],
)
async def test_query_errors(qbo: QBO, text: str, code: str) -> None:
    resp = await qbo.query(text)
    assert resp.status == 400
    assert resp.json["Fault"]["Error"][0]["code"] == code


async def test_post_query_projection_and_canonical_name(qbo: QBO) -> None:
    headers = qbo.auth() | {"Content-Type": "application/text"}
    resp = await qbo.request(
        "POST", "query", data=b"select Id, DisplayName from CUSTOMER maxresults 2", headers=headers
    )
    page = resp.json["QueryResponse"]
    assert list(page) == ["Customer", "startPosition", "maxResults"]
    assert page["Customer"][0]["sparse"] is True
    assert set(page["Customer"][0]) == {"Id", "DisplayName", "domain", "sparse"}
    assert qbo.sb.calls[-1].query is not None
    assert qbo.sb.calls[-1].entity == "Customer"


# -- writes and side effects --------------------------------------------------------------
async def _invoice(qbo: QBO, customer: str, amounts: list[float]) -> Doc:
    lines = [
        {
            "Amount": a,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
        }
        for a in amounts
    ]
    resp = await qbo.post("invoice", {"CustomerRef": {"value": customer}, "Line": lines})
    assert resp.status == 200, resp.body
    doc: Doc = resp.json["Invoice"]
    return doc


async def test_customer_create_and_validation(qbo: QBO) -> None:
    resp = await qbo.post("customer", {"DisplayName": "Zoë's Café & Bar"})
    doc = resp.json["Customer"]
    assert (doc["SyncToken"], doc["Active"], doc["Balance"]) == ("0", True, 0)
    assert doc["MetaData"]["CreateTime"] == doc["MetaData"]["LastUpdatedTime"]
    assert qbo.sb.get(R1, "Customer", doc["Id"]) == doc
    duplicate = await qbo.post("customer", {"DisplayName": "zoë's café & bar"})
    assert duplicate.json["Fault"]["Error"][0]["code"] == "6240"
    missing = await qbo.post("customer", {"Notes": "no name"})
    assert missing.json["Fault"]["Error"][0]["code"] == "2020"
    bad = await qbo.request("POST", "customer", data=b"{not json")
    assert bad.status == 400
    assert bad.json["Fault"]["Error"][0]["code"] == "2010"
    delete = await qbo.post(
        "customer", {"Id": doc["Id"], "SyncToken": "0"}, params={"operation": "delete"}
    )
    assert delete.status == 400


async def test_updates_full_sparse_stale(qbo: QBO) -> None:
    cust = _active(qbo)[0]
    sparse = await qbo.post(
        "customer",
        {"Id": cust["Id"], "SyncToken": cust["SyncToken"], "sparse": True, "CompanyName": "New Co"},
    )
    doc = sparse.json["Customer"]
    assert doc["CompanyName"] == "New Co"
    assert doc["DisplayName"] == cust["DisplayName"]
    assert int(doc["SyncToken"]) == int(cust["SyncToken"]) + 1
    stale = await qbo.post(
        "customer",
        {"Id": cust["Id"], "SyncToken": cust["SyncToken"], "sparse": True, "CompanyName": "Lost"},
    )
    assert stale.status == 400
    assert stale.json["Fault"]["Error"][0]["code"] == "5010"
    full = await qbo.post(
        "customer",
        {"Id": cust["Id"], "SyncToken": doc["SyncToken"], "DisplayName": "Renamed Fully"},
        params={"operation": "update"},
    )  # node-quickbooks style
    renamed = full.json["Customer"]
    assert "CompanyName" not in renamed
    assert renamed["FullyQualifiedName"] == "Renamed Fully"
    assert renamed["Balance"] == cust["Balance"]  # read-only, kept


async def test_invoice_lifecycle_moves_customer_balance(qbo: QBO) -> None:
    cust = _active(qbo)[0]
    before = money(cust["Balance"])
    inv = await _invoice(qbo, cust["Id"], [100, 50.25])
    assert (inv["TotalAmt"], inv["Balance"], inv["SyncToken"]) == (150.25, 150.25, "0")
    assert inv["CustomerRef"] == {"value": cust["Id"], "name": cust["DisplayName"]}
    assert inv["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    after_create = qbo.sb.get(R1, "Customer", cust["Id"])
    assert after_create is not None
    assert money(after_create["Balance"]) == before + Decimal("150.25")
    assert int(after_create["SyncToken"]) == int(cust["SyncToken"]) + 1
    update = await qbo.post(
        "invoice",
        {
            "Id": inv["Id"],
            "SyncToken": "0",
            "sparse": True,
            "Line": [{"Amount": 10, "DetailType": "SalesItemLineDetail"}],
        },
    )
    assert update.json["Invoice"]["TotalAmt"] == 10
    assert qbo.balance("Customer", cust["Id"]) == before + 10
    void = await qbo.post(
        "invoice", {"Id": inv["Id"], "SyncToken": "1"}, params={"operation": "void"}
    )
    voided = void.json["Invoice"]
    assert (voided["TotalAmt"], voided["Balance"], voided["PrivateNote"]) == (0, 0, "Voided")
    assert qbo.balance("Customer", cust["Id"]) == before
    sent = await qbo.request("POST", f"invoice/{inv['Id']}/send", params={"sendTo": "a@b.example"})
    assert sent.json["Invoice"]["EmailStatus"] == "EmailSent"
    delete = await qbo.post(
        "invoice", {"Id": inv["Id"], "SyncToken": "3"}, params={"operation": "delete"}
    )
    assert delete.json["Invoice"] == {"domain": "QBO", "status": "Deleted", "Id": inv["Id"]}
    assert (await qbo.get(f"invoice/{inv['Id']}")).status == 400


async def test_payment_applies_and_unapplies(qbo: QBO) -> None:
    cust = _active(qbo)[1]
    inv = await _invoice(qbo, cust["Id"], [200])
    base = qbo.balance("Customer", cust["Id"])
    resp = await qbo.post(
        "payment",
        {
            "CustomerRef": {"value": cust["Id"]},
            "TotalAmt": 150,
            "Line": [{"Amount": 120, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}],
        },
    )
    pay = resp.json["Payment"]
    assert pay["UnappliedAmt"] == 30
    linked = qbo.sb.get(R1, "Invoice", inv["Id"])
    assert linked is not None
    assert (linked["Balance"], linked["SyncToken"]) == (80, "1")  # the Invoice is bumped too
    assert linked["LinkedTxn"] == [{"TxnId": pay["Id"], "TxnType": "Payment"}]
    assert qbo.balance("Customer", cust["Id"]) == base - 120
    over = await qbo.post(
        "payment",
        {
            "CustomerRef": {"value": cust["Id"]},
            "TotalAmt": 500,
            "Line": [{"Amount": 500, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}],
        },
    )
    assert over.json["Fault"]["Error"][0]["code"] == "6000"
    void = await qbo.post(
        "payment",
        {"Id": pay["Id"], "SyncToken": "0", "sparse": True},
        params={"operation": "update", "include": "void"},
    )
    assert (void.json["Payment"]["TotalAmt"], void.json["Payment"]["PrivateNote"]) == (0, "Voided")
    assert qbo.balance("Invoice", inv["Id"]) == 200
    again = await qbo.post(
        "payment",
        {
            "CustomerRef": {"value": cust["Id"]},
            "TotalAmt": 200,
            "Line": [{"Amount": 200, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}],
        },
    )
    assert qbo.balance("Invoice", inv["Id"]) == 0
    gone = await qbo.post(
        "payment",
        {"Id": again.json["Payment"]["Id"], "SyncToken": "0"},
        params={"operation": "delete"},
    )
    assert gone.json["Payment"]["status"] == "Deleted"
    assert qbo.balance("Invoice", inv["Id"]) == 200
    assert qbo.balance("Customer", cust["Id"]) == base


async def test_write_reference_errors(qbo: QBO) -> None:
    missing = await qbo.post(
        "invoice",
        {
            "CustomerRef": {"value": "999999"},
            "Line": [{"Amount": 1, "DetailType": "SalesItemLineDetail"}],
        },
    )
    assert missing.json["Fault"]["Error"][0]["code"] == "2500"
    no_ref = await qbo.post("invoice", {"Line": []})
    assert no_ref.json["Fault"]["Error"][0]["code"] == "2020"


async def test_history_and_out_of_band(qbo: QBO) -> None:
    cust = _active(qbo)[0]
    before = time.monotonic_ns()
    doc = qbo.sb.mutate_out_of_band(R1, "Customer", cust["Id"], {"GivenName": "Edited"})
    assert int(doc["SyncToken"]) == int(cust["SyncToken"]) + 1
    assert qbo.sb.sync_token_at(R1, "Customer", cust["Id"], before) == cust["SyncToken"]
    assert (
        qbo.sb.sync_token_at(R1, "Customer", cust["Id"], time.monotonic_ns()) == (doc["SyncToken"])
    )
    assert qbo.sb.count() == 0  # not an API call


async def test_requestid_replays_the_first_answer(qbo: QBO) -> None:
    first = await qbo.post("customer", {"DisplayName": "Once Only"}, params={"requestid": "r1"})
    second = await qbo.post("customer", {"DisplayName": "Once Only"}, params={"requestid": "r1"})
    assert second.status == 200
    assert second.json == first.json


# -- batch and CDC ------------------------------------------------------------------------
async def test_batch(qbo: QBO) -> None:
    cust = _active(qbo)[0]
    items = [
        {"bId": "a", "operation": "create", "Customer": {"DisplayName": "Batch One"}},
        {
            "bId": "b",
            "operation": "update",
            "Customer": {"Id": cust["Id"], "SyncToken": "99", "sparse": True},
        },
        {"bId": "c", "Query": "select count(*) from Customer"},
    ]
    resp = await qbo.post("batch", {"BatchItemRequest": items})
    assert resp.status == 200
    out = {item["bId"]: item for item in resp.json["BatchItemResponse"]}
    assert out["a"]["Customer"]["DisplayName"] == "Batch One"
    assert out["b"]["Fault"]["Error"][0]["code"] == "5010"
    assert out["c"]["QueryResponse"]["totalCount"] == len(_active(qbo))
    too_many = [{"bId": str(n), "Query": "select * from Customer"} for n in range(31)]
    assert (await qbo.post("batch", {"BatchItemRequest": too_many})).status == 400
    assert qbo.sb.count(kind="batch") == 2


async def test_cdc_changes_and_tombstones(qbo: QBO) -> None:
    since = qbo.sb.clock.meta(qbo.sb.now() - 1)
    cust = _active(qbo)[0]
    inv = await _invoice(qbo, cust["Id"], [5])
    await qbo.post("invoice", {"Id": inv["Id"], "SyncToken": "0"}, params={"operation": "delete"})
    # node-quickbooks leaves "+hh:mm" unencoded; it arrives as a space.
    shifted = dt.datetime.fromisoformat(since).astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert "+02:00" in shifted.isoformat()
    url = f"/v3/company/{R1}/cdc?entities=Invoice,customer,Payment&changedSince=" + (
        shifted.isoformat()
    )
    async with qbo.client.get(url, headers=qbo.auth()) as raw:
        body = await raw.json(loads=orjson.loads)
    invoices, customers, payments = body["CDCResponse"][0]["QueryResponse"]
    assert invoices["Invoice"] == [
        {
            "domain": "QBO",
            "status": "Deleted",
            "Id": inv["Id"],
            "MetaData": {"LastUpdatedTime": invoices["Invoice"][0]["MetaData"]["LastUpdatedTime"]},
        }
    ]
    assert [c["Id"] for c in customers["Customer"]] == [cust["Id"]]
    assert payments == {}
    old = await qbo.get("cdc", params={"entities": "Customer", "changedSince": "2001-01-01"})
    assert old.status == 400


# -- auth, limits, faults -----------------------------------------------------------------
async def test_auth(qbo: QBO) -> None:
    none = await qbo.get("customer/1", headers={})
    assert none.status == 401
    assert none.headers["Www-Authenticate"] == 'Bearer realm="Intuit", error="invalid_token"'
    assert none.json["fault"]["error"][0]["code"] == "3200"
    other = await qbo.get("customer/1", headers=qbo.auth(R2))
    assert other.status == 403
    assert other.json["fault"]["error"][0]["code"] == "3100"
    unknown_realm = await qbo.get("customer/1", realm="123", headers=qbo.auth())
    assert unknown_realm.status == 403
    assert qbo.sb.count(realm=R1) == 2
    assert qbo.sb.calls[0].status == 401


async def test_concurrency_and_minute_limits(qbo: QBO) -> None:
    qbo.sb.max_concurrency_per_realm = 2
    gates = [qbo.sb.pause(kind="read", stage="before") for _ in range(2)]
    held = [asyncio.create_task(qbo.get(f"customer/{c['Id']}")) for c in _active(qbo)[:2]]
    for gate in gates:
        await gate.wait_arrived()
    throttled = await qbo.get("customer/1")
    assert throttled.status == 429
    assert "Retry-After" not in throttled.headers
    assert throttled.headers["Content-Type"].startswith("application/xml")
    assert b'<Error code="3001">' in throttled.body
    assert b"ThrottleExceeded" in throttled.body
    assert (await qbo.get("preferences", realm=R2, headers=qbo.auth(R2))).status == 200
    qbo.sb.release_all()
    assert [r.status for r in await asyncio.gather(*held)] == [200, 200]
    qbo.sb.max_requests_per_minute_per_realm = 4
    statuses = [(await qbo.get("preferences")).status for _ in range(3)]
    assert statuses == [200, 200, 429]  # four were already counted this minute


async def test_injected_faults(qbo: QBO) -> None:
    qbo.sb.fail_next(1, status=503, kind="query")
    assert (await qbo.get("preferences")).status == 200  # not a query: not taken
    failed = await qbo.query("select * from Customer")
    assert failed.status == 503
    assert failed.json["Fault"]["Error"][0]["code"] == "10000"
    assert (await qbo.query("select * from Customer")).status == 200
    qbo.sb.throttle_next(1)
    assert (await qbo.get("preferences")).status == 429
    qbo.sb.kill_mid_stream_next(entity="Customer")
    with pytest.raises(aiohttp.ClientPayloadError):
        await qbo.get(f"customer/{_active(qbo)[0]['Id']}")
    qbo.sb.latency_ms = 1
    assert (await qbo.get("preferences")).status == 200


async def test_gate_holds_a_query_page_that_raced_a_write(qbo: QBO) -> None:
    cust = _active(qbo)[0]
    gate = qbo.sb.pause(kind="query", entity="Customer", query="from customer")
    page = asyncio.create_task(qbo.query(f"select * from Customer where Id = '{cust['Id']}'"))
    held = await gate.wait_arrived()
    assert held.kind == "query"
    assert held.status is None
    write = await qbo.post(
        "customer",
        {"Id": cust["Id"], "SyncToken": cust["SyncToken"], "sparse": True, "GivenName": "After"},
    )
    assert write.status == 200  # writes pass while the query is held
    gate.release()
    stale = (await page).json["QueryResponse"]["Customer"][0]
    assert stale["SyncToken"] == cust["SyncToken"]  # computed before the write
    assert qbo.sb.count(kind="query", entity="Customer") == 1
    qbo.sb.reset_calls()
    assert qbo.sb.count() == 0


# -- webhooks -----------------------------------------------------------------------------
def test_signature_test_vector() -> None:
    assert sign(b'{"stuff":"5"}', "verify_me") == "nfPLN16u3vMvv08ghDs+dOkLuirEVDy5wAeG/lmM2OA="


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[str, bytes]]]]:
    got: list[tuple[str, bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((request.headers["intuit-signature"], await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/hook")), got
    await server.close()


async def test_webhooks_after_writes(
    qbo: QBO, receiver: tuple[str, list[tuple[str, bytes]]]
) -> None:
    url, got = receiver
    qbo.sb.webhook_url, qbo.sb.verifier_token = url, "verify_me"
    created = await qbo.post("customer", {"DisplayName": "Hooked"})
    await qbo.sb.drain_webhooks()
    signature, body = got[0]
    assert signature == sign(body, "verify_me")
    event = orjson.loads(body)["eventNotifications"][0]
    assert event["realmId"] == R1
    assert event["dataChangeEvent"]["entities"][0] | {"lastUpdated": ""} == {
        "name": "Customer",
        "id": created.json["Customer"]["Id"],
        "operation": "Create",
        "lastUpdated": "",
    }
    qbo.sb.send_cloudevents(R1, "invoice", "42", "Update")
    await qbo.sb.drain_webhooks()
    cloud = orjson.loads(got[1][1])[0]
    assert (cloud["type"], cloud["intuitentityid"], cloud["intuitaccountid"]) == (
        "qbo.invoice.updated.v1",
        "42",
        R1,
    )


def test_cli_parser() -> None:
    args = build_parser().parse_args(["--port", "9", "--realms", "2", "--latency-ms", "5"])
    assert args.realms == ("9130350000000001", "9130350000000002")
    assert (args.port, args.latency_ms) == (9, 5.0)


async def test_control_endpoints(qbo: QBO) -> None:
    await qbo.query("select * from Customer")
    async with qbo.client.get("/_sandbox/calls", params={"kind": "query"}) as resp:
        assert await resp.json() == {"count": 1, "by_kind": {"query": 1}}
    async with qbo.client.post("/_sandbox/settings", json={"latency_ms": 2}) as resp:
        assert resp.status == 200
    assert qbo.sb.latency_ms == 2
    cust = _active(qbo)[0]
    change = {"realm": R1, "entity": "customer", "id": cust["Id"], "changes": {"Notes": "x"}}
    async with qbo.client.post("/_sandbox/mutate", json=change) as resp:
        assert (await resp.json())["Notes"] == "x"
    params = {"realm": R1, "entity": "Customer", "id": cust["Id"]}
    async with qbo.client.get("/_sandbox/history", params=params) as resp:
        assert len(await resp.json()) == 2
    async with qbo.client.post("/_sandbox/reset") as resp:
        assert resp.status == 200
    assert qbo.sb.count() == 0
    assert qbo.sb.calls == []

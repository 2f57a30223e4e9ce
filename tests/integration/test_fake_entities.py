"""The fake Intuit's entities beyond Customer, Invoice and Payment, over real HTTP: seeded
and consistent, read by id, queried (WHERE, ORDERBY, paging, COUNT, projections), written
with their side effects (balances, QtyOnHand, SyncTokens), CDC and webhooks."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiohttp import web
from fake_intuit import SANDBOX_KEY, SandboxConfig, create_app
from fake_intuit.catalog import SPECS
from fake_intuit.ledger import postings
from pytest_aiohttp import AiohttpClient

from tests.integration.test_sandbox import QBO, R1, R2, Doc, money

ANCHOR = dt.datetime(2025, 3, 14, 15, 9, 26, tzinfo=dt.UTC)
NEW = [name for name in SPECS if name not in ("Customer", "Invoice", "Payment")]
LISTS = [n for n, s in SPECS.items() if s.family == "name"]


@pytest.fixture
async def qbo(aiohttp_client: AiohttpClient) -> QBO:
    app = create_app(SandboxConfig(realms=(R1, R2), customers_per_realm=40, seed=3))
    client = await aiohttp_client(app)
    return QBO(client, app[SANDBOX_KEY])


def total(values: list[Any]) -> Decimal:
    return sum((money(v) for v in values), Decimal(0))


async def rows(qbo: QBO, text: str) -> list[Doc]:
    resp = await qbo.query(text)
    assert resp.status == 200, resp.body
    answer = resp.json["QueryResponse"]
    return next((v for k, v in answer.items() if isinstance(v, list)), [])


async def fault_code(resp: Any) -> str:
    assert resp.status == 400, resp.body
    return str(resp.json["Fault"]["Error"][0]["code"])


# -- seed ------------------------------------------------------------------------------------
async def test_every_entity_is_seeded_in_intuit_shape(qbo: QBO) -> None:
    for entity in NEW:
        docs = qbo.truth(entity)
        assert docs, entity
        for doc in docs:
            assert doc["Id"].isdigit()
            assert doc["domain"] == "QBO"
            assert doc["sparse"] is False
            assert doc["SyncToken"].isdigit()
            assert set(doc["MetaData"]) == {"CreateTime", "LastUpdatedTime"}
            assert not any(v is None for v in doc.values()), (entity, doc)
    # Name lists have their own sequences; the invoices' items, terms and methods exist.
    assert [d["Id"] for d in qbo.truth("Term")][:3] == ["1", "2", "3"]
    items = {d["Id"]: d for d in qbo.truth("Item")}
    for inv in qbo.truth("Invoice"):
        for line in inv["Line"]:
            detail = line.get("SalesItemLineDetail")
            if detail:
                assert items[detail["ItemRef"]["value"]]["Name"] == detail["ItemRef"]["name"]
    accounts = {d["Id"]: d for d in qbo.truth("Account")}
    assert accounts["4"]["Name"] == "Undeposited Funds"
    # Transactions share one id sequence with invoices and payments.
    txn_ids = [
        d["Id"] for name, spec in SPECS.items() if spec.family == "txn" for d in qbo.truth(name)
    ]
    assert len(txn_ids) == len(set(txn_ids))


async def test_seeded_balances_add_up(qbo: QBO) -> None:
    data = qbo.sb.realms[R1]
    legs = postings(data)
    assert sum((p.amount for p in legs), Decimal(0)) == 0
    for vendor in qbo.truth("Vendor"):
        bills = [b for b in qbo.truth("Bill") if b["VendorRef"]["value"] == vendor["Id"]]
        credits = [c for c in qbo.truth("VendorCredit") if c["VendorRef"]["value"] == vendor["Id"]]
        owed = total([b["Balance"] for b in bills]) - total([c["Balance"] for c in credits])
        assert money(vendor["Balance"]) == owed
    for bill in qbo.truth("Bill"):
        paid = total(
            [
                line["Amount"]
                for pay in qbo.truth("BillPayment")
                for line in pay["Line"]
                if line["LinkedTxn"][0]["TxnId"] == bill["Id"]
            ]
        )
        assert money(bill["Balance"]) == money(bill["TotalAmt"]) - paid
    assert any(b["Balance"] == 0 for b in qbo.truth("Bill"))
    ap = next(a for a in qbo.truth("Account") if a["AccountType"] == "Accounts Payable")
    assert money(ap["CurrentBalance"]) == total([v["Balance"] for v in qbo.truth("Vendor")])
    # Seeded credit memos are refunded: customers' balances are their open invoices.
    for memo in qbo.truth("CreditMemo"):
        assert memo["Balance"] == 0


async def test_seed_depends_on_the_seed_only(aiohttp_client: AiohttpClient) -> None:
    def make() -> Any:
        return create_app(SandboxConfig(realms=(R1,), seed=5, anchor=ANCHOR))[SANDBOX_KEY]

    one, two = make(), make()
    for entity in NEW:
        assert one.entities(R1, entity) == two.entities(R1, entity)
    small = create_app(
        SandboxConfig(realms=(R1,), seed=5, anchor=ANCHOR, entity_counts={"Bill": 2, "Vendor": 3})
    )[SANDBOX_KEY]
    assert len(small.entities(R1, "Bill")) == 2
    assert len(small.entities(R1, "Vendor")) == 3
    # The first three entities do not depend on the others' counts.
    for entity in ("Customer", "Invoice", "Payment"):
        assert small.entities(R1, entity) == one.entities(R1, entity)


# -- reads and queries -------------------------------------------------------------------------
@pytest.mark.parametrize("entity", NEW)
async def test_read_by_id_and_missing_id(qbo: QBO, entity: str) -> None:
    if SPECS[entity].family == "single":
        return
    doc = qbo.truth(entity)[0]
    resp = await qbo.get(f"{entity.lower()}/{doc['Id']}")
    assert resp.status == 200
    assert resp.json[entity] == doc
    assert await fault_code(await qbo.get(f"{entity.lower()}/99999")) == "610"


@pytest.mark.parametrize("entity", NEW)
async def test_select_star_and_count_agree(qbo: QBO, entity: str) -> None:
    spec = SPECS[entity]
    found = await rows(qbo, f"select * from {entity.lower()} maxresults 1000")
    expected = [
        d for d in qbo.truth(entity) if not (spec.hides_inactive and d.get("Active") is False)
    ]
    assert [d["Id"] for d in found] == [d["Id"] for d in expected]
    count = await qbo.query(f"SELECT COUNT(*) FROM {entity}")
    assert count.json["QueryResponse"] == {"totalCount": len(expected)}


async def test_inactive_rows_per_entity_flag(qbo: QBO) -> None:
    for entity in ("Account", "Item", "Vendor", "Term", "PaymentMethod", "Class"):
        everything = qbo.truth(entity)
        inactive = [d["Id"] for d in everything if d["Active"] is False]
        assert inactive, entity
        shown = [d["Id"] for d in await rows(qbo, f"SELECT * FROM {entity}")]
        assert not set(inactive) & set(shown)
        hidden = await rows(qbo, f"SELECT * FROM {entity} WHERE Active = false")
        assert [d["Id"] for d in hidden] == inactive
    # TaxCode and TaxRate return inactive rows too (the fake's choice, README).
    for entity in ("TaxCode", "TaxRate"):
        shown = await rows(qbo, f"SELECT * FROM {entity}")
        assert any(d["Active"] is False for d in shown)
        assert len(shown) == len(qbo.truth(entity))


async def test_where_orderby_and_paging(qbo: QBO) -> None:
    vendor = qbo.truth("Bill")[0]["VendorRef"]["value"]
    bills = await rows(
        qbo, f"SELECT * FROM Bill WHERE VendorRef = '{vendor}' ORDERBY TotalAmt DESC"
    )
    expected = sorted(
        (b for b in qbo.truth("Bill") if b["VendorRef"]["value"] == vendor),
        key=lambda b: (-money(b["TotalAmt"]), int(b["Id"])),
    )
    assert [b["Id"] for b in bills] == [b["Id"] for b in expected]
    # Case-insensitive text, LIKE, lower-cased sort.
    name = qbo.truth("Vendor")[0]["DisplayName"]
    hit = await rows(qbo, f"SELECT * FROM Vendor WHERE DisplayName = '{name.upper()}'")
    assert [d["DisplayName"] for d in hit] == [name]
    banks = await rows(qbo, "select * from Account where AccountType = 'bank' orderby Name")
    assert [a["Name"] for a in banks] == ["Checking", "Savings"]
    like = await rows(qbo, "SELECT * FROM Item WHERE Name LIKE 's%' ORDERBY Name")
    assert [i["Name"] for i in like] == ["Services", "Sprinkler Heads"]
    page = await rows(qbo, "SELECT * FROM Account STARTPOSITION 3 MAXRESULTS 2")
    everything = await rows(qbo, "SELECT * FROM Account")
    assert page == everything[2:4]
    dated = await rows(qbo, "SELECT * FROM Purchase WHERE TxnDate >= '2000-01-01' ORDERBY TxnDate")
    assert [p["TxnDate"] for p in dated] == sorted(p["TxnDate"] for p in qbo.truth("Purchase"))
    checks = await rows(qbo, "SELECT * FROM BillPayment WHERE CheckPayment = '1'")
    assert checks
    assert all(p["PayType"] == "Check" for p in checks)


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM Account WHERE AcctNum = '1'",
        "SELECT * FROM Vendor WHERE PrimaryEmailAddr = 'x'",
        "SELECT * FROM Bill WHERE PrivateNote = 'x'",
        "SELECT * FROM Item ORDERBY UnitPrice",
        "SELECT * FROM Term WHERE DueDays = '30'",
    ],
)
async def test_unfilterable_fields_are_4001(qbo: QBO, text: str) -> None:
    assert await fault_code(await qbo.query(text)) == "4001"


async def test_projections_carry_only_the_named_fields(qbo: QBO) -> None:
    found = await rows(qbo, "SELECT Id, DisplayName FROM Vendor")
    assert found
    for doc in found:
        assert set(doc) == {"Id", "DisplayName", "domain", "sparse"}
        assert doc["sparse"] is True
        assert doc["domain"] == "QBO"
    items = await rows(qbo, "SELECT *, Sku FROM Item")  # python-quickbooks
    assert items[0] == next(i for i in qbo.truth("Item") if i["Id"] == items[0]["Id"])
    metas = await rows(qbo, "SELECT Id, MetaData.LastUpdatedTime FROM Account MAXRESULTS 3")
    assert [set(d) for d in metas] == [{"Id", "MetaData", "domain", "sparse"}] * 3


async def test_company_info_and_preferences(qbo: QBO) -> None:
    info = await qbo.get(f"companyinfo/{R1}")
    assert info.json["CompanyInfo"]["FiscalYearStartMonth"] == "January"
    queried = await rows(qbo, "select * from CompanyInfo")
    assert queried == [info.json["CompanyInfo"]]
    prefs = await qbo.get("preferences")
    assert prefs.json["Preferences"]["ReportPrefs"]["ReportBasis"] == "Accrual"
    assert await rows(qbo, "SELECT * FROM Preferences") == [prefs.json["Preferences"]]
    assert qbo.sb.count("read", entity="Preferences") == 1
    assert qbo.sb.count("read", entity="CompanyInfo") == 1
    # CompanyInfo is read-only; Preferences takes a sparse update.
    body = {"Id": "1", "SyncToken": info.json["CompanyInfo"]["SyncToken"], "sparse": True}
    assert await fault_code(await qbo.post("companyinfo", body | {"LegalName": "x"})) == "6000"
    token = prefs.json["Preferences"]["SyncToken"]
    update = {"Id": "1", "SyncToken": token, "sparse": True, "ReportPrefs": {"ReportBasis": "Cash"}}
    resp = await qbo.post("preferences", update)
    assert resp.status == 200
    assert resp.json["Preferences"]["SyncToken"] == str(int(token) + 1)
    assert qbo.sb.count("write", entity="Preferences") == 1


# -- writes and their side effects ----------------------------------------------------------------
def doc_of(qbo: QBO, entity: str, id_: str) -> Doc:
    doc = qbo.sb.get(qbo.realm, entity, id_)
    assert doc is not None
    return doc


async def cdc(qbo: QBO, entities: str, since: str) -> dict[str, list[Doc]]:
    resp = await qbo.get("cdc", params={"entities": entities, "changedSince": since})
    assert resp.status == 200, resp.body
    out: dict[str, list[Doc]] = {}
    for part in resp.json["CDCResponse"][0]["QueryResponse"]:
        for key, value in part.items():
            if isinstance(value, list):
                out[key] = value
    return out


async def test_bill_raises_vendor_and_ap_and_shows_in_cdc(qbo: QBO) -> None:
    since = qbo.sb.clock.meta(qbo.sb.now() - 1)
    vendor = next(v for v in qbo.truth("Vendor") if v["Active"])
    ap = doc_of(qbo, "Account", "7")
    body = {
        "VendorRef": {"value": vendor["Id"]},
        "Line": [
            {
                "Amount": 250.5,
                "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "18"}},
            },
            {
                "Amount": 1250,
                "ItemBasedExpenseLineDetail": {"ItemRef": {"value": "7"}, "Qty": 10},
            },
        ],
    }
    stock = doc_of(qbo, "Item", "7")
    resp = await qbo.post("bill", body)
    assert resp.status == 200, resp.body
    bill = resp.json["Bill"]
    assert (bill["TotalAmt"], bill["Balance"], bill["SyncToken"]) == (1500.5, 1500.5, "0")
    assert bill["VendorRef"] == {"value": vendor["Id"], "name": vendor["DisplayName"]}
    after = doc_of(qbo, "Vendor", vendor["Id"])
    assert money(after["Balance"]) == money(vendor["Balance"]) + Decimal("1500.50")
    assert int(after["SyncToken"]) == int(vendor["SyncToken"]) + 1
    ap_after = doc_of(qbo, "Account", "7")
    assert money(ap_after["CurrentBalance"]) == money(ap["CurrentBalance"]) + Decimal("1500.50")
    assert int(ap_after["SyncToken"]) == int(ap["SyncToken"]) + 1
    assert doc_of(qbo, "Item", "7")["QtyOnHand"] == stock["QtyOnHand"] + 10
    changed = await cdc(qbo, "Bill,Vendor,Account,Item", since)
    assert [d["Id"] for d in changed["Bill"]] == [bill["Id"]]
    assert [d["Id"] for d in changed["Vendor"]] == [vendor["Id"]]
    assert {"7", "5"} <= {d["Id"] for d in changed["Account"]}  # AP and Inventory Asset
    assert [d["Id"] for d in changed["Item"]] == ["7"]

    # A bill payment lowers the bill's balance, links it, and lowers the vendor's balance.
    pay = {
        "VendorRef": {"value": vendor["Id"]},
        "PayType": "Check",
        "CheckPayment": {"BankAccountRef": {"value": "1"}},
        "Line": [{"Amount": 500.5, "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}]}],
    }
    checking = doc_of(qbo, "Account", "1")
    resp = await qbo.post("billpayment", pay)
    assert resp.status == 200, resp.body
    paid = resp.json["BillPayment"]
    bill_now = doc_of(qbo, "Bill", bill["Id"])
    assert (bill_now["Balance"], bill_now["SyncToken"]) == (1000, "1")
    assert bill_now["LinkedTxn"] == [{"TxnId": paid["Id"], "TxnType": "BillPayment"}]
    assert money(doc_of(qbo, "Vendor", vendor["Id"])["Balance"]) == money(
        after["Balance"]
    ) - Decimal("500.50")
    assert money(doc_of(qbo, "Account", "1")["CurrentBalance"]) == money(
        checking["CurrentBalance"]
    ) - Decimal("500.50")
    # Void: the bill is open again; delete of a paid bill is refused.
    refused = await qbo.post(
        "bill", {"Id": bill["Id"], "SyncToken": "1"}, params={"operation": "delete"}
    )
    assert await fault_code(refused) == "6000"
    voided = await qbo.post(
        "billpayment", {"Id": paid["Id"], "SyncToken": "0"}, params={"operation": "void"}
    )
    assert voided.json["BillPayment"]["TotalAmt"] == 0
    assert doc_of(qbo, "Bill", bill["Id"])["Balance"] == 1500.5


async def test_deleting_a_bill_payment_reopens_its_bill(qbo: QBO) -> None:
    pay = qbo.truth("BillPayment")[0]
    bill_id = pay["Line"][0]["LinkedTxn"][0]["TxnId"]
    bill = doc_of(qbo, "Bill", bill_id)
    assert {"TxnId": pay["Id"], "TxnType": "BillPayment"} in bill["LinkedTxn"]
    stub = {"Id": pay["Id"], "SyncToken": pay["SyncToken"]}
    resp = await qbo.post("billpayment", stub, params={"operation": "delete"})
    assert resp.json["BillPayment"]["status"] == "Deleted"
    after = doc_of(qbo, "Bill", bill_id)
    assert money(after["Balance"]) == money(bill["Balance"]) + money(pay["Line"][0]["Amount"])
    assert "LinkedTxn" not in after or pay["Id"] not in str(after["LinkedTxn"])
    assert int(after["SyncToken"]) == int(bill["SyncToken"]) + 1


async def test_credit_memo_lowers_customer_balance(qbo: QBO) -> None:
    customer = next(c for c in qbo.truth("Customer") if c["Active"])
    ar = doc_of(qbo, "Account", "3")
    body = {
        "CustomerRef": {"value": customer["Id"]},
        "Line": [
            {
                "Amount": 80,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
            }
        ],
    }
    resp = await qbo.post("creditmemo", body)
    assert resp.status == 200, resp.body
    memo = resp.json["CreditMemo"]
    assert (memo["TotalAmt"], memo["Balance"], memo["RemainingCredit"]) == (80, 80, 80)
    after = doc_of(qbo, "Customer", customer["Id"])
    assert money(after["Balance"]) == money(customer["Balance"]) - 80
    assert int(after["SyncToken"]) == int(customer["SyncToken"]) + 1
    assert money(doc_of(qbo, "Account", "3")["CurrentBalance"]) == money(ar["CurrentBalance"]) - 80
    # Refunding it brings the customer's balance back.
    refund = {
        "CustomerRef": {"value": customer["Id"]},
        "Line": [dict(memo["Line"][0])],
        "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}],
    }
    assert (await qbo.post("refundreceipt", refund)).status == 200
    assert doc_of(qbo, "CreditMemo", memo["Id"])["Balance"] == 0
    assert money(doc_of(qbo, "Customer", customer["Id"])["Balance"]) == money(customer["Balance"])


async def test_credit_memo_applied_to_an_invoice_through_a_payment(qbo: QBO) -> None:
    invoice = next(i for i in qbo.truth("Invoice") if i["Balance"] >= 50)
    customer = invoice["CustomerRef"]["value"]
    before = doc_of(qbo, "Customer", customer)
    line = {
        "Amount": 50,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
    }
    memo = await qbo.post("creditmemo", {"CustomerRef": {"value": customer}, "Line": [line]})
    memo_id = memo.json["CreditMemo"]["Id"]
    lowered = money(before["Balance"]) - 50
    assert money(doc_of(qbo, "Customer", customer)["Balance"]) == lowered
    pay = {
        "CustomerRef": {"value": customer},
        "TotalAmt": 0,
        "Line": [
            {"Amount": 50, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]},
            {"Amount": 50, "LinkedTxn": [{"TxnId": memo_id, "TxnType": "CreditMemo"}]},
        ],
    }
    resp = await qbo.post("payment", pay)
    assert resp.status == 200, resp.body
    assert resp.json["Payment"]["UnappliedAmt"] == 0
    assert money(doc_of(qbo, "Invoice", invoice["Id"])["Balance"]) == money(invoice["Balance"]) - 50
    assert doc_of(qbo, "CreditMemo", memo_id)["Balance"] == 0
    assert money(doc_of(qbo, "Customer", customer)["Balance"]) == lowered
    again = await qbo.post("payment", pay)  # the credit is used up
    assert await fault_code(again) == "6000"


async def test_sales_receipt_moves_stock_and_undeposited_funds(qbo: QBO) -> None:
    stock = doc_of(qbo, "Item", "8")
    funds = doc_of(qbo, "Account", "4")
    line = {
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "8"}, "Qty": 4, "UnitPrice": 2.25},
    }
    resp = await qbo.post("salesreceipt", {"Line": [line]})
    assert resp.status == 200, resp.body
    receipt = resp.json["SalesReceipt"]
    assert receipt["TotalAmt"] == 9
    assert receipt["DepositToAccountRef"]["value"] == "4"
    assert doc_of(qbo, "Item", "8")["QtyOnHand"] == stock["QtyOnHand"] - 4
    assert (
        money(doc_of(qbo, "Account", "4")["CurrentBalance"]) == money(funds["CurrentBalance"]) + 9
    )
    voided = await qbo.post(
        "salesreceipt",
        {"Id": receipt["Id"], "SyncToken": "0", "sparse": True},
        params={"operation": "update", "include": "void"},
    )
    assert voided.json["SalesReceipt"]["PrivateNote"] == "Voided"
    assert doc_of(qbo, "Item", "8")["QtyOnHand"] == stock["QtyOnHand"]
    assert doc_of(qbo, "Account", "4")["CurrentBalance"] == funds["CurrentBalance"]


async def test_journal_entry_transfer_and_delete(qbo: QBO) -> None:
    unbalanced = {
        "Line": [
            {
                "Amount": 10,
                "JournalEntryLineDetail": {"PostingType": "Debit", "AccountRef": {"value": "1"}},
            }
        ]
    }
    assert await fault_code(await qbo.post("journalentry", unbalanced)) == "6000"
    checking, savings = doc_of(qbo, "Account", "1"), doc_of(qbo, "Account", "2")
    resp = await qbo.post(
        "transfer",
        {"FromAccountRef": {"value": "1"}, "ToAccountRef": {"value": "2"}, "Amount": 75},
    )
    assert resp.status == 200
    transfer = resp.json["Transfer"]
    assert (
        money(doc_of(qbo, "Account", "2")["CurrentBalance"])
        == money(savings["CurrentBalance"]) + 75
    )
    since = qbo.sb.clock.meta(qbo.sb.now() - 1)
    gone = await qbo.post(
        "transfer", {"Id": transfer["Id"], "SyncToken": "0"}, params={"operation": "delete"}
    )
    assert gone.json["Transfer"] == {"domain": "QBO", "status": "Deleted", "Id": transfer["Id"]}
    assert doc_of(qbo, "Account", "1")["CurrentBalance"] == checking["CurrentBalance"]
    changed = await cdc(qbo, "Transfer", since)
    assert changed["Transfer"][0]["status"] == "Deleted"
    assert await fault_code(await qbo.get(f"transfer/{transfer['Id']}")) == "610"


@pytest.mark.parametrize("entity", LISTS)
async def test_name_lists_are_made_inactive_not_deleted(qbo: QBO, entity: str) -> None:
    doc = next(d for d in qbo.truth(entity) if d.get("Active"))
    stub = {"Id": doc["Id"], "SyncToken": doc["SyncToken"]}
    refused = await qbo.post(entity.lower(), stub, params={"operation": "delete"})
    assert await fault_code(refused) == "6000"
    resp = await qbo.post(entity.lower(), stub | {"sparse": True, "Active": False})
    if not SPECS[entity].writable:
        assert await fault_code(resp) == "6000"
        return
    assert resp.status == 200, resp.body
    assert resp.json[entity]["Active"] is False
    found = await rows(qbo, f"SELECT * FROM {entity} WHERE Id = '{doc['Id']}'")
    assert found == []
    assert (await qbo.get(f"{entity.lower()}/{doc['Id']}")).json[entity]["Active"] is False


async def test_creates_validate_and_name_lists_are_unique(qbo: QBO) -> None:
    resp = await qbo.post("vendor", {"DisplayName": "Brand New Supplier"})
    assert resp.status == 200
    vendor = resp.json["Vendor"]
    assert (vendor["Balance"], vendor["Active"], vendor["SyncToken"]) == (0, True, "0")
    assert int(vendor["Id"]) == max(int(v["Id"]) for v in qbo.truth("Vendor"))
    again = await qbo.post("vendor", {"DisplayName": "brand new supplier"})
    assert await fault_code(again) == "6240"
    bad_ref = {"VendorRef": {"value": "9999"}, "Line": []}
    assert await fault_code(await qbo.post("bill", bad_ref)) in ("2020", "2500")
    assert await fault_code(await qbo.post("taxcode", {"Name": "New"})) == "6000"
    item = await qbo.post("item", {"Name": "Widget", "Type": "Inventory", "QtyOnHand": 12})
    assert item.json["Item"]["QtyOnHand"] == 12
    account = await qbo.post("account", {"Name": "Petty", "AccountType": "Bank"})
    assert account.json["Account"]["Classification"] == "Asset"
    # Full update: unsent writable fields become empty; the derived ones stay.
    full = await qbo.post(
        "vendor",
        {"Id": vendor["Id"], "SyncToken": "0", "DisplayName": "Renamed Supplier"},
    )
    assert full.json["Vendor"]["DisplayName"] == "Renamed Supplier"
    assert full.json["Vendor"]["Balance"] == 0
    stale = await qbo.post("vendor", {"Id": vendor["Id"], "SyncToken": "0", "sparse": True})
    assert await fault_code(stale) == "5010"


async def test_batch_and_webhooks_cover_new_entities(aiohttp_client: AiohttpClient) -> None:
    received: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response()

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    listener = await aiohttp_client(receiver)
    app = create_app(SandboxConfig(realms=(R1,), customers_per_realm=10, seed=3))
    qbo = QBO(await aiohttp_client(app), app[SANDBOX_KEY])
    qbo.sb.webhook_url = str(listener.make_url("/hook"))
    batch = {
        "BatchItemRequest": [
            {"bId": "1", "operation": "create", "Term": {"Name": "Net 45", "DueDays": 45}},
            {"bId": "2", "Query": "SELECT COUNT(*) FROM Term WHERE Active IN (true, false)"},
        ]
    }
    resp = await qbo.post("batch", batch)
    items = resp.json["BatchItemResponse"]
    assert items[0]["Term"]["Name"] == "Net 45"
    assert items[1]["QueryResponse"]["totalCount"] == 5  # the fake runs items in order
    attachable = {"FileName": "x.pdf", "Note": "a note"}
    assert (await qbo.post("attachable", attachable)).status == 200  # no webhook
    await qbo.sb.drain_webhooks()
    await asyncio.sleep(0)
    events = [orjson.loads(body)["eventNotifications"][0] for body in received]
    names = [e["dataChangeEvent"]["entities"][0]["name"] for e in events]
    assert names == ["Term"]


async def test_preferences_update_shows_in_cdc(qbo: QBO) -> None:
    since = qbo.sb.clock.meta(qbo.sb.now() - 1)
    prefs = doc_of(qbo, "Preferences", "1")
    body = {"Id": "1", "SyncToken": prefs["SyncToken"], "sparse": True}
    body["SalesFormsPrefs"] = prefs["SalesFormsPrefs"] | {"AllowDiscount": False}
    assert (await qbo.post("preferences", body)).status == 200
    changed = await cdc(qbo, "Preferences,CompanyInfo", since)
    assert [d["Id"] for d in changed["Preferences"]] == ["1"]
    assert "CompanyInfo" not in changed


async def test_cdc_excluded_entities_are_refused(qbo: QBO) -> None:
    since = qbo.sb.clock.meta(qbo.sb.now() - 86_400)
    for name in ("TimeActivity", "TaxCode", "TaxRate", "JournalCode", "TaxAgency"):
        resp = await qbo.get("cdc", params={"entities": f"Vendor,{name}", "changedSince": since})
        assert await fault_code(resp) == "4001"
    resp = await qbo.get("cdc", params={"entities": "Vendor,Account", "changedSince": since})
    assert len(resp.json["CDCResponse"][0]["QueryResponse"]) == 2


@pytest.mark.parametrize(
    ("entity", "body"),
    [
        ("bill", {"VendorRef": "3", "Line": "x"}),
        ("bill", {"VendorRef": {"value": "1"}, "Line": ["x"]}),
        ("transfer", {"FromAccountRef": {"value": "1"}, "ToAccountRef": {"value": "2"}}),
        (
            "transfer",
            {"FromAccountRef": {"value": "1"}, "ToAccountRef": {"value": "2"}, "Amount": "x"},
        ),
        ("journalentry", {"Line": [{"Amount": "x"}]}),
        ("item", {"Name": "Odd", "UnitPrice": "abc"}),
        ("timeactivity", {"EmployeeRef": {"value": "1"}, "Hours": "many"}),
        ("deposit", {"Line": [{"Amount": 5, "LinkedTxn": [{"TxnId": "1", "TxnType": "Bill"}]}]}),
        ("billpayment", {"VendorRef": {"value": "1"}, "PayType": "Check", "Line": [{"Amount": 1}]}),
        ("account", {"Name": "No type"}),
    ],
)
async def test_bad_bodies_are_400_faults(qbo: QBO, entity: str, body: Doc) -> None:
    before = {name: qbo.truth(name) for name in ("Account", "Vendor", "Item")}
    resp = await qbo.post(entity, body)
    assert await fault_code(resp) in ("2010", "2020", "2500", "6000")
    assert {name: qbo.truth(name) for name in before} == before


def test_unknown_entity_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="Widget"):
        SandboxConfig(entity_counts={"Widget": 3})

"""How the assistant trace's requests look (node-quickbooks as Intuit's MCP server drives it,
a community connector, python-quickbooks), what the generator knows of each company, and the
report parameters assistants send. Used by bench/assistant.py and bench/assistant_writes.py."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fake_intuit import Sandbox

from bench.trace import Call, Company

# The 27 entities apps read (issue 13), CompanyInfo and Preferences apart.
ENTITIES = (
    "Customer",
    "Invoice",
    "Payment",
    "Account",
    "Item",
    "Vendor",
    "Bill",
    "BillPayment",
    "Estimate",
    "CreditMemo",
    "SalesReceipt",
    "RefundReceipt",
    "Deposit",
    "Purchase",
    "PurchaseOrder",
    "JournalEntry",
    "Employee",
    "Class",
    "Department",
    "Term",
    "PaymentMethod",
    "TaxCode",
    "TaxRate",
    "VendorCredit",
    "Transfer",
    "TimeActivity",
    "Attachable",
)
REPORTS = (
    "BalanceSheet",
    "ProfitAndLoss",
    "CashFlow",
    "TrialBalance",
    "GeneralLedger",
    "CustomerSales",
    "CustomerBalance",
    "AgedReceivables",
    "AgedReceivableDetail",
    "AgedPayables",
    "VendorExpenses",
    "TransactionList",
)

# Accounts of the fake's chart (fake_intuit/seed_more.py CHART): ids are positions.
CHECKING, SAVINGS, UNDEPOSITED, AP, SERVICES_INCOME = "1", "2", "4", "7", "12"
EXPENSE_ACCOUNTS = ("16", "17", "18", "19", "20")
SERVICE_ITEMS = (("1", 100.0), ("2", 75.0), ("3", 120.0), ("4", 35.0))
INVENTORY_ITEM = "7"


# -- requests in each client's style ------------------------------------------------------------
class NodeClient:
    """node-quickbooks, as Intuit's MCP server drives it."""

    def __init__(self, realm: str, minor: str) -> None:
        self.base, self.realm, self.minor = f"/v3/company/{realm}", realm, minor

    def tail(self) -> str:
        return f"minorversion={self.minor}&format=json"

    def find(self, entity: str, where: str = "", order: str = "", count: bool = False) -> Call:
        head = "select count(*) from " if count else "select * from "
        text = head + entity.lower() + (f" where {where}" if where else "")
        text += (f" orderby {order} desc" if order else "") + " startposition 1 maxresults 1000"
        # node-quickbooks escapes % ' = < > & # \\ + itself; the HTTP client encodes spaces.
        return Call("query", "GET", f"{self.base}/query?query={_node_encode(text)}&{self.tail()}")

    def get(self, entity: str, id_: str) -> Call:
        path = f"{self.base}/{entity.lower()}/{id_}?{self.tail()}"
        return Call("read", "GET", path, entity=entity, id=id_)

    def company_info(self) -> Call:
        path = f"{self.base}/companyinfo/{self.realm}?{self.tail()}"
        return Call("read", "GET", path, entity="CompanyInfo", id=self.realm)

    def preferences(self) -> Call:
        return Call("read", "GET", f"{self.base}/preferences?{self.tail()}", entity="Preferences")

    def report(self, name: str, params: Sequence[tuple[str, str]]) -> Call:
        criteria = "".join(f"{k}={quote(v, safe='')}&" for k, v in params)
        path = f"{self.base}/reports/{name}?{criteria}&{self.tail()}"
        return Call("report", "GET", path, entity=name)

    def write(
        self,
        entity: str,
        recipe: str,
        body: dict[str, Any],
        *,
        id_: str | None = None,
        read: str | None = None,
        **extra: Any,
    ) -> Call:
        update = recipe == "sparse_update"
        path = f"{self.base}/{entity.lower()}?" + ("operation=update&" if update else "")
        read_entity = read or entity
        read_path = None
        if id_ is not None:
            read_path = f"{self.base}/{read_entity.lower()}/{id_}?{self.tail()}"
        data = {"recipe": recipe, "body": body, "read_entity": read_entity, **extra}
        return Call(
            "write",
            "POST",
            path + self.tail(),
            entity=entity,
            id=id_,
            read_path=read_path,
            data=data,
        )


def _node_encode(text: str) -> str:
    for char, code in (("%", "%25"), ("'", "%27"), ("=", "%3D"), ("<", "%3C"), (">", "%3E")):
        text = text.replace(char, code)
    return text.replace(" ", "%20")


class ConnectorClient:
    """A community connector on requests (GET, `+`), and python-quickbooks for items."""

    def __init__(self, realm: str) -> None:
        self.base = f"/v3/company/{realm}"

    def query(self, text: str) -> Call:
        return Call("query", "GET", f"{self.base}/query?{urlencode({'query': text})}")

    def items_with_sku(self, start: int) -> Call:
        text = f"SELECT *, Sku FROM Item STARTPOSITION {start} MAXRESULTS 100"
        return Call("query", "POST", f"{self.base}/query?minorversion=75", body=text)

    def report(self, name: str, params: Sequence[tuple[str, str]]) -> Call:
        query = urlencode([*params, ("minorversion", "75")])
        return Call("report", "GET", f"{self.base}/reports/{name}?{query}", entity=name)


# -- what the generator knows about the companies -----------------------------------------------
@dataclass(slots=True)
class Realm:
    ids: dict[str, list[str]]  # entity -> every Id (inactive too)
    count: dict[str, int]  # entity -> rows a plain SELECT * returns (what pages cover)
    customers: list[str]  # active
    vendors: list[str]  # active
    employees: list[str]
    open_bills: list[tuple[str, str]]  # (bill Id, vendor Id)
    open_invoices: list[tuple[str, str]]  # (invoice Id, customer Id)


def survey(company: Company) -> dict[str, Realm]:
    sandbox = Sandbox(company.sandbox_config())
    out = {}
    for realm in company.realms:
        ids, count = {}, {}
        for entity in ENTITIES:
            docs = sandbox.entities(realm, entity)
            ids[entity] = [d["Id"] for d in docs]
            count[entity] = sum(1 for d in docs if d.get("Active", True))
        active = {
            e: [d["Id"] for d in sandbox.entities(realm, e) if d.get("Active", True)]
            for e in ("Customer", "Vendor", "Employee")
        }
        bills = [
            (b["Id"], b["VendorRef"]["value"])
            for b in sandbox.entities(realm, "Bill")
            if b["Balance"] > 0 and b["VendorRef"]["value"] in active["Vendor"]
        ]
        invoices = [
            (i["Id"], i["CustomerRef"]["value"])
            for i in sandbox.entities(realm, "Invoice")
            if i["Balance"] > 0
        ]
        out[realm] = Realm(
            ids,
            count,
            active["Customer"],
            active["Vendor"],
            active["Employee"],
            bills,
            invoices,
        )
    return out


# -- report parameters --------------------------------------------------------------------------
def report_params(name: str, today: dt.date, rng: random.Random) -> list[tuple[str, str]]:
    """One of the parameter sets an assistant or connector sends for report `name`."""
    year = f"{today.year}-01-01"
    quarter = (today - dt.timedelta(days=90)).isoformat()
    end = today.isoformat()
    aging = [("report_date", end), ("days_per_aging_period", "30"), ("num_periods", "4")]
    variants: dict[str, list[list[tuple[str, str]]]] = {
        "BalanceSheet": [
            [("date_macro", "This Fiscal Year-to-date")],
            [("start_date", year), ("end_date", end), ("accounting_method", "Accrual")],
            [("start_date", year), ("end_date", end), ("summarize_column_by", "Month")],
            [("start_date", year), ("end_date", end), ("accounting_method", "Cash")],
        ],
        "ProfitAndLoss": [
            [("start_date", year), ("end_date", end)],
            [("start_date", year), ("end_date", end), ("summarize_column_by", "Month")],
            [("start_date", quarter), ("end_date", end), ("accounting_method", "Cash")],
            [("date_macro", "Last Fiscal Year"), ("accounting_method", "Accrual")],
        ],
        "CashFlow": [
            [("start_date", year), ("end_date", end)],
            [("date_macro", "This Fiscal Year-to-date")],
        ],
        "TrialBalance": [
            [("start_date", year), ("end_date", end)],
            [("start_date", year), ("end_date", end), ("accounting_method", "Cash")],
        ],
        "GeneralLedger": [
            [("start_date", quarter), ("end_date", end), ("accounting_method", "Accrual")],
            [("start_date", year), ("end_date", end)],
        ],
        "CustomerSales": [
            [("start_date", year), ("end_date", end)],
            [("start_date", year), ("end_date", end), ("summarize_column_by", "Month")],
        ],
        "CustomerBalance": [[("report_date", end)], [("report_date", end), ("arpaid", "All")], []],
        "AgedReceivables": [aging, [("report_date", end)], []],
        "AgedReceivableDetail": [aging, [("report_date", end), ("aging_period", "30")]],
        "AgedPayables": [aging, [("report_date", end)], []],
        "VendorExpenses": [
            [("start_date", year), ("end_date", end)],
            [("start_date", quarter), ("end_date", end), ("accounting_method", "Cash")],
        ],
        "TransactionList": [
            [("start_date", quarter), ("end_date", end)],
            [("date_macro", "Last Month")],
        ],
    }
    return rng.choice(variants[name])

"""Assistant traffic: a seeded generator of what an MCP-style assistant and community
connectors send to QBO (qbo-api.md "Who reads what"), as a `trace.Trace` of kind "assistant".

- Intuit's MCP server drives node-quickbooks: GET `query?query=select * from vendor
  startposition 1 maxresults 1000&minorversion=75&format=json` (lower-case entity, `%20`),
  `select count(*) from bill ...`, criteria (`where VendorRef = '3'`), reads by id,
  `companyinfo/{realm}`, `preferences`, and `reports/{Name}?k=v&` + `&minorversion=..&format=json`
  (node-quickbooks' reportCriteria leaves a trailing `&`) with the parameters it sends
  (date_macro, start/end dates, accounting_method, summarize_column_by, report_date,
  days_per_aging_period, num_periods, arpaid).
- Community connectors: projections in pages of 100 (`SELECT Id, DisplayName FROM Vendor
  STARTPOSITION 1 MAXRESULTS 100`, GET with `+`), python-quickbooks' `SELECT *, Sku FROM
  Item` (POST application/text), reports with explicit date ranges.
- A share of questions write (bills, bill payments, invoices, payments, vendors, items,
  journal entries, purchases, sales receipts, estimates, credit memos, transfers, ...), each
  followed by reads of what it changed: the document, its list, the balances it moves
  (the vendor after a bill) and the reports it can change.

Until every entity and report has appeared once, each read question also looks at one not
yet seen, so a trace of 40 or more read questions covers all 27 entities and 12 reports.
Seeded like the chat trace (`random.Random`, the fake seeded the same way, dates from
`trace.ANCHOR`); writes are dated on the anchor day, so reports over the anchor's year see
them.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fake_intuit import Sandbox

from bench import trace as tr
from bench.trace import CREATED, Call, Company, Question, Session, Trace, TraceParams

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
# A customer or vendor reference each transaction list can be filtered on (qbo-api.md).
PARTY_FILTER = {
    "Invoice": "CustomerRef",
    "Payment": "CustomerRef",
    "Estimate": "CustomerRef",
    "CreditMemo": "CustomerRef",
    "SalesReceipt": "CustomerRef",
    "Bill": "VendorRef",
    "BillPayment": "VendorRef",
}
DATED = frozenset(ENTITIES) - {
    "Customer",
    "Account",
    "Item",
    "Vendor",
    "Employee",
    "Class",
    "Department",
    "Term",
    "PaymentMethod",
    "TaxCode",
    "TaxRate",
    "Attachable",
}
# (projection, entity) a connector pages through by 100; SyncToken where it asks for it.
PROJECTIONS = (
    ("Id, DisplayName", "Vendor"),
    ("Id, DisplayName, Balance", "Customer"),
    ("Id, Name, AccountType, CurrentBalance", "Account"),
    ("Id, SyncToken, DocNumber, TotalAmt, Balance", "Bill"),
    ("Id, FileName, ContentType, Size", "Attachable"),
    ("Id, SyncToken, TxnDate, TotalAmt", "Purchase"),
)
# Accounts of the fake's chart (fake_intuit/seed_more.py CHART): ids are positions.
CHECKING, SAVINGS, UNDEPOSITED, AP, SERVICES_INCOME = "1", "2", "4", "7", "12"
EXPENSE_ACCOUNTS = ("16", "17", "18", "19", "20")
SERVICE_ITEMS = (("1", 100.0), ("2", 75.0), ("3", 120.0), ("4", 35.0))
INVENTORY_ITEM = "7"

READS = (
    ("company_overview", 12),
    ("payables", 14),
    ("receivables", 14),
    ("browse", 24),
    ("financials", 14),
    ("sales", 11),
    ("expenses", 11),
)
CONNECTOR_REPORTS = (
    "GeneralLedger",
    "ProfitAndLoss",
    "BalanceSheet",
    "AgedPayables",
    "TransactionList",
    "AgedReceivables",
    "CustomerSales",
    "VendorExpenses",
)
CONNECTOR_READS = (("sync_lists", 45), ("connector_reports", 35), ("connector_txns", 20))
WRITES = (
    ("create_bill", 14),
    ("pay_bill", 10),
    ("create_invoice", 12),
    ("receive_payment", 10),
    ("create_vendor", 5),
    ("update_vendor", 5),
    ("create_item", 5),
    ("create_journal_entry", 7),
    ("create_purchase", 7),
    ("create_sales_receipt", 6),
    ("create_estimate", 4),
    ("create_credit_memo", 4),
    ("update_customer", 4),
    ("create_transfer", 3),
    ("create_vendor_credit", 2),
    ("create_purchase_order", 1),
    ("create_time_activity", 1),
)


# -- requests in each client's style ------------------------------------------------------------
class _Node:
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


class _Connector:
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
class _Realm:
    ids: dict[str, list[str]]  # entity -> every Id (inactive too)
    count: dict[str, int]  # entity -> rows a plain SELECT * returns (what pages cover)
    customers: list[str]  # active
    vendors: list[str]  # active
    employees: list[str]
    open_bills: list[tuple[str, str]]  # (bill Id, vendor Id)
    open_invoices: list[tuple[str, str]]  # (invoice Id, customer Id)


def _survey(company: Company) -> dict[str, _Realm]:
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
        out[realm] = _Realm(
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


# -- the generator ------------------------------------------------------------------------------
class _Generator:
    def __init__(self, params: TraceParams) -> None:
        self.params = params
        self.rng = random.Random(f"qbproxy-bench-assistant:{params.seed}")
        self.company = Company(
            realms=tr.realm_ids(params.realms),
            seed=params.seed,
            customers_per_realm=params.customers_per_realm,
            invoices_per_realm=params.invoices_per_realm,
            payments_per_realm=params.payments_per_realm,
        )
        self.realms = _survey(self.company)
        self.today = dt.datetime.fromisoformat(tr.ANCHOR).astimezone(tr.COMPANY_OFFSET).date()
        self.unseen_entities = list(ENTITIES)
        self.unseen_reports = list(REPORTS)

    def pick(self, weighted: Sequence[tuple[str, int]]) -> str:
        return self.rng.choices([n for n, _ in weighted], [w for _, w in weighted])[0]

    def trace(self) -> Trace:
        p, rng = self.params, self.rng
        plans: list[tuple[str, str, list[float]]] = []
        for n in range(p.sessions):
            realm = self.company.realms[n % len(self.company.realms)]
            app = "connector" if rng.random() < 0.25 else "mcp-assistant"
            start = rng.uniform(0, p.window_seconds)
            count = max(1, p.questions + rng.randint(-2, 2))
            gaps = [rng.uniform(10, 50) for _ in range(count - 1)]
            if sum(gaps) > p.session_seconds:
                gaps = [g * p.session_seconds / sum(gaps) for g in gaps]
            times = [start]
            for gap in gaps:
                times.append(times[-1] + gap)
            plans.append((realm, app, times))
        total = sum(len(times) for *_, times in plans)
        slots = [(s, q) for s, (*_, times) in enumerate(plans) for q in range(len(times))]
        writing = set(rng.sample(slots, round(p.write_share * total)))
        sessions = []
        for s, (realm, app, times) in enumerate(plans):
            node = _Node(realm, rng.choice(("65", "70", "75", "75")))
            conn = _Connector(realm)
            data = self.realms[realm]
            questions = []
            for q, at in enumerate(times):
                if (s, q) in writing:
                    intent = self.pick(WRITES)
                    if intent == "pay_bill" and not data.open_bills:
                        intent = "create_invoice"
                    steps = self.write_steps(intent, node, conn, data, f"s{s}q{q}")
                elif app == "connector":
                    intent = self.pick(CONNECTOR_READS)
                    steps = self.connector_steps(intent, conn, data)
                else:
                    intent = self.pick(READS)
                    steps = self.read_steps(intent, node, data)
                if (s, q) not in writing:
                    steps[0] = steps[0] + self.unseen(node, data)
                questions.append(Question(round(at, 3), intent, steps))
            sessions.append(Session(s, realm, app, questions))
        return Trace(self.params, self.company, sessions, "assistant")

    # -- helpers ---------------------------------------------------------------------------------
    def report(self, b: _Node | _Connector, name: str) -> Call:
        return b.report(name, report_params(name, self.today, self.rng))

    def some(self, values: Sequence[str]) -> str:
        return self.rng.choice(values)

    def list_call(self, b: _Node, entity: str, data: _Realm) -> Call:
        """find<Entities>: all, by a customer or vendor, or by date, as an assistant asks."""
        roll = self.rng.random()
        party = PARTY_FILTER.get(entity)
        if party and roll < 0.4:
            pool = data.customers if party == "CustomerRef" else data.vendors
            return b.find(entity, f"{party} = '{self.some(pool)}'", order="TxnDate")
        if entity in DATED and roll < 0.6:
            since = (self.today - dt.timedelta(days=self.rng.choice((30, 90, 365)))).isoformat()
            return b.find(entity, f"TxnDate >= '{since}'")
        return b.find(entity)

    def unseen(self, b: _Node, data: _Realm) -> list[Call]:
        """One entity or report not yet in the trace, until all have appeared."""
        if self.unseen_entities:
            entity = self.unseen_entities.pop(0)
            ids = data.ids[entity]
            return [b.get(entity, ids[0])] if ids else [b.find(entity)]
        if self.unseen_reports:
            return [self.report(b, self.unseen_reports.pop(0))]
        return []

    def reads_of(self, b: _Node, entity: str, data: _Realm, n: int) -> list[Call]:
        ids = data.ids[entity]
        return [b.get(entity, i) for i in self.rng.sample(ids, min(n, len(ids)))]

    # -- read questions ----------------------------------------------------------------------------
    def read_steps(self, intent: str, b: _Node, data: _Realm) -> list[list[Call]]:
        rng = self.rng
        if intent == "company_overview":
            return [
                [b.company_info(), b.preferences()],
                [self.report(b, "BalanceSheet"), self.report(b, "ProfitAndLoss")],
            ]
        if intent == "payables":
            vendor = self.some(data.vendors)
            return [
                [b.find("Vendor"), b.find("Bill", count=True)],
                [
                    self.report(b, "AgedPayables"),
                    b.get("Vendor", vendor),
                    b.find("Bill", f"VendorRef = '{vendor}'", order="TxnDate"),
                ],
            ]
        if intent == "receivables":
            customer = self.some(data.customers)
            return [
                [
                    self.report(b, rng.choice(("AgedReceivables", "AgedReceivableDetail"))),
                    self.report(b, "CustomerBalance"),
                ],
                [
                    b.get("Customer", customer),
                    b.find("Invoice", f"CustomerRef = '{customer}'", order="TxnDate"),
                ],
            ]
        if intent == "browse":
            entity = rng.choice(ENTITIES)
            return [
                [self.list_call(b, entity, data), b.find(entity, count=True)],
                self.reads_of(b, entity, data, rng.randint(1, 2)),
            ]
        if intent == "financials":
            names = rng.sample(
                ("ProfitAndLoss", "BalanceSheet", "CashFlow", "TrialBalance", "GeneralLedger"),
                rng.randint(2, 3),
            )
            return [[self.report(b, n) for n in names]]
        if intent == "sales":
            return [
                [self.report(b, "CustomerSales"), self.report(b, "TransactionList")],
                [self.list_call(b, "SalesReceipt", data), self.list_call(b, "Estimate", data)],
            ]
        if intent == "expenses":
            return [
                [self.report(b, "VendorExpenses"), self.list_call(b, "Purchase", data)],
                [*self.reads_of(b, "Purchase", data, 1), self.list_call(b, "Bill", data)],
            ]
        raise AssertionError(intent)

    def connector_steps(self, intent: str, c: _Connector, data: _Realm) -> list[list[Call]]:
        rng = self.rng
        if intent == "sync_lists":
            calls = []
            for fields, entity in rng.sample(PROJECTIONS, 2):
                pages = max(1, -(-data.count[entity] // 100))
                for page in range(pages):
                    calls.append(
                        c.query(
                            f"SELECT {fields} FROM {entity} "
                            f"STARTPOSITION {1 + 100 * page} MAXRESULTS 100"
                        )
                    )
            pages = max(1, -(-data.count["Item"] // 100))
            return [calls, [c.items_with_sku(1 + 100 * p) for p in range(pages)]]
        if intent == "connector_reports":
            names = rng.sample(CONNECTOR_REPORTS, 3)
            return [[self.report(c, n) for n in names]]
        if intent == "connector_txns":
            entities = rng.sample(("Bill", "Purchase", "Deposit", "Transfer", "VendorCredit"), 3)
            return [
                [c.query(f"SELECT * FROM {e} STARTPOSITION 1 MAXRESULTS 100") for e in entities]
            ]
        raise AssertionError(intent)

    # -- writes ----------------------------------------------------------------------------------
    def write_steps(
        self, intent: str, b: _Node, c: _Connector, data: _Realm, tag: str
    ) -> list[list[Call]]:
        """The write, then what it changed: the document, its list, the balances it moves
        and the reports it can change."""
        rng = self.rng
        body: dict[str, Any]
        day = self.today.isoformat()
        amount = float(rng.randrange(50, 2000))
        customer, vendor = self.some(data.customers), self.some(data.vendors)
        expense = self.some(EXPENSE_ACCOUNTS)
        expense_line = {
            "Amount": amount,
            "DetailType": "AccountBasedExpenseLineDetail",
            "AccountBasedExpenseLineDetail": {"AccountRef": {"value": expense}},
        }
        item, price = rng.choice(SERVICE_ITEMS)
        qty = rng.randint(1, 6)
        sales_line = {
            "Amount": round(price * qty, 2),
            "DetailType": "SalesItemLineDetail",
            "Description": f"assistant {tag}",
            "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": qty, "UnitPrice": price},
        }
        if intent == "create_bill":
            lines: list[dict[str, Any]] = [expense_line]
            if rng.random() < 0.4:  # restock: the inventory item's quantity moves too
                lines.append(
                    {
                        "Amount": 125.0 * qty,
                        "ItemBasedExpenseLineDetail": {
                            "ItemRef": {"value": INVENTORY_ITEM},
                            "Qty": qty,
                        },
                    }
                )
            body = {"VendorRef": {"value": vendor}, "TxnDate": day, "Line": lines}
            return [
                [b.write("Bill", "create", body)],
                [
                    b.get("Bill", CREATED),
                    b.get("Vendor", vendor),
                    b.find("Bill", f"VendorRef = '{vendor}'", order="TxnDate"),
                    b.get("Account", AP),
                    b.get("Item", INVENTORY_ITEM),
                ],
                [self.report(b, "AgedPayables"), self.report(b, "VendorExpenses")],
            ]
        if intent == "pay_bill":
            bill, owner = rng.choice(data.open_bills)
            body = {
                "VendorRef": {"value": owner},
                "PayType": "Check",
                "CheckPayment": {"BankAccountRef": {"value": CHECKING}},
                "TxnDate": day,
            }
            share = rng.choice((1.0, 0.5))
            return [
                [b.write("BillPayment", "pay_bill", body, id_=bill, read="Bill", share=share)],
                [
                    b.get("BillPayment", CREATED),
                    b.get("Bill", bill),
                    b.get("Vendor", owner),
                    b.get("Account", CHECKING),
                    b.find("BillPayment", f"VendorRef = '{owner}'", order="TxnDate"),
                ],
                [self.report(b, "AgedPayables"), self.report(b, "BalanceSheet")],
            ]
        if intent == "create_invoice":
            body = {"CustomerRef": {"value": customer}, "TxnDate": day, "Line": [sales_line]}
            return [
                [b.write("Invoice", "create", body)],
                [
                    b.get("Invoice", CREATED),
                    b.get("Customer", customer),
                    b.find("Invoice", f"CustomerRef = '{customer}'", order="TxnDate"),
                ],
                [self.report(b, "AgedReceivables"), self.report(b, "CustomerBalance")],
            ]
        if intent == "receive_payment":
            invoice, owner = rng.choice(data.open_invoices)
            data_ = {"CustomerRef": owner, "InvoiceId": invoice, "share": rng.choice((1.0, 0.5))}
            write = Call(
                "receive_payment",
                "POST",
                f"{b.base}/payment?{b.tail()}",
                entity="Payment",
                read_path=f"{b.base}/invoice/{invoice}?{b.tail()}",
                data=data_,
            )
            return [
                [write],
                [
                    b.get("Payment", CREATED),
                    b.get("Invoice", invoice),
                    b.get("Customer", owner),
                    b.find("Payment", f"CustomerRef = '{owner}'", order="TxnDate"),
                ],
                [self.report(b, "CustomerBalance"), self.report(b, "AgedReceivableDetail")],
            ]
        if intent == "create_vendor":
            name = f"Assistant Supplier {tag}"
            body = {
                "DisplayName": name,
                "CompanyName": name,
                "PrimaryEmailAddr": {"Address": f"{tag}@supplier.example"},
            }
            return [
                [b.write("Vendor", "create", body)],
                [b.get("Vendor", CREATED), b.find("Vendor"), b.find("Vendor", count=True)],
                [c.query("SELECT Id, DisplayName FROM Vendor STARTPOSITION 1 MAXRESULTS 100")],
            ]
        if intent == "update_vendor":
            phone = {"PrimaryPhone": {"FreeFormNumber": f"(555) 020-{rng.randrange(10000):04d}"}}
            return [
                [b.write("Vendor", "sparse_update", phone, id_=vendor)],
                [b.get("Vendor", vendor), b.find("Vendor")],
            ]
        if intent == "create_item":
            body = {
                "Name": f"Assistant Service {tag}",
                "Type": "Service",
                "Sku": f"AS-{tag}",
                "UnitPrice": float(rng.randrange(20, 200)),
                "IncomeAccountRef": {"value": SERVICES_INCOME},
            }
            return [
                [b.write("Item", "create", body)],
                [b.get("Item", CREATED), b.find("Item"), c.items_with_sku(1)],
            ]
        if intent == "create_journal_entry":
            body = {
                "TxnDate": day,
                "PrivateNote": f"assistant {tag}",
                "Line": [
                    _journal_line(amount, "Debit", expense),
                    _journal_line(amount, "Credit", CHECKING),
                ],
            }
            return [
                [b.write("JournalEntry", "create", body)],
                [
                    b.get("JournalEntry", CREATED),
                    b.find("JournalEntry", f"TxnDate >= '{day}'"),
                    b.get("Account", CHECKING),
                    b.get("Account", expense),
                ],
                [self.report(b, "TrialBalance"), self.report(b, "ProfitAndLoss")],
                [self.report(b, "GeneralLedger")],
            ]
        if intent == "create_purchase":
            body = {
                "PaymentType": "Cash",
                "AccountRef": {"value": CHECKING},
                "EntityRef": {"value": vendor, "type": "Vendor"},
                "TxnDate": day,
                "Line": [expense_line],
            }
            return [
                [b.write("Purchase", "create", body)],
                [
                    b.get("Purchase", CREATED),
                    b.get("Account", CHECKING),
                    b.find("Purchase", f"TxnDate >= '{day}'"),
                ],
                [self.report(b, "ProfitAndLoss"), self.report(b, "CashFlow")],
                [self.report(b, "VendorExpenses")],
            ]
        if intent == "create_sales_receipt":
            line = {
                "Amount": 300.0 * qty,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": INVENTORY_ITEM},
                    "Qty": qty,
                    "UnitPrice": 300.0,
                },
            }
            body = {"CustomerRef": {"value": customer}, "TxnDate": day, "Line": [line]}
            return [
                [b.write("SalesReceipt", "create", body)],
                [
                    b.get("SalesReceipt", CREATED),
                    b.get("Item", INVENTORY_ITEM),
                    b.get("Account", UNDEPOSITED),
                    b.find("SalesReceipt", f"CustomerRef = '{customer}'", order="TxnDate"),
                ],
                [self.report(b, "CustomerSales"), self.report(b, "TransactionList")],
            ]
        if intent == "create_estimate":
            body = {"CustomerRef": {"value": customer}, "TxnDate": day, "Line": [sales_line]}
            return [
                [b.write("Estimate", "create", body)],
                [
                    b.get("Estimate", CREATED),
                    b.find("Estimate", f"CustomerRef = '{customer}'", order="TxnDate"),
                    b.find("Estimate", count=True),
                ],
            ]
        if intent == "create_credit_memo":
            body = {"CustomerRef": {"value": customer}, "TxnDate": day, "Line": [sales_line]}
            return [
                [b.write("CreditMemo", "create", body)],
                [
                    b.get("CreditMemo", CREATED),
                    b.get("Customer", customer),
                    b.find("CreditMemo", f"CustomerRef = '{customer}'", order="TxnDate"),
                ],
                [self.report(b, "CustomerBalance"), self.report(b, "AgedReceivables")],
            ]
        if intent == "update_customer":
            notes = {"Notes": f"Updated by the assistant ({tag})"}
            return [
                [b.write("Customer", "sparse_update", notes, id_=customer)],
                [b.get("Customer", customer), b.find("Customer")],
            ]
        if intent == "create_transfer":
            body = {
                "FromAccountRef": {"value": CHECKING},
                "ToAccountRef": {"value": SAVINGS},
                "Amount": amount,
                "TxnDate": day,
            }
            return [
                [b.write("Transfer", "create", body)],
                [
                    b.get("Transfer", CREATED),
                    b.get("Account", CHECKING),
                    b.get("Account", SAVINGS),
                    b.find("Transfer"),
                ],
                [self.report(b, "BalanceSheet")],
            ]
        if intent == "create_vendor_credit":
            body = {"VendorRef": {"value": vendor}, "TxnDate": day, "Line": [expense_line]}
            return [
                [b.write("VendorCredit", "create", body)],
                [b.get("VendorCredit", CREATED), b.get("Vendor", vendor), b.find("VendorCredit")],
                [self.report(b, "AgedPayables")],
            ]
        if intent == "create_purchase_order":
            body = {"VendorRef": {"value": vendor}, "TxnDate": day, "Line": [expense_line]}
            return [
                [b.write("PurchaseOrder", "create", body)],
                [b.get("PurchaseOrder", CREATED), b.find("PurchaseOrder")],
            ]
        if intent == "create_time_activity":
            body = {
                "NameOf": "Employee",
                "EmployeeRef": {"value": self.some(data.employees)},
                "CustomerRef": {"value": customer},
                "TxnDate": day,
                "Hours": rng.randint(1, 8),
                "Minutes": 0,
            }
            return [
                [b.write("TimeActivity", "create", body)],
                [b.get("TimeActivity", CREATED), b.find("TimeActivity")],
            ]
        raise AssertionError(intent)


def _journal_line(value: float, posting: str, account: str) -> dict[str, Any]:
    return {
        "Amount": value,
        "DetailType": "JournalEntryLineDetail",
        "JournalEntryLineDetail": {"PostingType": posting, "AccountRef": {"value": account}},
    }


def generate(params: TraceParams) -> Trace:
    """The assistant trace for `params`; the same params give the same trace."""
    return _Generator(params).trace()

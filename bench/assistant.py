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

from bench import trace as tr
from bench.assistant_calls import (
    ENTITIES,
    REPORTS,
    ConnectorClient,
    NodeClient,
    Realm,
    report_params,
    survey,
)
from bench.assistant_writes import WRITES, WriteSteps
from bench.trace import Call, Company, Question, Session, Trace, TraceParams

__all__ = ["ENTITIES", "REPORTS", "generate"]

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


# -- the generator ------------------------------------------------------------------------------
class _Generator(WriteSteps):
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
        self.realms = survey(self.company)
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
            node = NodeClient(realm, rng.choice(("65", "70", "75", "75")))
            conn = ConnectorClient(realm)
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
    def report(self, b: NodeClient | ConnectorClient, name: str) -> Call:
        return b.report(name, report_params(name, self.today, self.rng))

    def list_call(self, b: NodeClient, entity: str, data: Realm) -> Call:
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

    def unseen(self, b: NodeClient, data: Realm) -> list[Call]:
        """One entity or report not yet in the trace, until all have appeared."""
        if self.unseen_entities:
            entity = self.unseen_entities.pop(0)
            ids = data.ids[entity]
            return [b.get(entity, ids[0])] if ids else [b.find(entity)]
        if self.unseen_reports:
            return [self.report(b, self.unseen_reports.pop(0))]
        return []

    def reads_of(self, b: NodeClient, entity: str, data: Realm, n: int) -> list[Call]:
        ids = data.ids[entity]
        return [b.get(entity, i) for i in self.rng.sample(ids, min(n, len(ids)))]

    # -- read questions ----------------------------------------------------------------------------
    def read_steps(self, intent: str, b: NodeClient, data: Realm) -> list[list[Call]]:
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

    def connector_steps(self, intent: str, c: ConnectorClient, data: Realm) -> list[list[Call]]:
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


def generate(params: TraceParams) -> Trace:
    """The assistant trace for `params`; the same params give the same trace."""
    return _Generator(params).trace()

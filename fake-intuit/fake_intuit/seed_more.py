"""Seeding of everything beyond Customer, Invoice and Payment, from its own random stream
(`random.Random(f"{seed}:{realm}:more")`), so those three stay byte-identical for a seed.

Name lists the seeded invoices and payments already name get the same ids: Items 1-8
(`data.ITEMS`), Terms 1-3, PaymentMethods 1-3, Account 4 (Undeposited Funds, where the
payments go). Transactions are shaped by `shapes.Shaper`, as writes are, then `ledger.derive`
fills in every balance. Seeded credit memos are refunded in full (a RefundReceipt linked to
each), so they leave customers' balances as they were.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from decimal import Decimal

from fake_intuit import ledger
from fake_intuit.company import seed_company
from fake_intuit.data import DAY, FAMILY, GIVEN, ITEMS, USD, Doc, RealmData, amount, money
from fake_intuit.shapes import DEFAULTS, Shaper

# (Name, AccountType, AccountSubType[, Active])
CHART: tuple[tuple[str, str, str, bool], ...] = (
    ("Checking", "Bank", "Checking", True),
    ("Savings", "Bank", "Savings", True),
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable", True),
    ("Undeposited Funds", "Other Current Asset", "UndepositedFunds", True),
    ("Inventory Asset", "Other Current Asset", "Inventory", True),
    ("Truck", "Fixed Asset", "Vehicles", True),
    ("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable", True),
    ("Visa", "Credit Card", "CreditCard", True),
    ("Loan Payable", "Long Term Liability", "NotesPayable", True),
    ("Opening Balance Equity", "Equity", "OpeningBalanceEquity", True),
    ("Retained Earnings", "Equity", "RetainedEarnings", True),
    ("Services", "Income", "ServiceFeeIncome", True),
    ("Sales of Product Income", "Income", "SalesOfProductIncome", True),
    ("Discounts given", "Income", "DiscountsRefundsGiven", True),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs", True),
    ("Advertising", "Expense", "AdvertisingPromotional", True),
    ("Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses", True),
    ("Rent or Lease", "Expense", "RentOrLeaseOfBuildings", True),
    ("Utilities", "Expense", "Utilities", True),
    ("Job Expenses", "Expense", "OtherMiscellaneousServiceCost", True),
    ("Interest Earned", "Other Income", "InterestEarned", True),
    ("Miscellaneous", "Other Expense", "OtherMiscellaneousExpense", True),
    ("Old Petty Cash", "Bank", "CashOnHand", False),
)
EXPENSE_ACCOUNTS = ("16", "17", "18", "19", "20")
INVENTORY_ITEMS = {"7": 125, "8": 0.75}  # item id -> PurchaseCost
VENDORS = (
    "Books by Bessie",
    "Brosnahan Insurance Agency",
    "Cal Telephone",
    "Chin's Gas and Oil",
    "Computers by Jenni",
    "Ellis Equipment Rental",
    "Hall Properties",
    "Hicks Hardware",
    "Lee Advertising",
    "Müller Gartenbau",
    "Norton Lumber and Building Materials",
    "PG&E",
    "Robertson & Associates",
    "Tania's Nursery",
    "Ørsted Supply",
    "Tim Philip Masonry",
)
DEFAULT_COUNTS: dict[str, int] = {
    "Vendor": 10,
    "Employee": 4,
    "Bill": 12,
    "BillPayment": 6,
    "VendorCredit": 3,
    "Purchase": 10,
    "PurchaseOrder": 4,
    "Estimate": 6,
    "CreditMemo": 4,
    "SalesReceipt": 8,
    "RefundReceipt": 2,
    "Deposit": 3,
    "JournalEntry": 3,
    "Transfer": 3,
    "TimeActivity": 6,
    "Attachable": 4,
}


class _Seeder:
    def __init__(
        self,
        data: RealmData,
        rng: random.Random,
        anchor: float,
        meta: Callable[[float], str],
        day: Callable[[float], str],
    ) -> None:
        self.data, self.rng, self.anchor, self.meta, self.day = data, rng, anchor, meta, day
        self.shaper = Shaper(data, day(anchor))
        self.txns: list[tuple[float, str, Doc]] = []

    def stamp(self, doc: Doc, created: float) -> None:
        rng = self.rng
        updated = created + rng.uniform(0, max(0.0, min(self.anchor - created - 60, 30 * DAY)))
        if rng.random() < 0.2:  # recently edited: something for CDC look-backs to find
            updated = max(created, self.anchor - rng.uniform(60, 20 * DAY))
        doc["SyncToken"] = str(rng.randrange(2))
        doc["MetaData"] = {"CreateTime": self.meta(created), "LastUpdatedTime": self.meta(updated)}

    def name(self, entity: str, body: Doc, created: float | None = None) -> Doc:
        doc: Doc = DEFAULTS[entity] | body
        doc["Id"] = self.data.new_id(entity)
        self.shaper.shape(entity, doc, None)
        doc.update(domain="QBO", sparse=False)
        self.stamp(doc, created or self.anchor - 800 * DAY + self.rng.uniform(0, DAY))
        self.data.docs[entity][doc["Id"]] = doc
        return doc

    def txn(self, entity: str, body: Doc, when: float) -> Doc:
        """Shape now (refs must exist); ids are assigned in time order by `finish`."""
        doc: Doc = DEFAULTS[entity] | {"TxnDate": self.day(when), "CurrencyRef": dict(USD)}
        doc |= body
        self.shaper.shape(entity, doc, None)
        doc.update(domain="QBO", sparse=False)
        self.txns.append((when + self.rng.uniform(0, 3600), entity, doc))
        return doc

    def after(self, doc: Doc) -> float:
        """A moment a few days after `doc`'s TxnDate, before the anchor."""
        start = dt.datetime.fromisoformat(doc["MetaData"]["CreateTime"]).timestamp()
        return min(self.anchor - 600, start + self.rng.uniform(1, 20) * DAY)

    def when(self, days: float = 365) -> float:
        return self.anchor - self.rng.uniform(1, days) * DAY

    def finish(self) -> None:
        for created, entity, doc in sorted(self.txns, key=lambda t: t[0]):
            doc["Id"] = self.data.new_id(entity)
            self.stamp(doc, created)
            self.data.docs[entity][doc["Id"]] = doc
        self.txns.clear()


def _ref(doc: Doc) -> dict[str, str]:
    return {"value": doc["Id"]}


def _expense_line(rng: random.Random, items: list[Doc]) -> Doc:
    if items and rng.random() < 0.3:
        item = rng.choice(items)
        qty, cost = 1 + rng.randrange(20), item.get("PurchaseCost") or 10
        return {
            "Amount": amount(money(cost) * qty),
            "ItemBasedExpenseLineDetail": {
                "ItemRef": _ref(item),
                "Qty": qty,
                "UnitPrice": cost,
            },
        }
    return {
        "Amount": amount(money(rng.randrange(2000, 90000)) / 100),
        "Description": rng.choice(("Supplies", "Monthly service", "Repairs", "Materials")),
        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": rng.choice(EXPENSE_ACCOUNTS)}},
    }


def _sales_lines(rng: random.Random) -> list[Doc]:
    lines = []
    for _ in range(1 + rng.randrange(3)):
        item_id, name, price = rng.choice(ITEMS)
        qty = 1 + rng.randrange(6)
        lines.append(
            {
                "Amount": amount(money(price) * qty),
                "Description": f"{name} provided",
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": item_id},
                    "UnitPrice": price,
                    "Qty": qty,
                },
            }
        )
    return lines


def seed_more(
    data: RealmData,
    rng: random.Random,
    counts: Mapping[str, int],
    *,
    anchor: float,
    meta: Callable[[float], str],
    day: Callable[[float], str],
) -> None:
    """Add the chart of accounts, name lists and transactions to a seeded realm."""
    data.rng_more = rng
    n = {**DEFAULT_COUNTS, **counts}
    s = _Seeder(data, rng, anchor, meta, day)
    for name, kind, sub, active in CHART:
        s.name(
            "Account",
            {"Name": name, "AccountType": kind, "AccountSubType": sub}
            | {
                "Active": active,
                "CurrencyRef": dict(USD),
            },
        )
    for item_id, name, price in ITEMS:
        body: Doc = {"Name": name, "UnitPrice": price, "Sku": f"SKU-{1000 + int(item_id)}"}
        if item_id in INVENTORY_ITEMS:
            start = s.day(anchor - 800 * DAY)
            body |= {"Type": "Inventory", "PurchaseCost": INVENTORY_ITEMS[item_id]}
            body |= {"InvStartDate": start, "IncomeAccountRef": {"value": "13"}}
            data.opening_qty[item_id] = Decimal(200 + rng.randrange(300))
        s.name("Item", body)
    s.name("Item", {"Name": "Pump", "Type": "NonInventory", "UnitPrice": 15, "PurchaseCost": 10})
    s.name("Item", {"Name": "Lighting", "Active": False, "UnitPrice": 45})
    for term, days in (("Due on receipt", 0), ("Net 15", 15), ("Net 30", 30), ("Net 60", 60)):
        s.name("Term", {"Name": term, "DueDays": days, "Active": days != 60})
    for method, card in (("Cash", 0), ("Check", 0), ("Visa", 1), ("MasterCard", 1)):
        s.name(
            "PaymentMethod", {"Name": method, "Type": "CREDIT_CARD" if card else "NON_CREDIT_CARD"}
        )
    s.name("PaymentMethod", {"Name": "Diners Club", "Type": "CREDIT_CARD", "Active": False})
    for name in ("Landscaping", "Maintenance", "Design Studio", "Retired Line"):
        s.name("Class", {"Name": name, "Active": name != "Retired Line"})
    for name in ("North", "South", "Online"):
        s.name("Department", {"Name": name})
    for name, desc, taxable, active in (
        ("California", "California sales tax", True, True),
        ("Tucson City", "Tucson city tax", True, True),
        ("Out of state", "Not taxed", False, True),
        ("Old county", "Retired county tax", True, False),
    ):
        doc = {"Name": name, "Description": desc, "Taxable": taxable, "TaxGroup": False}
        _put(s, "TaxCode", doc | {"Active": active})
    for name, rate, active in (("California State", 7.25, True), ("Tucson City", 2.6, True)):
        doc = {"Name": name, "Description": f"{name} rate", "RateValue": rate}
        _put(s, "TaxRate", doc | {"AgencyRef": {"value": "1"}, "Active": active})
    _put(s, "TaxRate", {"Name": "Old County", "RateValue": 1.0, "Active": False})
    vendors = [
        s.name(
            "Vendor",
            {
                "DisplayName": name,
                "CompanyName": name,
                "Active": i != 1,
                "PrimaryEmailAddr": {"Address": f"billing{i}@vendor.example"},
                "CurrencyRef": dict(USD),
                "TermRef": {"value": str(1 + rng.randrange(3))},
            },
        )
        for i, name in enumerate(rng.sample(VENDORS, min(n["Vendor"], len(VENDORS))))
    ]
    for i in range(n["Employee"]):
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        s.name(
            "Employee",
            {"GivenName": given, "FamilyName": family, "DisplayName": f"{given} {family} {i + 1}"}
            | {"Active": i != 1, "EmployeeNumber": f"E{100 + i}"},
        )
    seed_company(data, anchor, meta)
    _transactions(s, n, [v for v in vendors if v["Active"]])
    ledger.derive(data)


def _put(s: _Seeder, entity: str, body: Doc) -> None:
    """Read-only lists (TaxCode, TaxRate): stored as they are, without a write's shaping."""
    doc: Doc = body | {"Id": s.data.new_id(entity), "domain": "QBO", "sparse": False}
    s.stamp(doc, s.anchor - 800 * DAY)
    s.data.docs[entity][doc["Id"]] = doc


def _transactions(s: _Seeder, n: Mapping[str, int], vendors: list[Doc]) -> None:
    rng, docs = s.rng, s.data.docs
    items = [i for i in docs["Item"].values() if i["Active"] and i["Type"] != "Service"]
    customers = [c for c in docs["Customer"].values() if c["Active"]]
    employees = [e for e in docs["Employee"].values() if e["Active"]]
    # Opening balances and the loan: journal entries (the first is always there).
    s.txn(
        "JournalEntry",
        {
            "PrivateNote": "Opening balance",
            "Line": [
                _je("Debit", "1", 25000),
                _je("Debit", "2", 5000),
                _je("Debit", "6", 18000),
                _je("Credit", "9", 15000),
                _je("Credit", "10", 33000),
            ],
        },
        s.anchor - 790 * DAY,
    )
    for _ in range(max(0, n["JournalEntry"] - 1)):
        value = rng.randrange(50, 900)
        s.txn(
            "JournalEntry",
            {"Line": [_je("Debit", "22", value), _je("Credit", "1", value)]},
            s.when(),
        )
    bills = []
    for _ in range(n["Bill"] if vendors else 0):
        vendor = rng.choice(vendors)
        lines = [_expense_line(rng, items) for _ in range(1 + rng.randrange(2))]
        bills.append(s.txn("Bill", {"VendorRef": _ref(vendor), "Line": lines}, s.when()))
    for _ in range(n["VendorCredit"] if vendors else 0):
        line = _expense_line(rng, [])
        s.txn("VendorCredit", {"VendorRef": _ref(rng.choice(vendors)), "Line": [line]}, s.when())
    for _ in range(n["Purchase"]):
        card = rng.random() < 0.4
        body: Doc = {"PaymentType": "CreditCard" if card else rng.choice(("Cash", "Check"))}
        body["Line"] = [_expense_line(rng, items)]
        if vendors and rng.random() < 0.8:
            body["EntityRef"] = {"value": rng.choice(vendors)["Id"], "type": "Vendor"}
        s.txn("Purchase", body, s.when())
    for _ in range(n["PurchaseOrder"] if vendors else 0):
        body = {"VendorRef": _ref(rng.choice(vendors)), "Line": [_expense_line(rng, items)]}
        s.txn("PurchaseOrder", body, s.when(60))
    for _ in range(n["Estimate"] if customers else 0):
        body = {"CustomerRef": _ref(rng.choice(customers)), "Line": _sales_lines(rng)}
        s.txn("Estimate", body, s.when(90))
    memos = []
    for _ in range(n["CreditMemo"] if customers else 0):
        body = {"CustomerRef": _ref(rng.choice(customers)), "Line": _sales_lines(rng)[:1]}
        memos.append(s.txn("CreditMemo", body, s.when()))
    receipts = []
    for _ in range(n["SalesReceipt"]):
        body = {"Line": _sales_lines(rng), "PaymentMethodRef": {"value": "1"}}
        if customers and rng.random() < 0.7:
            body["CustomerRef"] = _ref(rng.choice(customers))
        receipts.append(s.txn("SalesReceipt", body, s.when()))
    for _ in range(n["RefundReceipt"]):
        body = {"Line": _sales_lines(rng)[:1], "PaymentType": "Cash"}
        if customers:
            body["CustomerRef"] = _ref(rng.choice(customers))
        s.txn("RefundReceipt", body, s.when())
    for _ in range(n["Transfer"]):
        body = {"FromAccountRef": {"value": "1"}, "ToAccountRef": {"value": "2"}}
        s.txn("Transfer", body | {"Amount": rng.randrange(100, 2000)}, s.when())
    for _ in range(n["TimeActivity"] if employees and customers else 0):
        body = {
            "EmployeeRef": _ref(rng.choice(employees)),
            "CustomerRef": _ref(rng.choice(customers)),
            "ItemRef": {"value": "2"},
            "Hours": 1 + rng.randrange(8),
            "Minutes": rng.choice((0, 15, 30, 45)),
            "HourlyRate": 75,
            "BillableStatus": rng.choice(("Billable", "NotBillable", "HasBeenBilled")),
        }
        s.txn("TimeActivity", body, s.when(60))
    s.finish()
    # Linked transactions once their targets have ids (so these ids come after theirs).
    for bill in rng.sample(bills, min(n["BillPayment"], len(bills))):
        share = rng.choice((Decimal(1), Decimal(1), Decimal("0.5")))
        paid = amount(money(bill["TotalAmt"]) * share)
        link = [{"TxnId": bill["Id"], "TxnType": "Bill"}]
        body = {"VendorRef": dict(bill["VendorRef"]), "Line": [{"Amount": paid, "LinkedTxn": link}]}
        if rng.random() < 0.3:
            body |= {"PayType": "CreditCard", "CreditCardPayment": {"CCAccountRef": {"value": "8"}}}
        s.txn("BillPayment", body, s.after(bill))
    for memo in memos:  # refunded in full: customers' balances stay as they were
        body = {"CustomerRef": dict(memo["CustomerRef"]), "Line": [dict(memo["Line"][0])]}
        body["LinkedTxn"] = [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]
        s.txn("RefundReceipt", body, s.after(memo))
    s.finish()
    _deposits(s, n["Deposit"], receipts)
    for i in range(n["Attachable"]):
        target = rng.choice(list(docs["Bill"].values()) or list(docs["Invoice"].values()) or [None])
        body = {"FileName": f"receipt-{i + 1}.pdf", "ContentType": "application/pdf"}
        body |= {"Size": rng.randrange(10_000, 900_000), "Note": f"Scanned receipt {i + 1}"}
        if target is not None:
            kind = "Bill" if target["Id"] in docs["Bill"] else "Invoice"
            body["AttachableRef"] = [{"EntityRef": {"type": kind, "value": target["Id"]}}]
        s.name("Attachable", body)


def _je(posting: str, account: str, value: float) -> Doc:
    return {
        "Amount": value,
        "JournalEntryLineDetail": {"PostingType": posting, "AccountRef": {"value": account}},
    }


def _deposits(s: _Seeder, count: int, receipts: list[Doc]) -> None:
    """Deposit some undeposited payments and sales receipts into Checking."""
    sources = [("Payment", p) for p in s.data.docs["Payment"].values() if p["TotalAmt"]]
    sources += [("SalesReceipt", r) for r in receipts if r["TotalAmt"]]
    s.rng.shuffle(sources)
    for _ in range(count):
        chosen, sources = sources[:3], sources[3:]
        if not chosen:
            break
        lines = [
            {"Amount": doc["TotalAmt"], "LinkedTxn": [{"TxnId": doc["Id"], "TxnType": kind}]}
            for kind, doc in chosen
        ]
        latest = max(str(doc["TxnDate"]) for _, doc in chosen)
        s.txn("Deposit", {"Line": lines, "TxnDate": latest}, s.anchor - s.rng.uniform(60, DAY))
    s.finish()

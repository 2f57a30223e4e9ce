"""Per-realm truth of the fake Intuit: entity documents, tombstones, the balance ledger
(always derived from the documents, so seeding and every write agree on balances).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from fake_intuit.catalog import CANONICAL, NAMES, SPECS

Doc = dict[str, Any]

ENTITIES = NAMES
# URL path segment (Intuit writes them lower case) -> canonical entity name.
SEGMENTS = dict(CANONICAL)
CENT = Decimal("0.01")
USD = {"value": "USD", "name": "United States Dollar"}


def money(raw: Any) -> Decimal:
    """A JSON amount as Decimal; raises ValueError for anything that is not a number."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Decimal)):
        raise ValueError(f"not an amount: {raw!r}")
    try:
        value = Decimal(str(raw))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {raw!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not an amount: {raw!r}")
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def amount(value: Decimal) -> float:
    """Money goes out as a JSON number (qbo-api.md "Envelopes")."""
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def ref_value(doc: Doc, key: str) -> str | None:
    ref = doc.get(key)
    if isinstance(ref, dict) and isinstance(ref.get("value"), str):
        return str(ref["value"])
    return None


class RealmData:
    """One company's documents. Ids are digit strings; Invoice and Payment share one
    transaction-id sequence as in QBO, so each entity's ids have gaps."""

    def __init__(self, realm: str, rng: random.Random) -> None:
        self.realm = realm
        self.rng = rng
        self.docs: dict[str, dict[str, Doc]] = {name: {} for name in ENTITIES}
        self.tombstones: dict[str, dict[str, Doc]] = {name: {} for name in ENTITIES}
        self.voided: set[tuple[str, str]] = set()
        self._next_name_id = 1
        self._next_txn_id = 100 + rng.randrange(50)
        self.next_doc_number = 1001
        # The entities beyond Customer, Invoice and Payment draw from their own stream, so
        # that those three stay as they were for a given seed (seed_more replaces it).
        self.rng_more = random.Random(f"{realm}:more")
        self._next_list_id: dict[str, int] = defaultdict(lambda: 1)
        # Item id -> quantity on hand before any transaction (QtyOnHand is derived from it).
        self.opening_qty: dict[str, Decimal] = {}
        self.ledger_cache: dict[tuple[str, ...], tuple[Any, Any]] = {}  # ledger's memo

    def new_id(self, entity: str) -> str:
        family = SPECS[entity].family
        if family in ("name", "other", "single") and entity != "Customer":
            value = self._next_list_id[entity]  # each name list has its own sequence
            self._next_list_id[entity] = value + 1
            return str(value)
        rng = self.rng if entity in ("Customer", "Invoice", "Payment") else self.rng_more
        step = 1 + rng.randrange(3)
        if entity == "Customer":
            value, self._next_name_id = self._next_name_id, self._next_name_id + step
        else:
            value, self._next_txn_id = self._next_txn_id, self._next_txn_id + step
        return str(value)

    def new_doc_number(self) -> str:
        value = self.next_doc_number
        self.next_doc_number += 1
        return str(value)

    def derive_balances(self, only_customers: set[str] | None = None) -> list[tuple[str, str]]:
        """Recompute Invoice Balance/LinkedTxn and Customer Balance from the payments.

        Invoice.Balance = TotalAmt - amounts of payment lines linked to it; Customer.Balance
        = sum of its invoices' balances minus its credit memos' open balances (CreditMemo
        Balance is derived first, by `ledger.derive`) (BalanceWithJobs the same: no
        sub-customers here).
        Returns the (entity, id) pairs whose document changed, for the caller to bump.
        `only_customers` limits the work to those customers' documents (a payment only
        ever links invoices of its own customer).
        """

        def wanted(doc: Doc) -> bool:
            return only_customers is None or ref_value(doc, "CustomerRef") in only_customers

        applied: dict[str, Decimal] = defaultdict(Decimal)
        links: dict[str, list[str]] = defaultdict(list)
        payments = sorted((int(k), p) for k, p in self.docs["Payment"].items() if wanted(p))
        for number, pay in payments:
            for line in pay.get("Line") or []:
                line_amount = money(line.get("Amount", 0))
                for linked in line.get("LinkedTxn") or []:
                    if linked.get("TxnType") != "Invoice" or line_amount <= 0:
                        continue
                    applied[linked["TxnId"]] += line_amount
                    if str(number) not in links[linked["TxnId"]]:
                        links[linked["TxnId"]].append(str(number))
        changed: list[tuple[str, str]] = []
        open_by_customer: dict[str, Decimal] = defaultdict(Decimal)
        for memo in self.docs["CreditMemo"].values():  # open credit lowers the balance
            if wanted(memo):
                open_by_customer[ref_value(memo, "CustomerRef") or ""] -= money(
                    memo.get("Balance", 0)
                )
        for inv_id, inv in self.docs["Invoice"].items():
            if not wanted(inv):
                continue
            balance = max(Decimal(0), money(inv.get("TotalAmt", 0)) - applied[inv_id])
            open_by_customer[ref_value(inv, "CustomerRef") or ""] += balance
            new_links = [{"TxnId": p, "TxnType": "Payment"} for p in links[inv_id]]
            before = (inv.get("Balance"), inv.get("LinkedTxn"))
            inv["Balance"] = amount(balance)
            if new_links:
                inv["LinkedTxn"] = new_links
            else:
                inv.pop("LinkedTxn", None)
            if before != (inv.get("Balance"), inv.get("LinkedTxn")):
                changed.append(("Invoice", inv_id))
        customers = self.docs["Customer"]
        for cust_id in customers if only_customers is None else sorted(only_customers):
            cust = customers.get(cust_id)
            if cust is None:
                continue
            value = amount(open_by_customer[cust_id])
            if cust.get("Balance") != value or cust.get("BalanceWithJobs") != value:
                cust["Balance"] = cust["BalanceWithJobs"] = value
                changed.append(("Customer", cust_id))
        return changed


# Seed vocabulary: apostrophes and non-ASCII on purpose, to exercise quoting and ordering.
GIVEN = (
    "Amy",
    "Bill",
    "Zoë",
    "José",
    "Renée",
    "François",
    "Søren",
    "Łukasz",
    "Ana",
    "Mark",
    "Siobhán",
    "Dmitri",
    "Ngọc",
    "Björn",
    "Chloé",
    "Emily",
    "Grace",
    "Hiro",
    "Ivan",
    "Jules",
)
FAMILY = (
    "O'Brien",
    "D'Angelo",
    "Müller",
    "Ångström",
    "Nguyễn",
    "Smith",
    "García",
    "Kowalski",
    "Lee",
    "Johnson",
    "O'Neil",
    "Dubois",
    "Østergaard",
    "Brown",
    "Zhang",
    "van der Berg",
)
MIDDLE = ("J.", "Marie", "Lou", "K.", "Anne")
COMPANIES = (
    "Amy's Bird Sanctuary",
    "Bill's Windsurf Shop",
    "Cool Cars",
    "Diego's Road Warrior Bodyshop",
    "Dukes Basketball Camp",
    "Café Olé",
    "Freeman Sporting Goods",
    "Geeta Kalapatapu",
    "Jeff's Jalopies",
    "Kookies by Kathy",
    "Mack's Motors",
    "Paulsen Medical Supplies",
    "Pye's Cakes",
    "Rago Travel Agency",
    "Red Rock Diner",
    "Rondonuwu Fruit and Vegi",
    "Shara Barnett",
    "Sonnenschein Family Store",
    "Sushi by Katsuyuki",
    "Travis Waldron",
    "Video Games by Dan",
    "Wedding Planning by Whitney",
    "Weiskopf Consulting",
    "Zürich Uhren",
    "L'Atelier Crème",
    "Ørsted Bikes",
    "北京 Trading",
    "Smith & Sons",
    "100% Organic",
)
CITIES = (
    ("Half Moon Bay", "CA", "94213"),
    ("Bayshore", "CA", "94326"),
    ("Palo Alto", "CA", "94303"),
    ("Middlefield", "CA", "94482"),
    ("Sunnyvale", "CA", "94087"),
    ("Tucson", "AZ", "85719"),
)
# (ItemRef value, name, unit price)
ITEMS = (
    ("1", "Services", 100),
    ("2", "Hours", 75),
    ("3", "Design", 120),
    ("4", "Gardening", 35),
    ("5", "Pest Control", 50),
    ("6", "Installation", 60.5),
    ("7", "Rock Fountain", 275),
    ("8", "Sprinkler Heads", 2.25),
)
TERMS = (("1", 0), ("2", 15), ("3", 30))  # Due on receipt, Net 15, Net 30
PAYMENT_METHODS = ("1", "2", "3")  # Cash, Check, Visa

DAY = 86_400.0


def _ascii(text: str) -> str:
    return "".join(c for c in text.lower() if c.isascii() and c.isalnum()) or "x"


def _customer(rng: random.Random, used: set[str], n: int) -> Doc:
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    company = rng.choice(COMPANIES) if rng.random() < 0.6 else None
    display = company or f"{given} {family}"
    while display in used:
        display = f"{company or given + ' ' + family} {n}"
        n += 1000
    used.add(display)
    city, state, postal = rng.choice(CITIES)
    doc: Doc = {
        "Taxable": rng.random() < 0.3,
        "BillAddr": {
            "Line1": f"{rng.randrange(1, 9999)} Main St.",
            "City": city,
            "CountrySubDivisionCode": state,
            "PostalCode": postal,
        },
        "Job": False,
        "BillWithParent": False,
        "Balance": 0,
        "BalanceWithJobs": 0,
        "CurrencyRef": dict(USD),
        "PreferredDeliveryMethod": rng.choice(("Print", "Email")),
        "IsProject": False,
        "domain": "QBO",
        "sparse": False,
        "GivenName": given,
        "FamilyName": family,
        "FullyQualifiedName": display,
        "DisplayName": display,
        "PrintOnCheckName": company or f"{given} {family}",
        "Active": rng.random() >= 0.1,
        "PrimaryPhone": {"FreeFormNumber": f"(555) 555-{rng.randrange(10000):04d}"},
    }
    if company:
        doc["CompanyName"] = company
    if rng.random() < 0.2:
        doc["MiddleName"] = rng.choice(MIDDLE)
    if rng.random() < 0.85:
        local = f"{_ascii(given)}.{_ascii(family)}"
        doc["PrimaryEmailAddr"] = {"Address": f"{local}@{_ascii(company or family)}.example"}
    return doc


def finish_invoice_lines(inv: Doc) -> None:
    """Number the lines, price them, and set TotalAmt and Intuit's trailing SubTotalLine.

    Sales lines without Amount are priced Qty x UnitPrice; discount lines subtract; a sent
    SubTotalLine is dropped and rebuilt. Raises ValueError naming a bad line.
    """
    total = Decimal(0)
    lines: list[Doc] = []
    for line in inv.get("Line") or []:
        if not isinstance(line, dict):
            raise ValueError("Line")
        kind = line.get("DetailType")
        if kind == "SubTotalLineDetail":
            continue
        if kind == "SalesItemLineDetail":
            detail = line.get("SalesItemLineDetail") or {}
            if "Amount" not in line and "Qty" in detail and "UnitPrice" in detail:
                line["Amount"] = amount(money(detail["Qty"]) * money(detail["UnitPrice"]))
            if "Amount" not in line:
                raise ValueError("Line.Amount")
            line["Amount"] = amount(money(line["Amount"]))
            total += money(line["Amount"])
        elif kind == "DiscountLineDetail":
            line["Amount"] = amount(money(line.get("Amount", 0)))
            total -= money(line["Amount"])
        elif kind != "DescriptionOnly":
            raise ValueError("Line.DetailType")
        lines.append(line)
    for n, line in enumerate(lines, 1):
        line["Id"], line["LineNum"] = str(n), n
    lines.append(
        {"Amount": amount(total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
    )
    if total < 0:
        raise ValueError("TotalAmt")
    inv["Line"], inv["TotalAmt"] = lines, amount(total)


def invoice_lines(rng: random.Random) -> list[Doc]:
    lines: list[Doc] = []
    for _ in range(1 + rng.randrange(4)):
        item, name, price = rng.choice(ITEMS)
        qty = 1 + rng.randrange(10)
        lines.append(
            {
                "Amount": amount(money(price) * qty),
                "Description": f"{name} provided",
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": item, "name": name},
                    "UnitPrice": price,
                    "Qty": qty,
                },
            }
        )
    return lines


def seed_realm(
    realm: str,
    rng: random.Random,
    counts: tuple[int, int, int],
    *,
    anchor: float,
    meta: Callable[[float], str],
    day: Callable[[float], str],
) -> RealmData:
    """Deterministic company for (seed, realm, anchor). `meta(epoch)` and `day(epoch)` format
    times in the company's offset; ids ascend with CreateTime, as Intuit assigns them."""
    n_customers, n_invoices, n_payments = counts
    data = RealmData(realm, rng)
    used: set[str] = set()
    created = sorted(anchor - rng.uniform(30, 760) * DAY for _ in range(n_customers))
    for n, ctime in enumerate(created):
        doc = _customer(rng, used, n)
        cid = data.new_id("Customer")
        mtime = ctime + rng.uniform(0, anchor - ctime - 60)
        if rng.random() < 0.2:  # recently edited: something for CDC look-backs to find
            mtime = max(ctime, anchor - rng.uniform(60, 20 * DAY))
        doc.update(
            Id=cid,
            SyncToken=str(rng.randrange(3)),
            MetaData={"CreateTime": meta(ctime), "LastUpdatedTime": meta(mtime)},
        )
        data.docs["Customer"][cid] = doc
    active = [c for c in data.docs["Customer"].values() if c["Active"]]
    txns: list[tuple[float, str, Doc]] = []
    for _ in range(n_invoices if active else 0):
        cust = rng.choice(active)
        txn_time = anchor - rng.uniform(1, 730) * DAY
        term, days = rng.choice(TERMS)
        inv: Doc = {
            "AllowIPNPayment": False,
            "AllowOnlinePayment": False,
            "AllowOnlineCreditCardPayment": False,
            "AllowOnlineACHPayment": False,
            "domain": "QBO",
            "sparse": False,
            "CustomField": [],
            "TxnDate": day(txn_time),
            "CurrencyRef": dict(USD),
            "Line": invoice_lines(rng),
            "TxnTaxDetail": {"TotalTax": 0},
            "CustomerRef": {"value": cust["Id"], "name": cust["DisplayName"]},
            "SalesTermRef": {"value": term},
            "DueDate": day(txn_time + days * DAY),
            "ApplyTaxAfterDiscount": False,
            "PrintStatus": "NeedToPrint",
            "EmailStatus": rng.choice(("NotSet", "EmailSent")),
        }
        if "PrimaryEmailAddr" in cust:
            inv["BillEmail"] = dict(cust["PrimaryEmailAddr"])
        finish_invoice_lines(inv)
        txns.append((txn_time + rng.uniform(0, 3600), "Invoice", inv))
    # Payments: some full, some partial, a few over-paid (UnappliedAmt) or unapplied.
    open_invoices = [t for t in txns if t[1] == "Invoice"]
    rng.shuffle(open_invoices)
    for txn_time, _, inv in open_invoices[:n_payments]:
        total = money(inv["TotalAmt"])
        pay_time = min(anchor - 120, txn_time + 3600 + rng.uniform(0, 40) * DAY)
        share = rng.choice((Decimal(1), Decimal(1), Decimal(1), Decimal("0.5"), Decimal("0.25")))
        applied = money(total * share)
        extra = money(rng.randrange(1, 50)) if rng.random() < 0.1 else Decimal(0)
        line = {"Amount": amount(applied), "LinkedTxn": [{"TxnId": "", "TxnType": "Invoice"}]}
        pay: Doc = {
            "CustomerRef": dict(inv["CustomerRef"]),
            "DepositToAccountRef": {"value": "4"},
            "TotalAmt": amount(applied + extra),
            "UnappliedAmt": amount(extra),
            "ProcessPayment": False,
            "domain": "QBO",
            "sparse": False,
            "TxnDate": day(pay_time),
            "CurrencyRef": dict(USD),
            "Line": [line] if applied > 0 else [],
        }
        if rng.random() < 0.7:
            pay["PaymentMethodRef"] = {"value": rng.choice(PAYMENT_METHODS)}
            pay["PaymentRefNum"] = str(rng.randrange(1000, 99999))
        pay["_links"] = inv  # resolved to the invoice's Id below, once ids are assigned
        txns.append((pay_time, "Payment", pay))
    for ctime, entity, doc in sorted(txns, key=lambda t: t[0]):
        doc["Id"] = data.new_id(entity)
        mtime = ctime + rng.uniform(0, max(0.0, min(anchor - ctime - 60, 30 * DAY)))
        doc["SyncToken"] = str(rng.randrange(2))
        doc["MetaData"] = {"CreateTime": meta(ctime), "LastUpdatedTime": meta(mtime)}
        if entity == "Invoice":
            doc["DocNumber"] = data.new_doc_number()
        data.docs[entity][doc["Id"]] = doc
    for pay in data.docs["Payment"].values():
        target = pay.pop("_links")
        for line in pay["Line"]:
            line["LinkedTxn"][0]["TxnId"] = target["Id"]
    data.derive_balances()
    return data

"""Customer and vendor reports: CustomerSales, VendorExpenses (by period), CustomerBalance,
AgedReceivables, AgedReceivableDetail and AgedPayables (as of `report_date`).

Open amounts as of a date: an invoice's TotalAmt less the payment lines linked to it dated
up to then, a credit memo's (negative) TotalAmt less linked refunds; bills and vendor
credits the same with bill payments. At today's date the totals equal the sums of
Customer.Balance and Vendor.Balance. Aging counts days past `DueDate` (TxnDate for credits)
on `report_date`. Choices (README): `arpaid` "Unpaid" (default) lists customers with a
balance, "Paid" those whose documents are all paid, "All" both.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fake_intuit.data import Doc, RealmData, money, ref_value
from fake_intuit.ledger import postings
from fake_intuit.report_base import (
    Params,
    Row,
    data_row,
    display_name,
    money_columns,
    plain_columns,
    section,
)

ZERO = Decimal(0)
SALES = ("Invoice", "SalesReceipt", "CreditMemo", "RefundReceipt", "Payment")
BY_PERIOD = ("CustomerSales", "VendorExpenses")
Result = tuple[list[Row], list[dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Open:
    entity: str
    doc: Doc
    amount: Decimal  # negative for credits
    party: str  # customer or vendor id
    due: dt.date


def _applied(data: RealmData, payer: str, as_of: str) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for pay in data.docs[payer].values():
        if str(pay.get("TxnDate", "")) > as_of:
            continue
        for line in pay.get("Line") or []:
            for link in line.get("LinkedTxn") or []:
                out[(str(link.get("TxnType")), str(link.get("TxnId")))] += money(
                    line.get("Amount", 0)
                )
    if payer == "Payment":  # refunds of credit memos count as applied to them
        for refund in data.docs["RefundReceipt"].values():
            if str(refund.get("TxnDate", "")) <= as_of:
                for link in refund.get("LinkedTxn") or []:
                    key = (str(link.get("TxnType")), str(link.get("TxnId")))
                    out[key] += money(refund.get("TotalAmt", 0))
    return out


def open_items(data: RealmData, side: str, as_of: dt.date) -> list[Open]:
    """Open receivables (side "AR") or payables ("AP") as of the end of `as_of`."""
    day = as_of.isoformat()
    debit, credit, party, payer = (
        ("Invoice", "CreditMemo", "CustomerRef", "Payment")
        if side == "AR"
        else ("Bill", "VendorCredit", "VendorRef", "BillPayment")
    )
    applied = _applied(data, payer, day)
    out = []
    for entity, sign in ((debit, 1), (credit, -1)):
        for doc in data.docs[entity].values():
            date = str(doc.get("TxnDate", ""))
            if date > day:
                continue
            left = money(doc.get("TotalAmt", 0)) - applied[(entity, doc["Id"])]
            if left > 0:
                due = dt.date.fromisoformat(str(doc.get("DueDate") or date)[:10])
                out.append(Open(entity, doc, sign * left, ref_value(doc, party) or "", due))
    return out


def _party_label(data: RealmData, entity: str, id_: str) -> str:
    doc = data.docs[entity].get(id_)
    return display_name(doc) if doc else "Not Specified"


def _by_party(data: RealmData, p: Params, party: str, classification: str, sign: int) -> Result:
    """Sums of legs on accounts of `classification` per customer/vendor and period."""
    accounts = data.docs["Account"]
    wanted = p.customers if party == "Customer" else p.vendors
    periods = p.periods()
    sums: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO] * len(periods))
    for leg in postings(data, p.basis):
        if accounts.get(leg.account, {}).get("Classification") != classification:
            continue
        if party == "Customer" and leg.entity not in SALES:
            continue
        who = leg.name[1] if leg.name and leg.name[0] == party else ""
        if wanted is not None and who not in wanted:
            continue
        for n, period in enumerate(periods):
            if period.start.isoformat() <= leg.date <= period.end.isoformat():
                sums[who][n] += sign * leg.amount
    rows = []
    order = sorted(sums, key=lambda w: (w == "", _party_label(data, party, w).lower()))
    for who in order:
        if any(sums[who]):
            label = _party_label(data, party, who) if who else "Not Specified"
            rows.append(data_row(label, sums[who], who or None))
    totals = [sum((sums[w][n] for w in sums), ZERO) for n in range(len(periods))]
    rows.append(section(None, [], ("TOTAL", totals), "GrandTotal"))
    first = "Customer" if party == "Customer" else "Vendor"
    return rows, money_columns(p, first), False


def customer_sales(data: RealmData, p: Params) -> Result:
    return _by_party(data, p, "Customer", "Revenue", -1)


def vendor_expenses(data: RealmData, p: Params) -> Result:
    return _by_party(data, p, "Vendor", "Expense", 1)


def customer_balance(data: RealmData, p: Params) -> Result:
    owed: dict[str, Decimal] = defaultdict(Decimal)
    for item in open_items(data, "AR", p.report_date):
        owed[item.party] += item.amount
    everyone = {ref_value(d, "CustomerRef") or "" for d in data.docs["Invoice"].values()}
    chosen = {
        "Unpaid": [c for c in owed if owed[c]],
        "Paid": [c for c in everyone if not owed.get(c)],
        "All": sorted(everyone | set(owed)),
    }.get(p.arpaid, [c for c in owed if owed[c]])
    if p.customers is not None:
        chosen = [c for c in chosen if c in p.customers]
    rows = [
        data_row(_party_label(data, "Customer", c), [owed.get(c, ZERO)], c)
        for c in sorted(set(chosen), key=lambda c: _party_label(data, "Customer", c).lower())
    ]
    total = sum((owed.get(c, ZERO) for c in set(chosen)), ZERO)
    rows.append(section(None, [], ("TOTAL", [total]), "GrandTotal"))
    columns = plain_columns((("", "Customer", "customer"), ("Total", "Money", "total")))
    return rows, columns, True


def _buckets(p: Params) -> list[str]:
    n, size = p.num_periods, p.aging_period
    titles = ["Current"]
    for i in range(n):
        low = i * size + 1
        titles.append(f"{low} and over" if i == n - 1 else f"{low} - {(i + 1) * size}")
    return titles


def _bucket(p: Params, due: dt.date) -> int:
    days = (p.report_date - due).days
    return 0 if days <= 0 else 1 + min((days - 1) // p.aging_period, p.num_periods - 1)


def _aged(data: RealmData, p: Params, side: str) -> Result:
    party = "Customer" if side == "AR" else "Vendor"
    wanted = p.customers if side == "AR" else p.vendors
    titles = _buckets(p)
    sums: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO] * (len(titles) + 1))
    for item in open_items(data, side, p.report_date):
        if wanted is not None and item.party not in wanted:
            continue
        cells = sums[item.party]
        cells[_bucket(p, item.due)] += item.amount
        cells[-1] += item.amount
    rows = [
        data_row(_party_label(data, party, who), sums[who], who)
        for who in sorted(sums, key=lambda w: _party_label(data, party, w).lower())
        if any(sums[who])
    ]
    totals = [sum((sums[w][n] for w in sums), ZERO) for n in range(len(titles) + 1)]
    rows.append(section(None, [], ("TOTAL", totals), "GrandTotal"))
    spec = [("", party, party.lower())]
    spec += [(t, "Money", f"bucket{n}") for n, t in enumerate(titles)]
    spec.append(("Total", "Money", "total"))
    return rows, plain_columns(spec), True


def aged_receivables(data: RealmData, p: Params) -> Result:
    return _aged(data, p, "AR")


def aged_payables(data: RealmData, p: Params) -> Result:
    return _aged(data, p, "AP")


def aged_receivable_detail(data: RealmData, p: Params) -> Result:
    titles = _buckets(p)
    grouped: dict[int, list[Any]] = defaultdict(list)
    for item in open_items(data, "AR", p.report_date):
        if p.customers is None or item.party in p.customers:
            grouped[_bucket(p, item.due)].append(item)
    rows, grand = [], ZERO
    for n, title in enumerate(titles):
        items = sorted(grouped[n], key=lambda i: (str(i.doc.get("TxnDate")), int(i.doc["Id"])))
        if not items:
            continue
        inner = []
        for item in items:
            doc = item.doc
            sign = -1 if item.amount < 0 else 1
            cells = [
                item.entity,
                str(doc.get("DocNumber", "")),
                _party_label(data, "Customer", item.party),
                item.due.isoformat(),
                sign * money(doc.get("TotalAmt", 0)),
                item.amount,
            ]
            row = data_row(str(doc.get("TxnDate", "")), cells)
            row["ColData"][1]["id"] = doc["Id"]
            row["ColData"][3]["id"] = item.party
            inner.append(row)
        total = sum((i.amount for i in items), ZERO)
        grand += total
        blanks = ["", "", "", "", ""]
        rows.append(section(title, inner, (f"Total for {title}", [*blanks, total]), width=6))
    rows.append(section(None, [], ("TOTAL", ["", "", "", "", "", grand]), "GrandTotal"))
    columns = plain_columns(
        (
            ("Date", "Date", "tx_date"),
            ("Transaction Type", "String", "txn_type"),
            ("Num", "String", "doc_num"),
            ("Customer", "String", "cust_name"),
            ("Due Date", "Date", "due_date"),
            ("Amount", "Money", "subt_amount"),
            ("Open Balance", "Money", "subt_open_bal"),
        )
    )
    return rows, columns, True


REPORTS: dict[str, Callable[[RealmData, Params], Result]] = {
    "CustomerSales": customer_sales,
    "VendorExpenses": vendor_expenses,
    "CustomerBalance": customer_balance,
    "AgedReceivables": aged_receivables,
    "AgedReceivableDetail": aged_receivable_detail,
    "AgedPayables": aged_payables,
}

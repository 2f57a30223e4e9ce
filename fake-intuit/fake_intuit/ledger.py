"""The derived side of a company, recomputed from the documents after every write (and once
after seeding), so balances always add up:

- CreditMemo `Balance`/`RemainingCredit`: TotalAmt minus RefundReceipts linked to it and
  Payment lines applying it;
- Customer `Balance`: open invoices minus open credit memos (`RealmData.derive_balances`);
- Bill / VendorCredit `Balance` (and Bill `LinkedTxn`) from BillPayment lines; Vendor
  `Balance` = open bills minus open vendor credits;
- inventory Item `QtyOnHand`: opening quantity + bought (Bill, Purchase) - sold (Invoice,
  SalesReceipt) + returned (CreditMemo, RefundReceipt) - returned to vendors (VendorCredit);
- Account `CurrentBalance` of balance-sheet accounts from the postings of every posting
  transaction (income and expense accounts keep 0, as QBO shows them).

`postings()` is the double-entry journal the reports read. Choices (README): a journal
entry's AR/AP lines move accounts only, not Customer/Vendor balances; a Deposit of a Payment
or SalesReceipt moves money out of Undeposited Funds and leaves the Payment unchanged; on the
Cash basis, Invoice, CreditMemo, Bill and VendorCredit do not post (their inventory legs
still do), a Payment's AR leg becomes Services income and a BillPayment's AP leg Job
Expenses.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from fake_intuit.data import Doc, RealmData, amount, money, ref_value
from fake_intuit.shapes import AP, AR, CHECKING, COGS, INVENTORY, UNDEPOSITED

Basis = Literal["Accrual", "Cash"]
Changed = list[tuple[str, str]]
SERVICES, DISCOUNTS, OPENING_EQUITY, JOB_EXPENSES = "12", "14", "10", "20"
BALANCE_SHEET = ("Asset", "Liability", "Equity")
POSTING = (
    "Invoice",
    "Payment",
    "CreditMemo",
    "SalesReceipt",
    "RefundReceipt",
    "Deposit",
    "Purchase",
    "Bill",
    "BillPayment",
    "VendorCredit",
    "JournalEntry",
    "Transfer",
)
ITEM_REFS = ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef")
ACCRUAL_ONLY = ("Invoice", "CreditMemo", "Bill", "VendorCredit")


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg: `amount` is a debit when positive, a credit when negative."""

    date: str
    account: str
    amount: Decimal
    entity: str  # the transaction's entity ("Invoice"), or "Item" for opening stock
    txn: str
    name: tuple[str, str, str] | None  # (entity, id, display name) of its customer/vendor
    doc_number: str
    memo: str


def _set(doc: Doc, key: str, value: object) -> bool:
    if doc.get(key) == value:
        return False
    doc[key] = value
    return True


def derive(data: RealmData, customers: set[str] | None = None) -> Changed:
    """Recompute every derived field; the (entity, id) pairs whose document changed."""
    changed: Changed = []
    refunded: dict[str, Decimal] = defaultdict(Decimal)  # credit used: refunds, payments
    for pay in data.docs["Payment"].values():
        for line in pay.get("Line") or []:
            for link in line.get("LinkedTxn") or []:
                if link.get("TxnType") == "CreditMemo":
                    refunded[str(link.get("TxnId"))] += money(line.get("Amount", 0))
    for refund in data.docs["RefundReceipt"].values():
        for link in refund.get("LinkedTxn") or []:
            if link.get("TxnType") == "CreditMemo":
                refunded[str(link.get("TxnId"))] += money(refund.get("TotalAmt", 0))
    for memo_id, memo in data.docs["CreditMemo"].items():
        left = amount(max(Decimal(0), money(memo.get("TotalAmt", 0)) - refunded[memo_id]))
        if _set(memo, "Balance", left) | _set(memo, "RemainingCredit", left):
            changed.append(("CreditMemo", memo_id))
            if customers is not None:
                customers.add(ref_value(memo, "CustomerRef") or "")
    changed += data.derive_balances(customers)
    changed += _payables(data)
    changed += _quantities(data)
    changed += _accounts(data)
    return changed


def _payables(data: RealmData) -> Changed:
    changed: Changed = []
    applied: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    links: dict[str, list[str]] = defaultdict(list)
    for pay_id in sorted(data.docs["BillPayment"], key=int):
        for line in data.docs["BillPayment"][pay_id].get("Line") or []:
            for link in line.get("LinkedTxn") or []:
                key = (str(link.get("TxnType")), str(link.get("TxnId")))
                applied[key] += money(line.get("Amount", 0))
                if key[0] == "Bill" and pay_id not in links[key[1]]:
                    links[key[1]].append(pay_id)
    owed: dict[str, Decimal] = defaultdict(Decimal)
    for entity, sign in (("Bill", 1), ("VendorCredit", -1)):
        for id_, doc in data.docs[entity].items():
            left = max(Decimal(0), money(doc.get("TotalAmt", 0)) - applied[(entity, id_)])
            owed[ref_value(doc, "VendorRef") or ""] += sign * left
            moved = _set(doc, "Balance", amount(left))
            if entity == "Bill":
                new = [{"TxnId": p, "TxnType": "BillPayment"} for p in links[id_]]
                if new:
                    moved |= _set(doc, "LinkedTxn", new)
                elif "LinkedTxn" in doc:
                    del doc["LinkedTxn"]
                    moved = True
            if moved:
                changed.append((entity, id_))
    for vendor_id, vendor in data.docs["Vendor"].items():
        if _set(vendor, "Balance", amount(owed[vendor_id])):
            changed.append(("Vendor", vendor_id))
    return changed


def _item_lines(doc: Doc) -> list[tuple[str, Decimal, Doc]]:
    """(item id, quantity, line) of a transaction's item lines."""
    out = []
    for line in doc.get("Line") or []:
        detail = line.get("SalesItemLineDetail") or line.get("ItemBasedExpenseLineDetail")
        if isinstance(detail, dict) and ref_value(detail, "ItemRef"):
            out.append((ref_value(detail, "ItemRef") or "", money(detail.get("Qty", 0)), line))
    return out


QTY_SIGN = {
    "Invoice": -1,
    "SalesReceipt": -1,
    "CreditMemo": 1,
    "RefundReceipt": 1,
    "Bill": 1,
    "Purchase": 1,
    "VendorCredit": -1,
}


def _quantities(data: RealmData) -> Changed:
    qty: dict[str, Decimal] = defaultdict(Decimal, data.opening_qty)
    cache = data.ledger_cache
    for entity, sign in QTY_SIGN.items():
        for id_, doc in data.docs[entity].items():
            stamp = ("qty", doc.get("SyncToken"), id(doc))
            hit = cache.get(("qty", entity, id_))
            if hit is None or hit[0] != stamp:
                hit = (stamp, [(item, count) for item, count, _ in _item_lines(doc)])
                cache[("qty", entity, id_)] = hit
            for item_id, count in hit[1]:
                qty[item_id] += sign * count
    changed: Changed = []
    for item_id, item in data.docs["Item"].items():
        if item.get("Type") == "Inventory":
            value = qty[item_id]
            shown = int(value) if value == value.to_integral_value() else float(value)
            if _set(item, "QtyOnHand", shown):
                changed.append(("Item", item_id))
    return changed


def _accounts(data: RealmData) -> Changed:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for post in postings(data):
        totals[post.account] += post.amount
    accounts = data.docs["Account"]
    own: dict[str, Decimal] = {}
    for id_, account in accounts.items():
        cls = account.get("Classification")
        own[id_] = (
            Decimal(0)
            if cls not in BALANCE_SHEET
            else (totals[id_] if cls == "Asset" else -totals[id_])
        )
    with_subs = dict(own)
    for id_, account in accounts.items():
        parent = ref_value(account, "ParentRef")
        while parent is not None and parent in accounts:
            with_subs[parent] += own[id_]
            parent = ref_value(accounts[parent], "ParentRef")
    changed: Changed = []
    for id_, account in accounts.items():
        moved = _set(account, "CurrentBalance", amount(own[id_]))
        moved |= _set(account, "CurrentBalanceWithSubAccounts", amount(with_subs[id_]))
        if moved:
            changed.append(("Account", id_))
    return changed


class _Journal:
    def __init__(self, data: RealmData, basis: Basis) -> None:
        self.data, self.basis = data, basis
        self.out: list[Posting] = []
        self.items = data.docs["Item"]

    def name_of(self, doc: Doc) -> tuple[str, str, str] | None:
        for key, entity in (("CustomerRef", "Customer"), ("VendorRef", "Vendor")):
            ref = doc.get(key)
            if isinstance(ref, dict) and ref.get("value"):
                return (entity, str(ref["value"]), str(ref.get("name", "")))
        ref = doc.get("EntityRef")
        if isinstance(ref, dict) and ref.get("value"):
            return (str(ref.get("type", "Vendor")), str(ref["value"]), str(ref.get("name", "")))
        return None

    def post(self, entity: str, doc: Doc, account: str | None, value: Decimal, memo: str) -> None:
        if value == 0 or account is None:
            return
        self.out.append(
            Posting(
                str(doc.get("TxnDate", "")),
                account,
                value,
                entity,
                str(doc["Id"]),
                self.name_of(doc),
                str(doc.get("DocNumber", "")),
                memo or str(doc.get("PrivateNote", "")),
            )
        )

    def item_account(self, item_id: str, key: str, default: str) -> str:
        item = self.items.get(item_id)
        return (ref_value(item, key) if item else None) or default

    def sales(self, entity: str, doc: Doc, sign: int) -> None:
        """Income legs (credit for a sale: sign 1) and inventory legs of sales lines."""
        cash = self.basis == "Cash" and entity in ACCRUAL_ONLY
        for line in doc.get("Line") or []:
            value = money(line.get("Amount", 0))
            memo = str(line.get("Description", ""))
            if line.get("DetailType") == "DiscountLineDetail" and not cash:
                self.post(entity, doc, DISCOUNTS, sign * value, memo)
            detail = line.get("SalesItemLineDetail")
            if not isinstance(detail, dict):
                continue
            item_id = ref_value(detail, "ItemRef") or ""
            if not cash:
                account = self.item_account(item_id, "IncomeAccountRef", SERVICES)
                self.post(entity, doc, account, -sign * value, memo)
            item = self.items.get(item_id)
            if item and item.get("Type") == "Inventory":
                cost = money(detail.get("Qty", 0)) * money(item.get("PurchaseCost", 0))
                cogs = self.item_account(item_id, "ExpenseAccountRef", COGS)
                stock = self.item_account(item_id, "AssetAccountRef", INVENTORY)
                self.post(entity, doc, cogs, sign * cost, memo)
                self.post(entity, doc, stock, -sign * cost, memo)

    def expenses(self, entity: str, doc: Doc, sign: int) -> None:
        """Expense legs (debit for a purchase: sign 1) of expense lines."""
        if self.basis == "Cash" and entity in ACCRUAL_ONLY:
            return
        for line in doc.get("Line") or []:
            value, memo = money(line.get("Amount", 0)), str(line.get("Description", ""))
            detail = line.get("AccountBasedExpenseLineDetail")
            if isinstance(detail, dict):
                self.post(entity, doc, ref_value(detail, "AccountRef"), sign * value, memo)
                continue
            detail = line.get("ItemBasedExpenseLineDetail") or {}
            item = self.items.get(ref_value(detail, "ItemRef") or "")
            key = "AssetAccountRef" if item and item.get("Type") == "Inventory" else ""
            account = self.item_account(
                ref_value(detail, "ItemRef") or "", key or "ExpenseAccountRef", JOB_EXPENSES
            )
            self.post(entity, doc, account, sign * value, memo)

    def run(self) -> list[Posting]:
        docs = self.data.docs
        for item_id, qty in self.data.opening_qty.items():
            item = self.items.get(item_id)
            if item is not None and qty:
                stub = {"Id": item_id, "TxnDate": item.get("InvStartDate", "")}
                value = qty * money(item.get("PurchaseCost", 0))
                self.post("Item", stub, INVENTORY, value, "Opening inventory")
                self.post("Item", stub, OPENING_EQUITY, -value, "Opening inventory")
        # Legs of a document are memoised on its SyncToken (every write bumps it before the
        # ledger runs) and on what the items say about accounts and costs.
        items = tuple(
            (k, i.get("Type"), i.get("PurchaseCost"), *(ref_value(i, r) for r in ITEM_REFS))
            for k, i in sorted(self.items.items())
        )
        cache = self.data.ledger_cache
        for entity in POSTING:
            for id_ in sorted(docs[entity], key=int):
                doc = docs[entity][id_]
                stamp = (self.basis, items, doc.get("SyncToken"), id(doc))
                hit = cache.get((entity, id_))
                if hit is not None and hit[0] == stamp:
                    self.out.extend(hit[1])
                    continue
                start = len(self.out)
                self.one(entity, doc)
                cache[(entity, id_)] = (stamp, self.out[start:])
        return self.out

    def one(self, entity: str, doc: Doc) -> None:
        cash = self.basis == "Cash"
        total = money(doc.get("TotalAmt", 0))
        skip = cash and entity in ACCRUAL_ONLY
        if entity == "Invoice":
            if not skip:
                self.post(entity, doc, AR, total, "")
            self.sales(entity, doc, 1)
        elif entity == "CreditMemo":
            if not skip:
                self.post(entity, doc, AR, -total, "")
            self.sales(entity, doc, -1)
        elif entity == "SalesReceipt":
            self.post(entity, doc, ref_value(doc, "DepositToAccountRef"), total, "")
            self.sales(entity, doc, 1)
        elif entity == "RefundReceipt":
            self.post(entity, doc, ref_value(doc, "DepositToAccountRef"), -total, "")
            if doc.get("LinkedTxn"):  # the refund of a credit memo: back to AR
                self.post(entity, doc, SERVICES if cash else AR, total, "")
                self.sales(entity, {**doc, "Line": []}, -1)
            else:
                self.sales(entity, doc, -1)
        elif entity == "Payment":
            self.post(entity, doc, ref_value(doc, "DepositToAccountRef"), total, "")
            self.post(entity, doc, SERVICES if cash else AR, -total, "")
        elif entity == "Deposit":
            self.post(entity, doc, ref_value(doc, "DepositToAccountRef"), total, "")
            for line in doc.get("Line") or []:
                detail = line.get("DepositLineDetail") or {}
                account = UNDEPOSITED if line.get("LinkedTxn") else None
                account = account or ref_value(detail, "AccountRef")
                self.post(entity, doc, account, -money(line.get("Amount", 0)), "")
        elif entity in ("Purchase", "Bill", "VendorCredit"):
            sign = -1 if entity == "VendorCredit" else 1
            other = ref_value(doc, "AccountRef" if entity == "Purchase" else "APAccountRef")
            if not skip:
                self.post(entity, doc, other or AP, -sign * total, "")
            self.expenses(entity, doc, sign)
        elif entity == "BillPayment":
            card = doc.get("CreditCardPayment") or {}
            check = doc.get("CheckPayment") or {}
            source = ref_value(card, "CCAccountRef") or ref_value(check, "BankAccountRef")
            self.post(entity, doc, source or CHECKING, -total, "")
            ap = ref_value(doc, "APAccountRef") or AP
            self.post(entity, doc, JOB_EXPENSES if cash else ap, total, "")
        elif entity == "JournalEntry":
            for line in doc.get("Line") or []:
                detail = line.get("JournalEntryLineDetail") or {}
                value = money(line.get("Amount", 0))
                value = value if detail.get("PostingType") == "Debit" else -value
                memo = str(line.get("Description", ""))
                self.post(entity, doc, ref_value(detail, "AccountRef"), value, memo)
        elif entity == "Transfer":
            value = money(doc.get("Amount", 0))
            self.post(entity, doc, ref_value(doc, "ToAccountRef"), value, "")
            self.post(entity, doc, ref_value(doc, "FromAccountRef"), -value, "")


def postings(data: RealmData, basis: Basis = "Accrual") -> list[Posting]:
    """Every leg of every posting transaction (and opening stock); each one sums to 0."""
    return _Journal(data, basis).run()

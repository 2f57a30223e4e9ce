"""Shaping and validating documents of the entities beyond Customer, Invoice and Payment:
refs resolved (with their `name`), lines priced, `TotalAmt` summed, defaults set. Seeding
and every write go through the same functions, so seeded data obeys the write rules.

Derived fields (balances, QtyOnHand, LinkedTxn of paid bills) are left to `ledger`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fake_intuit.data import Doc, RealmData, amount, finish_invoice_lines, money, ref_value
from fake_intuit.errors import WriteError, business, invalid_ref, missing

# AccountType -> Classification (QBO's fixed mapping).
CLASSIFICATION = {
    "Bank": "Asset",
    "Accounts Receivable": "Asset",
    "Other Current Asset": "Asset",
    "Fixed Asset": "Asset",
    "Other Asset": "Asset",
    "Accounts Payable": "Liability",
    "Credit Card": "Liability",
    "Other Current Liability": "Liability",
    "Long Term Liability": "Liability",
    "Equity": "Equity",
    "Income": "Revenue",
    "Other Income": "Revenue",
    "Cost of Goods Sold": "Expense",
    "Expense": "Expense",
    "Other Expense": "Expense",
}
# Well-known accounts of the seeded chart (seed_more.CHART): default refs of writes.
CHECKING, UNDEPOSITED, AR, INVENTORY, AP, COGS = "1", "4", "3", "5", "7", "15"
DEFAULTS: dict[str, Doc] = {
    "Account": {"Active": True, "SubAccount": False, "CurrentBalance": 0},
    "Item": {"Active": True, "Taxable": False, "SubItem": False, "Type": "Service"},
    "Vendor": {"Active": True, "Balance": 0, "Vendor1099": False},
    "Employee": {"Active": True, "BillableTime": False},
    "Class": {"Active": True, "SubClass": False},
    "Department": {"Active": True, "SubDepartment": False},
    "Term": {"Active": True, "Type": "STANDARD", "DueDays": 0},
    "PaymentMethod": {"Active": True, "Type": "NON_CREDIT_CARD"},
    "Estimate": {"TxnStatus": "Pending", "PrintStatus": "NeedToPrint", "EmailStatus": "NotSet"},
    "CreditMemo": {"PrintStatus": "NeedToPrint", "EmailStatus": "NotSet"},
    "SalesReceipt": {"PrintStatus": "NeedToPrint", "EmailStatus": "NotSet"},
    "RefundReceipt": {"PrintStatus": "NeedToPrint", "PaymentType": "Check"},
    "Purchase": {"PaymentType": "Cash", "Credit": False},
    "PurchaseOrder": {"POStatus": "Open", "EmailStatus": "NotSet"},
    "JournalEntry": {"Adjustment": False},
    "BillPayment": {"PayType": "Check"},
    "TimeActivity": {"NameOf": "Employee", "BillableStatus": "NotBillable"},
    "Attachable": {"Category": "Document"},
    "Preferences": {},
    "Bill": {},
    "VendorCredit": {},
    "Deposit": {},
    "Transfer": {},
}
# Fields a write may not set (derived or assigned by the fake).
READ_ONLY: dict[str, set[str]] = {
    "Account": {"CurrentBalance", "CurrentBalanceWithSubAccounts", "Classification"},
    "Item": {"QtyOnHand"},
    "Vendor": {"Balance"},
    "Bill": {"Balance", "TotalAmt", "LinkedTxn"},
    "VendorCredit": {"Balance", "TotalAmt"},
    "CreditMemo": {"Balance", "RemainingCredit", "TotalAmt"},
    "SalesReceipt": {"Balance", "TotalAmt"},
    "RefundReceipt": {"Balance", "TotalAmt"},
    "Estimate": {"TotalAmt"},
    "Purchase": {"TotalAmt"},
    "PurchaseOrder": {"TotalAmt"},
    "Deposit": {"TotalAmt"},
    "JournalEntry": {"TotalAmt"},
    "BillPayment": {"TotalAmt"},
}
NAME_KEYS = {"Account": "Name", "Item": "Name", "Class": "Name", "Department": "Name"}


def display(doc: Doc) -> str:
    for key in ("DisplayName", "FullyQualifiedName", "Name"):
        if doc.get(key):
            return str(doc[key])
    return ""


def set_date(doc: Doc, key: str, default: str | None) -> None:
    """`doc[key]` defaulted (when `default` is given) and checked as an ISO date: 2010."""
    if default is not None:
        doc.setdefault(key, default)
    if key not in doc:
        return
    try:
        dt.date.fromisoformat(str(doc[key]))
    except ValueError as exc:
        raise WriteError(
            "2010",
            "Request has invalid or unsupported property",
            f"Property Name:{key} has an invalid date",
            key,
        ) from exc


class Shaper:
    """Shapes one document of one entity in a realm; `today` is the company's date."""

    def __init__(self, data: RealmData, today: str) -> None:
        self.data, self.today = data, today

    # -- helpers --------------------------------------------------------------------------
    def ref(
        self, doc: Doc, key: str, entity: str, *, default: str | None = None, need: bool = False
    ) -> Doc | None:
        """Resolve `doc[key]` (a {"value"} ref to `entity`), set its name, return the target."""
        value = ref_value(doc, key) if key in doc else default
        if value is None:
            if need:
                raise missing(key)
            doc.pop(key, None)
            return None
        target = self.data.docs[entity].get(value)
        if target is None:
            raise invalid_ref(key, value)
        doc[key] = {"value": value, "name": display(target)}
        return target

    def date(self, doc: Doc, key: str, default: str | None) -> None:
        set_date(doc, key, default)

    def doc_number(self, doc: Doc) -> None:
        doc.setdefault("DocNumber", self.data.new_doc_number())

    def amounts(self, doc: Doc, key: str = "Line") -> list[tuple[Decimal, Doc]]:
        out = []
        for line in doc.get(key) or []:
            if not isinstance(line, dict) or "Amount" not in line:
                raise missing(f"{key}.Amount")
            try:
                value = money(line["Amount"])
            except ValueError as exc:
                raise business(f"invalid amount: {exc}") from exc
            if value < 0:
                raise business("line amounts must not be negative")
            line["Amount"] = amount(value)
            out.append((value, line))
        return out

    def number_lines(self, doc: Doc) -> None:
        for n, line in enumerate(doc.get("Line") or [], 1):
            line["Id"] = str(n)
            line.setdefault("LineNum", n)

    def unique(self, entity: str, doc: Doc, key: str, old: Doc | None) -> None:
        name = str(doc.get(key) or "")
        if not name:
            raise missing(key)
        for other in self.data.docs[entity].values():
            if other is not old and str(other.get(key, "")).lower() == name.lower():
                raise WriteError(
                    "6240",
                    "Duplicate Name Exists Error",
                    f"The name supplied already exists. : Another {entity.lower()} is "
                    f"already using this name. Id={other['Id']}",
                )

    # -- name lists ---------------------------------------------------------------------------
    def shape(self, entity: str, doc: Doc, old: Doc | None) -> None:
        shape: Callable[[Doc, Doc | None], None] = getattr(self, f"_{entity.lower()}")
        shape(doc, old)

    def _named(self, entity: str, doc: Doc, old: Doc | None) -> None:
        self.unique(entity, doc, "Name", old)
        parent = None
        for key in ("ParentRef",):
            if key in doc:
                parent = self.ref(doc, key, entity)
        doc["FullyQualifiedName"] = (
            f"{parent['FullyQualifiedName']}:{doc['Name']}" if parent else doc["Name"]
        )

    def _account(self, doc: Doc, old: Doc | None) -> None:
        self._named("Account", doc, old)
        kind = doc.get("AccountType")
        if kind not in CLASSIFICATION:
            raise missing("AccountType") if kind is None else business(f"AccountType {kind}")
        doc["Classification"] = CLASSIFICATION[str(kind)]
        doc["SubAccount"] = "ParentRef" in doc
        doc.setdefault("CurrentBalanceWithSubAccounts", doc.get("CurrentBalance", 0))

    def _item(self, doc: Doc, old: Doc | None) -> None:
        self._named("Item", doc, old)
        doc["SubItem"] = "ParentRef" in doc
        kind = doc.get("Type")
        if kind not in ("Service", "Inventory", "NonInventory", "Group", "Category"):
            raise business(f"Item Type {kind}")
        self.ref(doc, "IncomeAccountRef", "Account", default="12")
        if kind == "Inventory":
            self.ref(doc, "ExpenseAccountRef", "Account", default=COGS)
            self.ref(doc, "AssetAccountRef", "Account", default=INVENTORY)
            doc["TrackQtyOnHand"] = True
            self.date(doc, "InvStartDate", self.today)
            doc.setdefault("QtyOnHand", 0)  # a create's QtyOnHand is the opening quantity
        else:
            self.ref(doc, "ExpenseAccountRef", "Account")
            doc["TrackQtyOnHand"] = False
            doc.pop("QtyOnHand", None)
        for key in ("UnitPrice", "PurchaseCost"):
            doc[key] = amount(money(doc.get(key, 0)))

    def _person(self, entity: str, doc: Doc, old: Doc | None) -> None:
        parts = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
        name = (
            doc.get("DisplayName")
            or " ".join(str(doc[k]) for k in parts if doc.get(k))
            or doc.get("CompanyName")
        )
        doc["DisplayName"] = name
        self.unique(entity, doc, "DisplayName", old)
        doc.setdefault("PrintOnCheckName", name)

    def _vendor(self, doc: Doc, old: Doc | None) -> None:
        self._person("Vendor", doc, old)
        self.ref(doc, "TermRef", "Term")
        doc.setdefault("Balance", 0)

    def _employee(self, doc: Doc, old: Doc | None) -> None:
        self._person("Employee", doc, old)

    def _class(self, doc: Doc, old: Doc | None) -> None:
        self._named("Class", doc, old)
        doc["SubClass"] = "ParentRef" in doc

    def _department(self, doc: Doc, old: Doc | None) -> None:
        self._named("Department", doc, old)
        doc["SubDepartment"] = "ParentRef" in doc

    def _term(self, doc: Doc, old: Doc | None) -> None:
        self.unique("Term", doc, "Name", old)

    def _paymentmethod(self, doc: Doc, old: Doc | None) -> None:
        self.unique("PaymentMethod", doc, "Name", old)

    def _preferences(self, doc: Doc, old: Doc | None) -> None:
        basis = (doc.get("ReportPrefs") or {}).get("ReportBasis", "Accrual")
        if basis not in ("Accrual", "Cash"):
            raise business(f"ReportBasis {basis}")

    def _attachable(self, doc: Doc, old: Doc | None) -> None:
        if not doc.get("FileName") and not doc.get("Note"):
            raise missing("FileName")
        for ref in doc.get("AttachableRef") or []:
            entity_ref = ref.get("EntityRef") or {} if isinstance(ref, dict) else {}
            kind, value = entity_ref.get("type"), entity_ref.get("value")
            if kind not in self.data.docs or str(value) not in self.data.docs[kind]:
                raise invalid_ref("AttachableRef", str(value))
        doc.setdefault("Size", 0)

    # -- transactions ---------------------------------------------------------------------------
    def _txn(self, doc: Doc) -> None:
        self.date(doc, "TxnDate", self.today)
        doc.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})

    def _sales(self, doc: Doc, *, customer: bool = True) -> None:
        self._txn(doc)
        self.ref(doc, "CustomerRef", "Customer", need=customer)
        self.ref(doc, "ClassRef", "Class")
        self.ref(doc, "DepartmentRef", "Department")
        if not doc.get("Line"):
            raise missing("Line")
        for line in doc["Line"]:
            detail = line.get("SalesItemLineDetail") if isinstance(line, dict) else None
            if isinstance(detail, dict):
                self.ref(detail, "ItemRef", "Item", default="1")
        try:
            finish_invoice_lines(doc)
        except ValueError as exc:
            if str(exc) == "Line.Amount":
                raise missing("Line.Amount") from exc
            raise business(f"invalid {exc}") from exc
        self.doc_number(doc)

    def _estimate(self, doc: Doc, old: Doc | None) -> None:
        self._sales(doc)
        due = dt.date.fromisoformat(doc["TxnDate"]) + dt.timedelta(days=30)
        self.date(doc, "DueDate", due.isoformat())

    def _creditmemo(self, doc: Doc, old: Doc | None) -> None:
        self._sales(doc)
        doc["Balance"] = doc["RemainingCredit"] = doc["TotalAmt"]  # ledger subtracts refunds

    def _salesreceipt(self, doc: Doc, old: Doc | None) -> None:
        self._sales(doc, customer=False)
        self.ref(doc, "DepositToAccountRef", "Account", default=UNDEPOSITED)
        self.ref(doc, "PaymentMethodRef", "PaymentMethod")
        doc["Balance"] = 0

    def _refundreceipt(self, doc: Doc, old: Doc | None) -> None:
        self._sales(doc, customer=False)
        self.ref(doc, "DepositToAccountRef", "Account", default=CHECKING)
        self.ref(doc, "PaymentMethodRef", "PaymentMethod")
        doc["Balance"] = 0
        for link in doc.get("LinkedTxn") or []:
            memo = self.data.docs["CreditMemo"].get(str(link.get("TxnId")))
            if link.get("TxnType") != "CreditMemo" or memo is None:
                raise invalid_ref("LinkedTxn", str(link.get("TxnId")))
            if ref_value(memo, "CustomerRef") != ref_value(doc, "CustomerRef"):
                raise business(f"CreditMemo {memo['Id']} belongs to another customer")

    def _expense_lines(self, doc: Doc) -> Decimal:
        """AccountBasedExpenseLineDetail / ItemBasedExpenseLineDetail lines; their sum."""
        total = Decimal(0)
        if not doc.get("Line"):
            raise missing("Line")
        for line in doc["Line"]:
            if not isinstance(line, dict):
                raise business("invalid Line")
            item_detail = line.get("ItemBasedExpenseLineDetail")
            if isinstance(item_detail, dict):
                line["DetailType"] = "ItemBasedExpenseLineDetail"
                self.ref(item_detail, "ItemRef", "Item", need=True)
                if "Amount" not in line and "Qty" in item_detail and "UnitPrice" in item_detail:
                    qty, price = money(item_detail["Qty"]), money(item_detail["UnitPrice"])
                    line["Amount"] = amount(qty * price)
                self.ref(item_detail, "CustomerRef", "Customer")
            else:
                detail = line.get("AccountBasedExpenseLineDetail")
                if not isinstance(detail, dict):
                    raise missing("Line.AccountBasedExpenseLineDetail")
                line["DetailType"] = "AccountBasedExpenseLineDetail"
                self.ref(detail, "AccountRef", "Account", need=True)
                self.ref(detail, "CustomerRef", "Customer")
                self.ref(detail, "ClassRef", "Class")
        for value, _line in self.amounts(doc):
            total += value
        self.number_lines(doc)
        return total

    def _bill(self, doc: Doc, old: Doc | None) -> None:
        self._txn(doc)
        self.ref(doc, "VendorRef", "Vendor", need=True)
        self.ref(doc, "APAccountRef", "Account", default=AP)
        term = self.ref(doc, "SalesTermRef", "Term")
        doc["TotalAmt"] = amount(self._expense_lines(doc))
        days = int(term.get("DueDays", 0)) if term else 30
        due = dt.date.fromisoformat(doc["TxnDate"]) + dt.timedelta(days=days)
        self.date(doc, "DueDate", due.isoformat())
        doc["Balance"] = doc["TotalAmt"]
        if old is not None and money(old.get("TotalAmt", 0)) - money(old.get("Balance", 0)):
            paid = money(old["TotalAmt"]) - money(old["Balance"])
            if money(doc["TotalAmt"]) < paid:
                raise business("the bill total is less than the payments applied to it")

    def _vendorcredit(self, doc: Doc, old: Doc | None) -> None:
        self._txn(doc)
        self.ref(doc, "VendorRef", "Vendor", need=True)
        self.ref(doc, "APAccountRef", "Account", default=AP)
        doc["TotalAmt"] = doc["Balance"] = amount(self._expense_lines(doc))

    def _purchaseorder(self, doc: Doc, old: Doc | None) -> None:
        self._txn(doc)
        self.ref(doc, "VendorRef", "Vendor", need=True)
        self.ref(doc, "APAccountRef", "Account", default=AP)
        doc["TotalAmt"] = amount(self._expense_lines(doc))
        self.date(doc, "DueDate", None)
        self.doc_number(doc)

    def _purchase(self, doc: Doc, old: Doc | None) -> None:
        self._txn(doc)
        if doc.get("PaymentType") not in ("Cash", "Check", "CreditCard"):
            raise business(f"PaymentType {doc.get('PaymentType')}")
        default = "8" if doc["PaymentType"] == "CreditCard" else CHECKING
        self.ref(doc, "AccountRef", "Account", default=default)
        entity_ref = doc.get("EntityRef")
        if isinstance(entity_ref, dict):
            kind = str(entity_ref.get("type", "Vendor"))
            if kind not in ("Vendor", "Customer", "Employee"):
                raise invalid_ref("EntityRef", str(entity_ref.get("value")))
            self.ref(doc, "EntityRef", kind)
            doc["EntityRef"]["type"] = kind
        self.ref(doc, "PaymentMethodRef", "PaymentMethod")
        doc["TotalAmt"] = amount(self._expense_lines(doc))

    def _billpayment(self, doc: Doc, old: Doc | None) -> None:
        self._txn(doc)
        vendor = self.ref(doc, "VendorRef", "Vendor", need=True)
        self.ref(doc, "APAccountRef", "Account", default=AP)
        if doc.get("PayType") == "CreditCard":
            card = doc.setdefault("CreditCardPayment", {})
            self.ref(card, "CCAccountRef", "Account", default="8")
            doc.pop("CheckPayment", None)
        elif doc.get("PayType") == "Check":
            check = doc.setdefault("CheckPayment", {})
            self.ref(check, "BankAccountRef", "Account", default=CHECKING)
            check.setdefault("PrintStatus", "NeedToPrint")
            doc.pop("CreditCardPayment", None)
        else:
            raise business(f"PayType {doc.get('PayType')}")
        total = Decimal(0)
        for value, line in self.amounts(doc):
            links = line.get("LinkedTxn") or []
            if len(links) != 1:
                raise missing("Line.LinkedTxn")
            kind, tid = links[0].get("TxnType"), str(links[0].get("TxnId"))
            target = self.data.docs.get(str(kind), {}).get(tid)
            if kind not in ("Bill", "VendorCredit") or target is None:
                raise invalid_ref("LinkedTxn", tid)
            if vendor is None or ref_value(target, "VendorRef") != vendor["Id"]:
                raise business(f"{kind} {tid} belongs to another vendor")
            applied = self._applied(kind, tid, old)
            if applied + value > money(target["TotalAmt"]):
                raise business(f"the amount applied exceeds the balance of {kind} {tid}")
            total += value if kind == "Bill" else -value
        if total < 0:
            raise business("vendor credits exceed the bills paid")
        doc["TotalAmt"] = amount(total)
        self.doc_number(doc)

    def _applied(self, kind: str, tid: str, old: Doc | None) -> Decimal:
        applied = Decimal(0)
        for pay in self.data.docs["BillPayment"].values():
            if pay is old:
                continue
            for line in pay.get("Line") or []:
                for link in line.get("LinkedTxn") or []:
                    if link.get("TxnType") == kind and str(link.get("TxnId")) == tid:
                        applied += money(line.get("Amount", 0))
        return applied

    def _deposit(self, doc: Doc, old: Doc | None) -> None:
        self._txn(doc)
        self.ref(doc, "DepositToAccountRef", "Account", default=CHECKING)
        total = Decimal(0)
        taken: dict[tuple[str, str], Any] = {}
        for other in self.data.docs["Deposit"].values():
            if other is not old:
                for line in other.get("Line") or []:
                    for link in line.get("LinkedTxn") or []:
                        taken[(str(link.get("TxnType")), str(link.get("TxnId")))] = other["Id"]
        for value, line in self.amounts(doc):
            links = line.get("LinkedTxn") or []
            if links:
                kind, tid = str(links[0].get("TxnType")), str(links[0].get("TxnId"))
                source = self.data.docs.get(kind, {}).get(tid)
                if kind not in ("Payment", "SalesReceipt") or source is None:
                    raise invalid_ref("LinkedTxn", tid)
                if (kind, tid) in taken:
                    raise business(f"{kind} {tid} is already deposited")
                if value != money(source.get("TotalAmt", 0)):
                    raise business(f"the line amount must equal {kind} {tid}'s TotalAmt")
            else:
                detail = line.get("DepositLineDetail")
                if not isinstance(detail, dict):
                    raise missing("Line.DepositLineDetail")
                line["DetailType"] = "DepositLineDetail"
                self.ref(detail, "AccountRef", "Account", need=True)
            total += value
        self.number_lines(doc)
        doc["TotalAmt"] = amount(total)

    def _journalentry(self, doc: Doc, old: Doc | None) -> None:
        self._txn(doc)
        balance, debits = Decimal(0), Decimal(0)
        if not doc.get("Line"):
            raise missing("Line")
        for value, line in self.amounts(doc):
            detail = line.get("JournalEntryLineDetail")
            if not isinstance(detail, dict):
                raise missing("Line.JournalEntryLineDetail")
            line["DetailType"] = "JournalEntryLineDetail"
            posting = detail.get("PostingType")
            if posting not in ("Debit", "Credit"):
                raise missing("Line.JournalEntryLineDetail.PostingType")
            self.ref(detail, "AccountRef", "Account", need=True)
            balance += value if posting == "Debit" else -value
            debits += value if posting == "Debit" else 0
        if balance != 0:
            raise business("Journal Entry must be balanced: debits must equal credits")
        self.number_lines(doc)
        doc["TotalAmt"] = amount(debits)
        self.doc_number(doc)

    def _transfer(self, doc: Doc, old: Doc | None) -> None:
        self._txn(doc)
        source = self.ref(doc, "FromAccountRef", "Account", need=True)
        target = self.ref(doc, "ToAccountRef", "Account", need=True)
        if source is target:
            raise business("the accounts of a transfer must differ")
        if "Amount" not in doc:
            raise missing("Amount")
        value = money(doc["Amount"])
        if value <= 0:
            raise business("Amount must be positive")
        doc["Amount"] = amount(value)

    def _timeactivity(self, doc: Doc, old: Doc | None) -> None:
        self._txn(doc)
        kind = doc.get("NameOf")
        if kind not in ("Employee", "Vendor"):
            raise business(f"NameOf {kind}")
        self.ref(doc, f"{kind}Ref", str(kind), need=True)
        self.ref(doc, "CustomerRef", "Customer")
        self.ref(doc, "ItemRef", "Item")
        for key in ("Hours", "Minutes"):
            doc[key] = int(doc.get(key, 0))
        if "HourlyRate" in doc:
            doc["HourlyRate"] = amount(money(doc["HourlyRate"]))

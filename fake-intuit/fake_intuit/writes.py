"""Writes with Intuit's side effects: create, full/sparse update, delete, void, send."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from fake_intuit import ledger
from fake_intuit.catalog import SPECS
from fake_intuit.data import USD, Doc, RealmData, amount, finish_invoice_lines, money, ref_value
from fake_intuit.errors import WriteError, not_found
from fake_intuit.errors import business as _business
from fake_intuit.errors import missing as _missing
from fake_intuit.shapes import DEFAULTS as SHAPE_DEFAULTS
from fake_intuit.shapes import READ_ONLY as SHAPE_READ_ONLY
from fake_intuit.shapes import Shaper, set_date

CORE = ("Customer", "Invoice", "Payment")
_LINKABLE = ("Invoice", "CreditMemo")
READ_ONLY = SHAPE_READ_ONLY | {
    "Customer": {"Balance", "BalanceWithJobs", "FullyQualifiedName"},
    "Invoice": {"TotalAmt", "Balance", "LinkedTxn"},
    "Payment": {"UnappliedAmt"},
}
ALWAYS_READ_ONLY = {"Id", "SyncToken", "MetaData", "domain", "sparse"}
DEFAULTS: dict[str, Doc] = SHAPE_DEFAULTS | {
    "Customer": {
        "Taxable": False,
        "Job": False,
        "BillWithParent": False,
        "PreferredDeliveryMethod": "Print",
        "IsProject": False,
        "Active": True,
    },
    "Invoice": {
        "AllowIPNPayment": False,
        "AllowOnlinePayment": False,
        "AllowOnlineCreditCardPayment": False,
        "AllowOnlineACHPayment": False,
        "CustomField": [],
        "TxnTaxDetail": {"TotalTax": 0},
        "ApplyTaxAfterDiscount": False,
        "PrintStatus": "NotSet",
        "EmailStatus": "NotSet",
    },
    "Payment": {"DepositToAccountRef": {"value": "4"}, "ProcessPayment": False},
}
NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")


@dataclass
class WriteResult:
    entity: str
    doc: Doc  # a snapshot for the response: the entity, or the Deleted stub
    operation: str  # webhook operation: Create | Update | Delete | Void
    changed: list[tuple[str, str]] = field(default_factory=list)  # every (entity, id) bumped


def _has_currency(entity: str) -> bool:
    return SPECS[entity].family == "txn" or entity in ("Customer", "Vendor")


def snapshot(doc: Doc) -> Doc:
    loaded: Doc = orjson.loads(orjson.dumps(doc))
    return loaded


class Writer:
    """Applies one write to a realm at one instant (`meta` and `today` in company time).

    Decision (qbo-api.md leaves it unsure): a write bumps SyncToken and LastUpdatedTime of
    every document whose content it changes, so a Payment applied to an Invoice bumps that
    Invoice (its Balance and LinkedTxn change) and the Customer (its Balance) as well.
    """

    def __init__(self, data: RealmData, meta: str, today: str) -> None:
        self.data, self.meta, self.today = data, meta, today
        # Customers whose balances this write can move: derive_balances looks at no others.
        self.customers: set[str] = set()

    def apply(
        self, entity: str, operation: str, body: Any, send_to: str | None = None
    ) -> WriteResult:
        if not isinstance(body, dict):
            raise WriteError(
                "2010",
                "Request has invalid or unsupported property",
                f"Property Name: a {entity} object is expected",
            )
        ops: dict[str, Callable[[str, Doc], WriteResult]] = {
            "create": self.create,
            "update": self.update,
            "delete": self.delete,
            "void": self.void,
        }
        if operation == "send":
            return self.send(body, send_to)
        spec = SPECS[entity]
        if not spec.writable:
            raise _business(f"{entity} is read-only: operation {operation} is not supported")
        if spec.family == "single" and operation != "update":
            raise _business(f"Operation {operation} is not supported for {entity}")
        if operation == "update" and "Id" not in body:
            raise _missing("Id")
        return ops[operation](entity, body)

    # -- helpers --------------------------------------------------------------------------
    def _current(self, entity: str, body: Doc) -> Doc:
        id_ = body.get("Id")
        if not isinstance(id_, str | int) or str(id_) not in self.data.docs[entity]:
            raise not_found(entity, str(id_))
        doc = self.data.docs[entity][str(id_)]
        self.customers.add(
            doc["Id"] if entity == "Customer" else ref_value(doc, "CustomerRef") or ""
        )
        if "SyncToken" not in body:
            raise _missing("SyncToken")
        if str(body["SyncToken"]) != doc["SyncToken"]:
            raise WriteError(
                "5010",
                "Stale Object Error",
                "Stale Object Error : You and root were working on this at the "
                "same time. root finished before you did, so your work was not "
                "saved.",
            )
        return doc

    def _bump(self, doc: Doc) -> None:
        doc["SyncToken"] = str(int(doc.get("SyncToken", "0")) + 1)
        doc["MetaData"]["LastUpdatedTime"] = self.meta

    def _finish(self, entity: str, doc: Doc, operation: str, created: bool = False) -> WriteResult:
        if created:
            doc["SyncToken"] = "0"
            doc["MetaData"] = {"CreateTime": self.meta, "LastUpdatedTime": self.meta}
        else:
            self._bump(doc)
        changed = [(entity, doc["Id"])]
        self._bump_derived(changed)
        return WriteResult(entity, snapshot(doc), operation, changed)

    def _bump_derived(self, changed: list[tuple[str, str]]) -> None:
        # Writes beyond the first three entities may move any customer's balance.
        customers = self.customers if changed[0][0] in CORE else None
        for other in ledger.derive(self.data, customers):
            if other not in changed:
                self._bump(self.data.docs[other[0]][other[1]])
                changed.append(other)

    def _customer_ref(self, body: Doc) -> dict[str, str]:
        cust_id = ref_value(body, "CustomerRef")
        if cust_id is None:
            raise _missing("CustomerRef")
        cust = self.data.docs["Customer"].get(cust_id)
        if cust is None:
            raise WriteError(
                "2500",
                "Invalid Reference Id",
                f"Invalid Reference Id : Names element id {cust_id} not found",
                "CustomerRef",
            )
        self.customers.add(cust_id)
        return {"value": cust_id, "name": cust["DisplayName"]}

    def _merge(self, entity: str, old: Doc | None, body: Doc) -> Doc:
        """Full update: sent writable fields, defaults for the rest; sparse: merge."""
        kept = ALWAYS_READ_ONLY | READ_ONLY.get(entity, set())
        sent = {k: v for k, v in body.items() if k not in kept}
        if old is not None and body.get("sparse") is True:
            return snapshot(old) | sent
        base = {k: v for k, v in (old or {}).items() if k in kept}
        currency = {"CurrencyRef": dict(USD)} if _has_currency(entity) else {}
        return (
            snapshot(DEFAULTS[entity]) | currency | sent | base | {"domain": "QBO", "sparse": False}
        )

    # -- create / update --------------------------------------------------------------------
    def create(self, entity: str, body: Doc) -> WriteResult:
        if body.get("Id"):
            return self.update(entity, body)
        doc = self._merge(entity, None, body)
        self._shape(entity, doc, None)
        doc["Id"] = self.data.new_id(entity)
        self.data.docs[entity][doc["Id"]] = doc
        if entity == "Item" and doc.get("Type") == "Inventory":
            self.data.opening_qty[doc["Id"]] = money(body.get("QtyOnHand", 0))
        return self._finish(entity, doc, "Create", created=True)

    def update(self, entity: str, body: Doc) -> WriteResult:
        old = self._current(entity, body)
        doc = self._merge(entity, old, body)
        self._shape(entity, doc, old)
        old.clear()
        old.update(doc)
        return self._finish(entity, old, "Update")

    def _shape(self, entity: str, doc: Doc, old: Doc | None) -> None:
        if entity == "Customer":
            self._shape_customer(doc, old)
        elif entity == "Invoice":
            self._shape_invoice(doc, old)
        elif entity == "Payment":
            self._shape_payment(doc, old)
        else:
            try:
                Shaper(self.data, self.today).shape(entity, doc, old)
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                # A body of the wrong shape (a string for a ref, text for an amount).
                raise _business(f"invalid {entity}: {exc!r}") from exc

    def _shape_customer(self, doc: Doc, old: Doc | None) -> None:
        display = (
            doc.get("DisplayName")
            or " ".join(str(doc[k]) for k in NAME_PARTS if doc.get(k))
            or doc.get("CompanyName")
        )
        if not display:
            raise _missing("DisplayName")
        for other in self.data.docs["Customer"].values():
            if other is not old and str(other["DisplayName"]).lower() == str(display).lower():
                raise WriteError(
                    "6240",
                    "Duplicate Name Exists Error",
                    "The name supplied already exists. : Another customer, "
                    f"vendor or employee is already using this name. Id={other['Id']}",
                )
        doc["DisplayName"] = doc["FullyQualifiedName"] = display
        doc.setdefault("PrintOnCheckName", display)
        doc.setdefault("Balance", 0)
        doc.setdefault("BalanceWithJobs", 0)

    def _shape_invoice(self, doc: Doc, old: Doc | None) -> None:
        doc["CustomerRef"] = self._customer_ref(doc)
        if not doc.get("Line"):
            raise _missing("Line")
        try:
            finish_invoice_lines(doc)
        except ValueError as exc:
            if str(exc) == "Line.Amount":
                raise _missing("Line.Amount") from exc
            raise _business(f"invalid {exc}") from exc
        set_date(doc, "TxnDate", self.today)
        set_date(
            doc,
            "DueDate",
            (dt.date.fromisoformat(doc["TxnDate"]) + dt.timedelta(days=30)).isoformat(),
        )
        doc.setdefault("DocNumber", self.data.new_doc_number())
        cust = self.data.docs["Customer"][doc["CustomerRef"]["value"]]
        if "BillEmail" not in doc and "PrimaryEmailAddr" in cust:
            doc["BillEmail"] = dict(cust["PrimaryEmailAddr"])
        if old is not None:
            applied = money(old["TotalAmt"]) - money(old["Balance"])
            if applied and money(doc["TotalAmt"]) < applied:
                raise _business("the invoice total is less than the payments applied to it")
            if applied and doc["CustomerRef"]["value"] != ref_value(old, "CustomerRef"):
                raise _business("an invoice with payments cannot change customer")
        doc["Balance"] = doc["TotalAmt"]  # derive_balances subtracts linked payments

    def _shape_payment(self, doc: Doc, old: Doc | None) -> None:
        doc["CustomerRef"] = self._customer_ref(doc)
        if "TotalAmt" not in doc:
            raise _missing("TotalAmt")
        try:
            total = money(doc["TotalAmt"])
            lines = [(money(line.get("Amount", 0)), line) for line in doc.get("Line") or []]
        except (ValueError, AttributeError) as exc:
            raise _business(f"invalid amount: {exc}") from exc
        if total < 0:
            raise _business("TotalAmt must not be negative")
        applied_elsewhere: dict[str, Decimal] = {}
        for pay in self.data.docs["Payment"].values():
            if pay is old or ref_value(pay, "CustomerRef") != doc["CustomerRef"]["value"]:
                continue  # links to another customer's invoices are refused below anyway
            for line in pay.get("Line") or []:
                for linked in line.get("LinkedTxn") or []:
                    tid = linked.get("TxnId")
                    applied_elsewhere[tid] = applied_elsewhere.get(tid, Decimal(0)) + money(
                        line.get("Amount", 0)
                    )
        used = Decimal(0)
        for line_amount, line in lines:
            line["Amount"] = amount(line_amount)
            links = line.get("LinkedTxn") or []
            # A line linking a CreditMemo applies that credit (it counts against the payment,
            # so an invoice paid with a credit memo alone has TotalAmt 0), as QBO does.
            credit = any(lk.get("TxnType") == "CreditMemo" for lk in links)
            used += -line_amount if credit else line_amount
            for linked in links:
                tid = str(linked.get("TxnId"))
                kind = linked.get("TxnType")
                target = self.data.docs[str(kind)].get(tid) if kind in _LINKABLE else None
                if target is None:
                    raise WriteError(
                        "2500",
                        "Invalid Reference Id",
                        f"Invalid Reference Id : Txn id {tid} not found",
                        "LinkedTxn",
                    )
                if ref_value(target, "CustomerRef") != doc["CustomerRef"]["value"]:
                    raise _business(f"{kind} {tid} belongs to another customer")
                if kind == "CreditMemo":
                    if line_amount > self._credit_left(tid, old):
                        raise _business(f"the amount applied exceeds the credit of {tid}")
                elif applied_elsewhere.get(tid, Decimal(0)) + line_amount > money(
                    target["TotalAmt"]
                ):
                    raise _business(f"the amount applied exceeds the balance of invoice {tid}")
        if used > total:
            raise _business("the amount applied is greater than the payment amount")
        doc["TotalAmt"], doc["UnappliedAmt"] = amount(total), amount(total - used)
        set_date(doc, "TxnDate", self.today)

    def _credit_left(self, memo_id: str, old: Doc | None) -> Decimal:
        """A credit memo's credit not used by refunds or other payments."""
        memo = self.data.docs["CreditMemo"][memo_id]
        left = money(memo.get("TotalAmt", 0))
        for kind in ("Payment", "RefundReceipt"):
            for other in self.data.docs[kind].values():
                if other is old:
                    continue
                if kind == "RefundReceipt":
                    hits = any(lk.get("TxnId") == memo_id for lk in other.get("LinkedTxn") or [])
                    left -= money(other.get("TotalAmt", 0)) if hits else 0
                    continue
                for line in other.get("Line") or []:
                    for lk in line.get("LinkedTxn") or []:
                        if (lk.get("TxnType"), str(lk.get("TxnId"))) == ("CreditMemo", memo_id):
                            left -= money(line.get("Amount", 0))
        return left

    # -- delete / void / send -----------------------------------------------------------------
    def _unlink_payments(self, inv_id: str) -> list[Doc]:
        """Deleting or voiding an invoice un-applies its payments: the money goes to
        UnappliedAmt, as QBO does."""
        touched = []
        for pay in self.data.docs["Payment"].values():
            kept, moved = [], Decimal(0)
            for line in pay.get("Line") or []:
                links = line.get("LinkedTxn") or []
                if any(
                    lk.get("TxnId") == inv_id and lk.get("TxnType") == "Invoice" for lk in links
                ):
                    moved += money(line.get("Amount", 0))
                else:
                    kept.append(line)
            if len(kept) != len(pay.get("Line") or []):
                pay["Line"] = kept
                pay["UnappliedAmt"] = amount(money(pay.get("UnappliedAmt", 0)) + moved)
                touched.append(pay)
        return touched

    def delete(self, entity: str, body: Doc) -> WriteResult:
        if entity == "Customer":
            # Customers are never deleted, only made inactive (qbo-api.md).
            raise _business(
                "Operation Delete is not supported for Customer; set Active to false instead"
            )
        if SPECS[entity].family != "txn" and entity != "Attachable":
            raise _business(
                f"Operation Delete is not supported for {entity}; set Active to false instead"
            )
        doc = self._current(entity, body)
        if entity not in CORE:
            self._refuse_linked(entity, doc["Id"])
        touched = self._unlink_payments(doc["Id"]) if entity == "Invoice" else []
        del self.data.docs[entity][doc["Id"]]
        self.data.voided.discard((entity, doc["Id"]))
        stub = {"domain": "QBO", "status": "Deleted", "Id": doc["Id"]}
        self.data.tombstones[entity][doc["Id"]] = stub | {
            "MetaData": {"LastUpdatedTime": self.meta}
        }
        changed = [(entity, doc["Id"])]
        for pay in touched:
            self._bump(pay)
            changed.append(("Payment", pay["Id"]))
        self._bump_derived(changed)
        return WriteResult(entity, stub, "Delete", changed)

    def _refuse_linked(self, entity: str, id_: str) -> None:
        """A transaction others link to (a paid bill, a refunded credit memo, a deposited
        sales receipt) cannot be deleted: unlink it first (Intuit answers 6000 too)."""
        for other, docs in self.data.docs.items():
            for doc in docs.values():
                derived = "LinkedTxn" in READ_ONLY.get(other, set())  # Bill's back-links
                for holder in [*([] if derived else [doc]), *(doc.get("Line") or [])]:
                    for link in holder.get("LinkedTxn") or []:
                        hit = (link.get("TxnType"), str(link.get("TxnId"))) == (entity, id_)
                        if hit and other != entity:
                            raise _business(f"{entity} {id_} is linked to {other} {doc['Id']}")

    def void(self, entity: str, body: Doc) -> WriteResult:
        if not SPECS[entity].voidable:
            raise _business(f"Operation Void is not supported for {entity}")
        doc = self._current(entity, body)
        extra = self._unlink_payments(doc["Id"]) if entity == "Invoice" else []
        for line in doc.get("Line") or []:
            line["Amount"] = 0
            detail = line.get("SalesItemLineDetail")
            if isinstance(detail, dict) and "Qty" in detail:
                detail["Qty"] = 0
        doc["TotalAmt"] = 0
        zeroed = {"Invoice": "Balance", "Payment": "UnappliedAmt", "SalesReceipt": "Balance"}
        if entity in zeroed:
            doc[zeroed[entity]] = 0
        doc["PrivateNote"] = "Voided"  # a void keeps the entity at zero (qbo-api.md)
        self.data.voided.add((entity, doc["Id"]))
        for pay in extra:
            self._bump(pay)
        result = self._finish(entity, doc, "Void")
        result.changed[1:1] = [
            ("Payment", p["Id"]) for p in extra if ("Payment", p["Id"]) not in result.changed
        ]
        return result

    def send(self, body: Doc, send_to: str | None) -> WriteResult:
        doc = self.data.docs["Invoice"].get(str(body.get("Id")))
        if doc is None:
            raise not_found("Invoice", str(body.get("Id")))
        self.customers.add(ref_value(doc, "CustomerRef") or "")
        if send_to:
            doc["BillEmail"] = {"Address": send_to}
        doc["EmailStatus"] = "EmailSent"
        doc["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": self.meta}
        return self._finish("Invoice", doc, "Update")

"""The cached entities and the query-language fields each one filters and sorts on (pure).

One source of truth for three consumers: the migration's columns (checked by a test), the
fill path (which extracts column values from an entity document) and the qbql translator.
Field lists follow qbo-api.md ("Filterable"); where that page says "unsure" the field is
still stored but not answered locally (`local=False`), so such queries are forwarded.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

ColumnType = Literal["text", "ref", "bool", "money", "date", "timestamp", "id"]


# The Postgres type of each column type (migrations/0001 uses the same).
PG_TYPES: dict[ColumnType, str] = {
    "text": "text",
    "ref": "text",
    "bool": "boolean",
    "money": "numeric",
    "date": "date",
    "timestamp": "timestamptz",
    "id": "bigint",
}


@dataclass(frozen=True, slots=True)
class Field:
    """A QBO property as the query language names it, and where the cache keeps it."""

    name: str  # as written in a query, e.g. "MetaData.LastUpdatedTime"
    column: str  # cache-table column
    type: ColumnType
    path: tuple[str, ...]  # keys into the entity document
    local: bool = True  # False: stored, but queries on it are forwarded (unsure at Intuit)


# What `SELECT * FROM X` without a condition on Active returns (qbo-api.md, "Who reads
# what"): "hidden" = active rows only (confirmed for Customer); "unsure" = a name list for
# which Intuit's rule is not confirmed: answered from the cache only when no row the query
# would return has Active = false, so that both rules give the same answer (else
# forwarded); "none" = the entity has no Active.
InactiveRule = Literal["hidden", "unsure", "none"]


@dataclass(frozen=True, slots=True)
class Entity:
    name: str  # canonical, as in response envelopes: "Customer"
    path_segment: str  # as in URLs: "customer"
    table: str
    fields: tuple[Field, ...]
    inactive: InactiveRule = "none"
    # Whether Intuit's CDC endpoint returns its changes (qbo-api.md: not TaxCode, TaxRate,
    # TimeActivity; unsure for CompanyInfo and Preferences): the others reload whole.
    cdc: bool = True
    # One object per realm (CompanyInfo, Preferences), read by path without an id.
    singleton: bool = False

    def field(self, name: str) -> Field | None:
        # Intuit accepts the spelling "Metadata." for "MetaData." (qbo-api.md).
        if name.startswith("Metadata."):
            name = "MetaData." + name[len("Metadata.") :]
        for f in self.fields:
            if f.name == name:
                return f
        return None


def _common(*fields: Field) -> tuple[Field, ...]:
    return (
        Field("Id", "id", "id", ("Id",)),
        *fields,
        Field("MetaData.CreateTime", "create_time", "timestamp", ("MetaData", "CreateTime")),
        Field(
            "MetaData.LastUpdatedTime",
            "last_updated_time",
            "timestamp",
            ("MetaData", "LastUpdatedTime"),
        ),
    )


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _f(name: str, type_: ColumnType, *, local: bool = True) -> Field:
    """A top-level property (a ref compares by its `value`), its column named in snake case."""
    path = (name, "value") if type_ == "ref" else (name,)
    return Field(name, _snake(name), type_, path, local)


def _entity(name: str, *fields: Field, **rules: Any) -> Entity:
    return Entity(name, name.lower(), f"qbo_{name.lower()}", _common(*fields), **rules)


# The seed's three tables keep their names and columns (migrations/0001).
CUSTOMER = _entity(
    "Customer",
    _f("DisplayName", "text"),
    _f("GivenName", "text"),
    _f("MiddleName", "text"),
    _f("FamilyName", "text"),
    Field("PrimaryEmailAddr", "primary_email_addr", "text", ("PrimaryEmailAddr", "Address")),
    _f("Active", "bool"),
    _f("CompanyName", "text"),
    _f("Balance", "money"),
    _f("PrintOnCheckName", "text"),
    _f("FullyQualifiedName", "text"),
    inactive="hidden",
)

INVOICE = _entity(
    "Invoice",
    _f("CustomerRef", "ref"),
    _f("DocNumber", "text"),
    _f("ProjectRef", "ref"),
    _f("TxnDate", "date"),
    _f("SalesTermRef", "ref"),
    _f("DueDate", "date"),
    _f("Balance", "money"),
    # qbo-api.md: filtering Invoice on TotalAmt is unsure at Intuit.
    _f("TotalAmt", "money", local=False),
)

PAYMENT = _entity(
    "Payment",
    _f("TotalAmt", "money"),
    _f("CustomerRef", "ref"),
    _f("TxnDate", "date"),
    _f("PaymentMethodRef", "ref"),
    _f("PaymentRefNum", "text"),
)

# The rest follow qbo-api.md's table "Entities". A field it marks unsure (Vendor Balance,
# how BillPayment's CheckPayment and CreditCardPayment compare, all of Purchase's and
# Transfer's) is stored but answered by Intuit (`local=False`).
ACCOUNT = _entity(
    "Account",
    _f("Name", "text"),
    _f("SubAccount", "bool"),
    _f("Classification", "text"),
    _f("FullyQualifiedName", "text"),
    _f("AccountType", "text"),
    _f("Active", "bool"),
    _f("CurrentBalance", "money"),
    _f("CurrentBalanceWithSubAccounts", "money"),
    inactive="unsure",
)
ITEM = _entity(
    "Item",
    _f("Name", "text"),
    _f("Type", "text"),
    _f("Taxable", "bool"),
    _f("Active", "bool"),
    _f("FullyQualifiedName", "text"),
    _f("SubItem", "bool"),
    _f("Sku", "text"),
    inactive="unsure",
)
VENDOR = _entity(
    "Vendor",
    _f("DisplayName", "text"),
    _f("GivenName", "text"),
    _f("FamilyName", "text"),
    _f("CompanyName", "text"),
    _f("Active", "bool"),
    _f("Balance", "money", local=False),
    inactive="unsure",
)
EMPLOYEE = _entity(
    "Employee",
    _f("DisplayName", "text"),
    _f("GivenName", "text"),
    _f("MiddleName", "text"),
    _f("FamilyName", "text"),
    _f("Suffix", "text"),
    _f("Active", "bool"),
    _f("PrintOnCheckName", "text"),
    inactive="unsure",
)
CLASS = _entity("Class", _f("Active", "bool"), _f("FullyQualifiedName", "text"), inactive="unsure")
DEPARTMENT = _entity(
    "Department", _f("Active", "bool"), _f("FullyQualifiedName", "text"), inactive="unsure"
)
TERM = _entity("Term", _f("Name", "text"), _f("Active", "bool"), inactive="unsure")
PAYMENT_METHOD = _entity("PaymentMethod", _f("Active", "bool"), inactive="unsure")
TAX_CODE = _entity(
    "TaxCode",
    _f("Name", "text"),
    _f("Active", "bool"),
    _f("Description", "text"),
    inactive="unsure",
    cdc=False,
)
TAX_RATE = _entity(
    "TaxRate",
    _f("Name", "text"),
    _f("AgencyRef", "ref"),
    _f("TaxReturnLineRef", "ref"),
    _f("Active", "bool"),
    _f("Description", "text"),
    inactive="unsure",
    cdc=False,
)
BILL = _entity(
    "Bill",
    _f("VendorRef", "ref"),
    _f("TxnDate", "date"),
    _f("APAccountRef", "ref"),
    _f("SalesTermRef", "ref"),
    _f("TotalAmt", "money"),
    _f("DueDate", "date"),
    _f("DocNumber", "text"),
    _f("Balance", "money"),
)
BILL_PAYMENT = _entity(
    "BillPayment",
    _f("VendorRef", "ref"),
    _f("TotalAmt", "money"),
    _f("DocNumber", "text"),
    _f("TxnDate", "date"),
    _f("APAccountRef", "ref"),
    Field(
        "CheckPayment",
        "check_payment",
        "ref",
        ("CheckPayment", "BankAccountRef", "value"),
        local=False,
    ),
    Field(
        "CreditCardPayment",
        "credit_card_payment",
        "ref",
        ("CreditCardPayment", "CCAccountRef", "value"),
        local=False,
    ),
)
ESTIMATE = _entity(
    "Estimate",
    _f("CustomerRef", "ref"),
    _f("ProjectRef", "ref"),
    _f("TxnDate", "date"),
    _f("DueDate", "date"),
    _f("DocNumber", "text"),
)
CREDIT_MEMO = _entity(
    "CreditMemo",
    _f("CustomerRef", "ref"),
    _f("ProjectRef", "ref"),
    _f("TxnDate", "date"),
    _f("SalesTermRef", "ref"),
    _f("DocNumber", "text"),
    _f("Balance", "money"),
)
SALES_RECEIPT = _entity(
    "SalesReceipt",
    _f("CustomerRef", "ref"),
    _f("ProjectRef", "ref"),
    _f("TxnDate", "date"),
    _f("DocNumber", "text"),
    _f("TotalAmt", "money"),
    _f("Balance", "money"),
)
REFUND_RECEIPT = _entity(
    "RefundReceipt",
    _f("CustomerRef", "ref"),
    _f("ProjectRef", "ref"),
    _f("TxnDate", "date"),
    _f("DocNumber", "text"),
    _f("PaymentType", "text"),
    _f("Balance", "money"),
)
DEPOSIT = _entity(
    "Deposit",
    _f("TxnDate", "date"),
    _f("TotalAmt", "money"),
    _f("DepositToAccountRef", "ref"),
)
PURCHASE = _entity(
    "Purchase",
    _f("TxnDate", "date", local=False),
    _f("TotalAmt", "money", local=False),
    _f("DocNumber", "text", local=False),
    _f("PaymentType", "text", local=False),
    _f("AccountRef", "ref", local=False),
    _f("EntityRef", "ref", local=False),
)
PURCHASE_ORDER = _entity(
    "PurchaseOrder", _f("TxnDate", "date"), _f("DueDate", "date"), _f("DocNumber", "text")
)
JOURNAL_ENTRY = _entity("JournalEntry", _f("DocNumber", "text"), _f("TxnDate", "date"))
VENDOR_CREDIT = _entity(
    "VendorCredit",
    _f("DocNumber", "text"),
    _f("APAccountRef", "ref"),
    _f("TxnDate", "date"),
    _f("TotalAmt", "money"),
)
TRANSFER = _entity(
    "Transfer",
    _f("TxnDate", "date", local=False),
    _f("Amount", "money", local=False),
    _f("FromAccountRef", "ref", local=False),
    _f("ToAccountRef", "ref", local=False),
)
TIME_ACTIVITY = _entity(
    "TimeActivity",
    _f("TxnDate", "date"),
    _f("ProjectRef", "ref"),
    _f("BillableStatus", "text"),
    cdc=False,
)
# Metadata only: `upload` and `download/{id}` are forwarded like every other write.
ATTACHABLE = _entity(
    "Attachable",
    _f("FileName", "text"),
    _f("Note", "text"),
    _f("Category", "text"),
    _f("ContentType", "text"),
    _f("Tag", "text"),
    _f("Size", "money"),
)
# One object each, read by `GET companyinfo/{realm}` and `GET preferences` and queried
# on Id and MetaData only; whether CDC covers them is unsure: reloaded whole.
COMPANY_INFO = _entity("CompanyInfo", cdc=False, singleton=True)
PREFERENCES = _entity("Preferences", cdc=False, singleton=True)

ENTITIES: tuple[Entity, ...] = (
    CUSTOMER,
    INVOICE,
    PAYMENT,
    ACCOUNT,
    ITEM,
    VENDOR,
    EMPLOYEE,
    CLASS,
    DEPARTMENT,
    TERM,
    PAYMENT_METHOD,
    TAX_CODE,
    TAX_RATE,
    BILL,
    BILL_PAYMENT,
    ESTIMATE,
    CREDIT_MEMO,
    SALES_RECEIPT,
    REFUND_RECEIPT,
    DEPOSIT,
    PURCHASE,
    PURCHASE_ORDER,
    JOURNAL_ENTRY,
    VENDOR_CREDIT,
    TRANSFER,
    TIME_ACTIVITY,
    ATTACHABLE,
    COMPANY_INFO,
    PREFERENCES,
)
BY_NAME: dict[str, Entity] = {e.name.lower(): e for e in ENTITIES}
BY_SEGMENT: dict[str, Entity] = {e.path_segment: e for e in ENTITIES}


def entity_named(name: str) -> Entity | None:
    """Entity by name in any case (node-quickbooks sends `from customer`)."""
    return BY_NAME.get(name.lower())


def _dig(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = doc
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def parse_timestamp(text: str) -> dt.datetime | None:
    """An ISO-8601 time with an offset, as Intuit writes MetaData; None if it has no offset."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def convert(type_: ColumnType, raw: Any) -> Any:
    """A document value as its column value; None when absent or not of the expected shape."""
    if raw is None:
        return None
    match type_:
        case "text" | "ref":
            return raw if isinstance(raw, str) else None
        case "bool":
            return raw if isinstance(raw, bool) else None
        case "money":
            if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
                return None
            try:
                return Decimal(str(raw))
            except InvalidOperation:
                return None
        case "date":
            try:
                return dt.date.fromisoformat(raw) if isinstance(raw, str) else None
            except ValueError:
                return None
        case "timestamp":
            return parse_timestamp(raw) if isinstance(raw, str) else None
        case "id":
            # Intuit's ids: ASCII digits within bigint (routing.is_id), else not a row.
            ok = isinstance(raw, str) and 0 < len(raw) <= 18 and raw.isascii() and raw.isdigit()
            return int(raw) if ok else None


def row_values(entity: Entity, doc: dict[str, Any]) -> tuple[Any, ...] | None:
    """Column values of `entity.fields`, in order, for one entity document; None without an Id."""
    values = tuple(convert(f.type, _dig(doc, f.path)) for f in entity.fields)
    return values if values[0] is not None else None

"""The cached entities and the query-language fields each one filters and sorts on (pure).

One source of truth for three consumers: the migration's columns (checked by a test), the
fill path (which extracts column values from an entity document) and the qbql translator.
Field lists follow qbo-api.md ("Filterable"); where that page says "unsure" the field is
still stored but not answered locally (`local=False`), so such queries are forwarded.
"""

from __future__ import annotations

import datetime as dt
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


@dataclass(frozen=True, slots=True)
class Entity:
    name: str  # canonical, as in response envelopes: "Customer"
    path_segment: str  # as in URLs: "customer"
    table: str
    fields: tuple[Field, ...]

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


CUSTOMER = Entity(
    "Customer",
    "customer",
    "qbo_customer",
    _common(
        Field("DisplayName", "display_name", "text", ("DisplayName",)),
        Field("GivenName", "given_name", "text", ("GivenName",)),
        Field("MiddleName", "middle_name", "text", ("MiddleName",)),
        Field("FamilyName", "family_name", "text", ("FamilyName",)),
        Field("PrimaryEmailAddr", "primary_email_addr", "text", ("PrimaryEmailAddr", "Address")),
        Field("Active", "active", "bool", ("Active",)),
        Field("CompanyName", "company_name", "text", ("CompanyName",)),
        Field("Balance", "balance", "money", ("Balance",)),
        Field("PrintOnCheckName", "print_on_check_name", "text", ("PrintOnCheckName",)),
        Field("FullyQualifiedName", "fully_qualified_name", "text", ("FullyQualifiedName",)),
    ),
)

INVOICE = Entity(
    "Invoice",
    "invoice",
    "qbo_invoice",
    _common(
        Field("CustomerRef", "customer_ref", "ref", ("CustomerRef", "value")),
        Field("DocNumber", "doc_number", "text", ("DocNumber",)),
        Field("ProjectRef", "project_ref", "ref", ("ProjectRef", "value")),
        Field("TxnDate", "txn_date", "date", ("TxnDate",)),
        Field("SalesTermRef", "sales_term_ref", "ref", ("SalesTermRef", "value")),
        Field("DueDate", "due_date", "date", ("DueDate",)),
        Field("Balance", "balance", "money", ("Balance",)),
        # qbo-api.md: filtering Invoice on TotalAmt is unsure at Intuit.
        Field("TotalAmt", "total_amt", "money", ("TotalAmt",), local=False),
    ),
)

PAYMENT = Entity(
    "Payment",
    "payment",
    "qbo_payment",
    _common(
        Field("TotalAmt", "total_amt", "money", ("TotalAmt",)),
        Field("CustomerRef", "customer_ref", "ref", ("CustomerRef", "value")),
        Field("TxnDate", "txn_date", "date", ("TxnDate",)),
        Field("PaymentMethodRef", "payment_method_ref", "ref", ("PaymentMethodRef", "value")),
        Field("PaymentRefNum", "payment_ref_num", "text", ("PaymentRefNum",)),
    ),
)

ENTITIES: tuple[Entity, ...] = (CUSTOMER, INVOICE, PAYMENT)
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

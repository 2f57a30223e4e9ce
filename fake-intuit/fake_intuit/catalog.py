"""The fake's catalog of QBO entities: which fields each one filters on (and of what kind),
which writes it takes, and whether CDC and webhooks cover it (qbo-api.md "Beyond Customer,
Invoice and Payment").

Choices where qbo-api.md is unsure (also in fake-intuit/README.md):
- `SELECT *` hides inactive rows for every name list with `Active` (as for Customer) except
  TaxCode and TaxRate, which return inactive rows too (the 2021 report): `Spec.hides_inactive`.
- Purchase filters on Id, TxnDate, TotalAmt, DocNumber, PaymentType, AccountRef, EntityRef;
  Transfer on Id, TxnDate, Amount, FromAccountRef, ToAccountRef; Vendor's Balance is
  filterable; BillPayment's CheckPayment / CreditCardPayment compare with the bank or
  credit-card account's id (`CheckPayment = '35'`).
- CompanyInfo and Preferences are queryable on Id and MetaData only; CDC covers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["id", "text", "ref", "bool", "money", "date", "instant"]
FieldSpec = tuple[Kind, tuple[str, ...]]
Family = Literal["name", "txn", "other", "single"]

COMMON: dict[str, FieldSpec] = {
    "Id": ("id", ("Id",)),
    "MetaData.CreateTime": ("instant", ("MetaData", "CreateTime")),
    "MetaData.LastUpdatedTime": ("instant", ("MetaData", "LastUpdatedTime")),
}


@dataclass(frozen=True, slots=True)
class Spec:
    """One entity: `family` "name" (name list: own id sequence, never deleted, made
    inactive), "txn" (shares the transaction id sequence, deleted), "other" (Attachable:
    own ids, deleted) or "single" (CompanyInfo, Preferences: one object)."""

    name: str
    family: Family
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    hides_inactive: bool = False
    writable: bool = True
    voidable: bool = False
    cdc: bool = True
    webhooks: bool = True


def _f(**kinds: Kind) -> dict[str, FieldSpec]:
    """Fields by name; a ref compares by `<Name>.value`, a dotted name by its path."""
    out: dict[str, FieldSpec] = dict(COMMON)
    for name, kind in kinds.items():
        path = tuple(name.split("__"))
        if kind == "ref":
            path += ("value",)
        out[".".join(path[:1]) if kind == "ref" else path[0]] = (kind, path)
    return out


_CUSTOMER = dict(COMMON) | {
    "DisplayName": ("text", ("DisplayName",)),
    "GivenName": ("text", ("GivenName",)),
    "MiddleName": ("text", ("MiddleName",)),
    "FamilyName": ("text", ("FamilyName",)),
    "PrimaryEmailAddr": ("text", ("PrimaryEmailAddr", "Address")),
    "Active": ("bool", ("Active",)),
    "CompanyName": ("text", ("CompanyName",)),
    "Balance": ("money", ("Balance",)),
    "PrintOnCheckName": ("text", ("PrintOnCheckName",)),
    "FullyQualifiedName": ("text", ("FullyQualifiedName",)),
}
_INVOICE: dict[str, FieldSpec] = dict(COMMON) | {
    "CustomerRef": ("ref", ("CustomerRef", "value")),
    "DocNumber": ("text", ("DocNumber",)),
    "ProjectRef": ("ref", ("ProjectRef", "value")),
    "TxnDate": ("date", ("TxnDate",)),
    "SalesTermRef": ("ref", ("SalesTermRef", "value")),
    "DueDate": ("date", ("DueDate",)),
    "Balance": ("money", ("Balance",)),
    "TotalAmt": ("money", ("TotalAmt",)),
}
_PAYMENT: dict[str, FieldSpec] = dict(COMMON) | {
    "TotalAmt": ("money", ("TotalAmt",)),
    "CustomerRef": ("ref", ("CustomerRef", "value")),
    "TxnDate": ("date", ("TxnDate",)),
    "PaymentMethodRef": ("ref", ("PaymentMethodRef", "value")),
    "PaymentRefNum": ("text", ("PaymentRefNum",)),
}

_SPECS = (
    Spec("Customer", "name", _CUSTOMER, hides_inactive=True),
    Spec("Invoice", "txn", _INVOICE, voidable=True),
    Spec("Payment", "txn", _PAYMENT, voidable=True),
    Spec(
        "Account",
        "name",
        _f(
            Name="text",
            SubAccount="bool",
            Classification="text",
            FullyQualifiedName="text",
            AccountType="text",
            Active="bool",
            CurrentBalance="money",
            CurrentBalanceWithSubAccounts="money",
        ),
        hides_inactive=True,
    ),
    Spec(
        "Item",
        "name",
        _f(
            Name="text",
            Type="text",
            Taxable="bool",
            Active="bool",
            FullyQualifiedName="text",
            SubItem="bool",
            Sku="text",
        ),
        hides_inactive=True,
    ),
    Spec(
        "Vendor",
        "name",
        _f(
            DisplayName="text",
            GivenName="text",
            FamilyName="text",
            CompanyName="text",
            Active="bool",
            Balance="money",
        ),
        hides_inactive=True,
    ),
    Spec(
        "Employee",
        "name",
        _f(
            DisplayName="text",
            GivenName="text",
            MiddleName="text",
            FamilyName="text",
            Suffix="text",
            Active="bool",
            PrintOnCheckName="text",
        ),
        hides_inactive=True,
    ),
    Spec("Class", "name", _f(Active="bool", FullyQualifiedName="text"), hides_inactive=True),
    Spec("Department", "name", _f(Active="bool", FullyQualifiedName="text"), hides_inactive=True),
    Spec("Term", "name", _f(Name="text", Active="bool"), hides_inactive=True),
    Spec("PaymentMethod", "name", _f(Active="bool"), hides_inactive=True),
    Spec(
        "TaxCode",
        "name",
        _f(Name="text", Active="bool", Description="text"),
        writable=False,
        cdc=False,
        webhooks=False,
    ),
    Spec(
        "TaxRate",
        "name",
        _f(
            Name="text",
            AgencyRef="ref",
            TaxReturnLineRef="ref",
            Active="bool",
            Description="text",
        ),
        writable=False,
        cdc=False,
        webhooks=False,
    ),
    Spec(
        "Bill",
        "txn",
        _f(
            VendorRef="ref",
            TxnDate="date",
            APAccountRef="ref",
            SalesTermRef="ref",
            TotalAmt="money",
            DueDate="date",
            DocNumber="text",
            Balance="money",
        ),
    ),
    Spec(
        "BillPayment",
        "txn",
        _f(
            VendorRef="ref",
            TotalAmt="money",
            DocNumber="text",
            TxnDate="date",
            APAccountRef="ref",
        )
        | {
            "CheckPayment": ("ref", ("CheckPayment", "BankAccountRef", "value")),
            "CreditCardPayment": ("ref", ("CreditCardPayment", "CCAccountRef", "value")),
        },
        voidable=True,
    ),
    Spec(
        "Estimate",
        "txn",
        _f(CustomerRef="ref", ProjectRef="ref", TxnDate="date", DueDate="date", DocNumber="text"),
    ),
    Spec(
        "CreditMemo",
        "txn",
        _f(
            CustomerRef="ref",
            ProjectRef="ref",
            TxnDate="date",
            SalesTermRef="ref",
            DocNumber="text",
            Balance="money",
        ),
    ),
    Spec(
        "SalesReceipt",
        "txn",
        _f(
            CustomerRef="ref",
            ProjectRef="ref",
            TxnDate="date",
            DocNumber="text",
            TotalAmt="money",
            Balance="money",
        ),
        voidable=True,
    ),
    Spec(
        "RefundReceipt",
        "txn",
        _f(
            CustomerRef="ref",
            ProjectRef="ref",
            TxnDate="date",
            DocNumber="text",
            PaymentType="text",
            Balance="money",
        ),
    ),
    Spec("Deposit", "txn", _f(TxnDate="date", TotalAmt="money", DepositToAccountRef="ref")),
    Spec(
        "Purchase",
        "txn",
        _f(
            TxnDate="date",
            TotalAmt="money",
            DocNumber="text",
            PaymentType="text",
            AccountRef="ref",
            EntityRef="ref",
        ),
    ),
    Spec("PurchaseOrder", "txn", _f(TxnDate="date", DueDate="date", DocNumber="text")),
    Spec("JournalEntry", "txn", _f(DocNumber="text", TxnDate="date")),
    Spec(
        "VendorCredit",
        "txn",
        _f(DocNumber="text", APAccountRef="ref", TxnDate="date", TotalAmt="money"),
    ),
    Spec(
        "Transfer",
        "txn",
        _f(TxnDate="date", Amount="money", FromAccountRef="ref", ToAccountRef="ref"),
    ),
    Spec(
        "TimeActivity",
        "txn",
        _f(TxnDate="date", ProjectRef="ref", BillableStatus="text"),
        cdc=False,
    ),
    Spec(
        "Attachable",
        "other",
        _f(
            FileName="text",
            Note="text",
            Category="text",
            ContentType="text",
            Tag="text",
            Size="money",
        ),
        webhooks=False,
    ),
    Spec("CompanyInfo", "single", dict(COMMON), writable=False, webhooks=False),
    Spec("Preferences", "single", dict(COMMON)),
)

SPECS: dict[str, Spec] = {spec.name: spec for spec in _SPECS}
NAMES: tuple[str, ...] = tuple(SPECS)
# Lower-case name (URL path segment, query text in any case) -> canonical name.
CANONICAL: dict[str, str] = {name.lower(): name for name in NAMES}
# Entities Intuit's CDC refuses (qbo-api.md): the fake answers 400 code 4001 for them.
CDC_EXCLUDED = ("JournalCode", "TaxAgency", "TaxCode", "TaxRate", "TimeActivity")

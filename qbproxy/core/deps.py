"""Which cached tables a write can change, each edge with its reason (pure).

When unsure, purge more: a wasted reload costs one upstream call (the realm's one CDC call
refreshes every purged table at once), a stale balance costs the user's trust (design.md,
promise 2; qbo-api.md, "Side effects that matter" and "Entities").

The rule is "everything the realm caches" (`ALL`) unless an edge below says less. Every
posting transaction (Invoice, Payment, Bill, BillPayment, CreditMemo, SalesReceipt,
RefundReceipt, Deposit, Purchase, JournalEntry, VendorCredit, Transfer) moves Account
balances and, through item lines, inventory Items' QtyOnHand; most also move a Customer's or
Vendor's Balance and the Balance and LinkedTxn of the documents they apply to (a
BillPayment its Bills, a Payment its Invoices and CreditMemos, a Deposit the Payments and
SalesReceipts it takes out of Undeposited Funds). Updating any name-list entry can rename
it, and every transaction that refers to it carries the name in its `...Ref.name`; making
it inactive changes what `SELECT *` returns. So all of those purge everything.
"""

from __future__ import annotations

from qbproxy.core.catalog import (
    CLASS,
    CUSTOMER,
    DEPARTMENT,
    EMPLOYEE,
    ENTITIES,
    ESTIMATE,
    INVOICE,
    PAYMENT,
    PAYMENT_METHOD,
    PURCHASE_ORDER,
    SALES_RECEIPT,
    TERM,
    TIME_ACTIVITY,
    VENDOR,
    Entity,
)

ALL: frozenset[Entity] = frozenset(ENTITIES)

CREATE = "create"
UPDATE = "update"  # full or sparse; also the operation when the proxy cannot tell

# (segment, operation) -> tables. Operations: create, update, delete, void, send.
_EDGES: dict[tuple[str, str], frozenset[Entity]] = {
    # A new customer appears in Customer queries and nowhere else yet.
    ("customer", CREATE): frozenset({CUSTOMER}),
    # A new vendor, employee, class, department, term or payment method appears in its own
    # list and nowhere else: none of them carries an opening balance that posts. (A new
    # Account can carry OpeningBalance and a new inventory Item QtyOnHand, both of which
    # post to other accounts: they purge everything.)
    ("vendor", CREATE): frozenset({VENDOR}),
    ("employee", CREATE): frozenset({EMPLOYEE}),
    ("class", CREATE): frozenset({CLASS}),
    ("department", CREATE): frozenset({DEPARTMENT}),
    ("term", CREATE): frozenset({TERM}),
    ("paymentmethod", CREATE): frozenset({PAYMENT_METHOD}),
    # A new invoice raises its Customer's Balance; it has no payments linked yet. (It may
    # name an Estimate in LinkedTxn, which then shows as closed: purge Estimate too. Item
    # lines of inventory items and the AR and income accounts move as well.)
    ("invoice", CREATE): ALL,
    # Sending only sets EmailStatus/DeliveryInfo and bumps SyncToken, on the document sent.
    ("invoice", "send"): frozenset({INVOICE}),
    ("estimate", "send"): frozenset({ESTIMATE}),
    ("salesreceipt", "send"): frozenset({SALES_RECEIPT}),
    # Non-posting documents: a new estimate, purchase order or time activity appears in its
    # own list only (qbo-api.md: "non-posting"). Updating or deleting one can change the
    # documents linked to it (an Invoice made from an Estimate), so those purge everything.
    ("estimate", CREATE): frozenset({ESTIMATE}),
    ("purchaseorder", CREATE): frozenset({PURCHASE_ORDER}),
    ("timeactivity", CREATE): frozenset({TIME_ACTIVITY}),
}


# A name-list create that carries an opening balance posts it (Customer and Vendor
# `Balance` with `OpenBalanceDate`, Account `OpeningBalance`, inventory Item `QtyOnHand`
# from `InvStartDate`): the AR, AP, equity and inventory accounts move.
_OPENING_BALANCE = frozenset(
    {"Balance", "OpenBalanceDate", "OpeningBalance", "OpeningBalanceDate", "QtyOnHand"}
)


def tables_changed(
    segment: str, operation: str, body_keys: frozenset[str] | None = frozenset()
) -> frozenset[Entity]:
    """Tables a write to `.../{segment}` with `operation` can change: `ALL` for every
    write the map above does not list, including entities the proxy does not know.
    `body_keys`: the top-level keys of the written entity; None when unknown (a webhook),
    which counts as carrying an opening balance."""
    if operation.lower() == CREATE and (body_keys is None or body_keys & _OPENING_BALANCE):
        return ALL
    return _EDGES.get((segment.lower(), operation.lower()), ALL)


def create_purges_less(segment: str) -> bool:
    """Whether telling a create from an update (by reading the body) narrows the purge."""
    return tables_changed(segment, CREATE) != tables_changed(segment, UPDATE)


__all__ = [
    "ALL",
    "CREATE",
    "CUSTOMER",
    "INVOICE",
    "PAYMENT",
    "UPDATE",
    "create_purges_less",
    "tables_changed",
]

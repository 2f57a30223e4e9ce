"""Which cached tables a write can change, each edge with its reason (pure).

When unsure, purge more: a wasted reload costs one upstream call, a stale balance costs
the user's trust (design.md, promise 2; qbo-api.md, "Side effects that matter").
"""

from __future__ import annotations

from qbproxy.core.catalog import CUSTOMER, ENTITIES, INVOICE, PAYMENT, Entity

ALL: frozenset[Entity] = frozenset(ENTITIES)

CREATE = "create"
UPDATE = "update"  # full or sparse; also the operation when the proxy cannot tell

# (segment, operation) -> tables. Operations: create, update, delete, void, send.
_EDGES: dict[tuple[str, str], frozenset[Entity]] = {
    # A new customer appears in Customer queries and nowhere else yet.
    ("customer", CREATE): frozenset({CUSTOMER}),
    # An update can rename it, and Invoice and Payment documents carry the name in
    # CustomerRef.name; making it inactive hides it from `SELECT * FROM Customer`.
    ("customer", UPDATE): ALL,
    # A new invoice raises its Customer's Balance; it has no payments linked yet.
    ("invoice", CREATE): frozenset({INVOICE, CUSTOMER}),
    # Sending only sets EmailStatus/DeliveryInfo and bumps SyncToken.
    ("invoice", "send"): frozenset({INVOICE}),
    # Updating, voiding or deleting changes the Customer's Balance and can unapply the
    # payments linked to it (their LinkedTxn and UnappliedAmt).
}


def tables_changed(segment: str, operation: str) -> frozenset[Entity]:
    """Tables a write to `.../{segment}` with `operation` can change.

    Everything not listed purges all three: Payment writes (they move Invoice and Customer
    balances), Invoice update/void/delete, the other balance movers (CreditMemo,
    SalesReceipt, RefundReceipt, JournalEntry, Deposit) and every entity the map does not
    know.
    """
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

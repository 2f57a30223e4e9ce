"""The write dependency map, token trust and the proxy's own QBO-shaped bodies."""

import datetime as dt

import orjson
import pytest

from qbproxy.core import responses
from qbproxy.core.catalog import (
    CLASS,
    CUSTOMER,
    DEPARTMENT,
    EMPLOYEE,
    ENTITIES,
    ESTIMATE,
    INVOICE,
    PAYMENT_METHOD,
    PURCHASE_ORDER,
    SALES_RECEIPT,
    TERM,
    TIME_ACTIVITY,
    VENDOR,
)
from qbproxy.core.deps import ALL, tables_changed
from qbproxy.core.trust import TokenTrust, bearer_token


@pytest.mark.parametrize(
    ("segment", "operation", "keys", "expected"),
    [
        ("customer", "create", frozenset({"DisplayName"}), {CUSTOMER}),
        # An opening balance posts to Accounts Receivable.
        ("customer", "create", frozenset({"DisplayName", "Balance"}), ALL),
        ("customer", "create", None, ALL),  # a webhook: the body is unknown
        ("customer", "update", frozenset(), ALL),  # a rename shows in CustomerRef.name elsewhere
        ("vendor", "create", frozenset({"DisplayName"}), {VENDOR}),
        ("vendor", "create", frozenset({"OpenBalanceDate", "Balance"}), ALL),
        ("employee", "create", frozenset(), {EMPLOYEE}),
        ("employee", "create", None, ALL),  # unknown body: purge more
        ("class", "create", frozenset(), {CLASS}),
        ("department", "create", frozenset(), {DEPARTMENT}),
        ("term", "create", frozenset(), {TERM}),
        ("paymentmethod", "create", frozenset(), {PAYMENT_METHOD}),
        ("account", "create", frozenset({"Name"}), ALL),  # OpeningBalance may post
        ("item", "create", frozenset({"Name"}), ALL),  # QtyOnHand may post
        ("invoice", "create", frozenset(), ALL),  # AR, income, stock, a linked Estimate
        ("invoice", "update", frozenset(), ALL),
        ("invoice", "void", frozenset(), ALL),
        ("invoice", "delete", frozenset(), ALL),
        ("invoice", "send", frozenset(), {INVOICE}),
        ("estimate", "send", frozenset(), {ESTIMATE}),
        ("salesreceipt", "send", frozenset(), {SALES_RECEIPT}),
        ("estimate", "create", frozenset(), {ESTIMATE}),
        ("estimate", "update", frozenset(), ALL),  # may be linked to an Invoice
        ("purchaseorder", "create", frozenset(), {PURCHASE_ORDER}),
        ("timeactivity", "create", frozenset(), {TIME_ACTIVITY}),
        ("payment", "create", frozenset(), ALL),
        ("payment", "delete", frozenset(), ALL),
        ("bill", "create", frozenset(), ALL),
        ("billpayment", "void", frozenset(), ALL),
        ("creditmemo", "create", frozenset(), ALL),
        ("deposit", "create", frozenset(), ALL),
        ("journalentry", "update", frozenset(), ALL),
        ("companyinfo", "update", frozenset(), ALL),
        ("preferences", "update", frozenset(), ALL),  # ReportBasis: every report's default
        ("somethingnew", "create", frozenset(), ALL),  # unknown: purge everything
        ("Invoice", "SEND", frozenset(), {INVOICE}),
    ],
)
def test_tables_changed(
    segment: str, operation: str, keys: frozenset[str] | None, expected: frozenset[object]
) -> None:
    assert tables_changed(segment, operation, keys) == expected


def test_every_cached_entity_is_purged_by_unknown_writes() -> None:
    assert frozenset(ENTITIES) == ALL
    assert len(ALL) == 29


def test_trust_is_per_realm_and_expires() -> None:
    trust = TokenTrust(300, key=b"k")
    fp = trust.fingerprint("Bearer abc")
    assert fp is not None
    assert b"abc" not in fp
    assert not trust.trusted("1", fp, 0.0)
    trust.accept("1", fp, 100.0)
    assert trust.trusted("1", fp, 399.0)
    assert not trust.trusted("1", fp, 400.0)
    assert not trust.trusted("2", fp, 101.0)  # seen only for another realm
    assert not trust.trusted("1", trust.fingerprint("Bearer abd"), 101.0)


def test_rejection_drops_trust_everywhere() -> None:
    trust = TokenTrust(300, key=b"k")
    fp = trust.fingerprint("Bearer abc")
    trust.accept("1", fp, 0.0)
    trust.accept("2", fp, 0.0)
    trust.reject(fp)
    assert not trust.trusted("1", fp, 1.0)
    assert not trust.trusted("2", fp, 1.0)


def test_no_token_is_never_trusted() -> None:
    trust = TokenTrust(300, key=b"k")
    assert trust.fingerprint(None) is None
    assert trust.fingerprint("Basic dXNlcjpwdw==") is None
    trust.accept("1", None, 0.0)
    assert not trust.trusted("1", None, 0.0)


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Bearer", None), ("", None), (None, None)],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone(dt.timedelta(hours=-7)))


def test_query_page_envelope() -> None:
    body = responses.query_page("Customer", ['{"Id":"1"}', '{"Id":"2"}'], 1, NOW)
    assert orjson.loads(body) == {
        "QueryResponse": {
            "Customer": [{"Id": "1"}, {"Id": "2"}],
            "startPosition": 1,
            "maxResults": 2,
        },
        "time": "2026-01-02T03:04:05.678-07:00",
    }


def test_empty_page_is_an_empty_query_response() -> None:
    assert orjson.loads(responses.query_page("Invoice", [], 101, NOW))["QueryResponse"] == {}


def test_count_and_entity_and_fault_bodies() -> None:
    assert orjson.loads(responses.count_body(41, NOW))["QueryResponse"] == {"totalCount": 41}
    assert orjson.loads(responses.entity_body("Invoice", '{"Id":"5"}', NOW))["Invoice"] == {
        "Id": "5"
    }
    fault = orjson.loads(responses.fault_body("4000", "m", "d", NOW))["Fault"]
    assert fault == {
        "Error": [{"Message": "m", "Detail": "d", "code": "4000", "element": ""}],
        "type": "ValidationFault",
    }

"""The write dependency map, token trust and the proxy's own QBO-shaped bodies."""

import datetime as dt

import orjson
import pytest

from qbproxy.core import responses
from qbproxy.core.catalog import CUSTOMER, INVOICE
from qbproxy.core.deps import ALL, tables_changed
from qbproxy.core.trust import TokenTrust, bearer_token


@pytest.mark.parametrize(
    ("segment", "operation", "expected"),
    [
        ("customer", "create", {CUSTOMER}),
        ("customer", "update", ALL),  # a rename shows in CustomerRef.name elsewhere
        ("invoice", "create", {INVOICE, CUSTOMER}),
        ("invoice", "update", ALL),
        ("invoice", "void", ALL),
        ("invoice", "delete", ALL),
        ("invoice", "send", {INVOICE}),
        ("payment", "create", ALL),
        ("payment", "delete", ALL),
        ("creditmemo", "create", ALL),
        ("journalentry", "update", ALL),
        ("somethingnew", "create", ALL),  # unknown: purge everything
        ("Invoice", "CREATE", {INVOICE, CUSTOMER}),
    ],
)
def test_tables_changed(segment: str, operation: str, expected: frozenset[object]) -> None:
    assert tables_changed(segment, operation) == expected


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

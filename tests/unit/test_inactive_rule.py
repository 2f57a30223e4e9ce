"""Learning Intuit's `SELECT *` rule for inactive rows from its answers (pure)."""

import orjson
import pytest

from qbproxy.core.inactive import Rule, learn


def page(*ids: str) -> bytes:
    return orjson.dumps({"Vendor": [{"Id": i} for i in ids]} if ids else {})


def intuit(fragment: bytes) -> bytes:
    return b'{"QueryResponse":%s,"time":"2026-01-01T00:00:00.000-08:00"}' % fragment


HIDDEN, SHOWN = page("1", "3"), page("1", "2", "3")


@pytest.mark.parametrize(
    ("answer", "hidden", "shown", "rule"),
    [
        (intuit(HIDDEN), HIDDEN, SHOWN, "hidden"),
        (intuit(SHOWN), HIDDEN, SHOWN, "shown"),
        # Counts tell too.
        (intuit(b'{"totalCount":2}'), b'{"totalCount":2}', b'{"totalCount":3}', "hidden"),
        (intuit(b'{"totalCount":3}'), b'{"totalCount":2}', b'{"totalCount":3}', "shown"),
        # An empty page under one rule.
        (intuit(b"{}"), page(), page("2"), "hidden"),
        # The candidates agree (inactive rows outside the page): nothing to learn.
        (intuit(HIDDEN), HIDDEN, HIDDEN, None),
        # Intuit's answer matches neither (the cache is behind a change in QBO).
        (intuit(page("1")), HIDDEN, SHOWN, None),
        (intuit(page("3", "1")), HIDDEN, SHOWN, None),  # same rows, other order
        # Not a query answer.
        (b"not json", HIDDEN, SHOWN, None),
        (b'{"Fault":{}}', HIDDEN, SHOWN, None),
        (b'{"QueryResponse":{"Vendor":"x"}}', HIDDEN, SHOWN, None),
    ],
)
def test_learn(answer: bytes, hidden: bytes, shown: bytes, rule: Rule | None) -> None:
    assert learn("Vendor", answer, hidden, shown) == rule

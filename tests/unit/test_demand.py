"""Which tables refresh-ahead keeps fresh, and with which token (qbproxy/demand.py)."""

from __future__ import annotations

import pytest

from qbproxy.core.in_use import Demand, due
from qbproxy.sync.ahead import effective_ahead

A, B = "realm-a", "realm-b"


def test_tables_asked_about_within_the_idle_window_are_in_use() -> None:
    demand = Demand(idle_seconds=300)
    demand.used(A, "Invoice", "Bearer one", now=0)
    demand.used(A, "Customer", "Bearer one", now=200)
    demand.used(B, "Payment", "Bearer two", now=250)
    assert demand.in_use(now=299) == {A: {"Invoice", "Customer"}, B: {"Payment"}}
    assert demand.in_use(now=300) == {A: {"Customer"}, B: {"Payment"}}


def test_an_idle_realm_is_forgotten_with_its_token() -> None:
    demand = Demand(idle_seconds=300)
    demand.used(A, "Invoice", "Bearer one", now=0)
    assert demand.in_use(now=301) == {}
    assert demand.token(A) is None


def test_the_latest_trusted_token_of_a_realm_is_used() -> None:
    demand = Demand(idle_seconds=300)
    demand.used(A, "Invoice", "Bearer one", now=0)
    demand.used(A, "Customer", "Bearer two", now=1)
    demand.used(B, "Invoice", "Bearer three", now=2)
    assert (demand.token(A), demand.token(B)) == ("Bearer two", "Bearer three")


def test_forgetting_a_token_forgets_only_that_token() -> None:
    demand = Demand(idle_seconds=300)
    demand.used(A, "Invoice", "Bearer new", now=0)
    demand.forget_token(A, "Bearer old")  # a refresh with an older token was refused
    assert demand.token(A) == "Bearer new"
    demand.forget_token(A, "Bearer new")
    assert demand.token(A) is None
    assert demand.in_use(now=1) == {}


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [(None, False), (-1.0, False), (0.0, False), (0.5, True), (30.0, True), (30.5, False)],
)
def test_a_complete_table_is_due_within_the_window(remaining: float | None, expected: bool) -> None:
    assert due(remaining, ahead_seconds=30) is expected


def test_the_window_is_at_most_half_the_ttl() -> None:
    assert effective_ahead(30, ttl_seconds=300) == 30
    assert effective_ahead(30, ttl_seconds=20) == 10
    assert effective_ahead(0, ttl_seconds=300) == 0

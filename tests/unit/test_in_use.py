"""Which tables refresh-ahead keeps fresh, and with which token (qbproxy/core/in_use.py)."""

from __future__ import annotations

from qbproxy.core.in_use import Demand

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

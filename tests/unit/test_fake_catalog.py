"""Pure parts of the fake Intuit's entities and reports: the catalog, the query engine over
it, date macros and report periods (no HTTP)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from fake_intuit.catalog import CDC_EXCLUDED, SPECS
from fake_intuit.data import RealmData
from fake_intuit.query import QueryError, parse, select
from fake_intuit.report_base import macro_range, parse_params
from multidict import MultiDict

TZ = dt.timezone(dt.timedelta(hours=-7))


def test_catalog_flags_follow_qbo_api_md() -> None:
    assert {n for n, s in SPECS.items() if not s.cdc} == {"TaxCode", "TaxRate", "TimeActivity"}
    assert {n for n, s in SPECS.items() if s.voidable} == {
        "Invoice",
        "Payment",
        "SalesReceipt",
        "BillPayment",
    }
    assert {n for n, s in SPECS.items() if not s.webhooks} == {
        "Attachable",
        "CompanyInfo",
        "TaxCode",
        "TaxRate",
    }
    assert {n for n, s in SPECS.items() if not s.writable} == {"TaxCode", "TaxRate", "CompanyInfo"}
    assert set(CDC_EXCLUDED) >= {"TaxCode", "TaxRate", "TimeActivity"}
    for spec in SPECS.values():
        assert {"Id", "MetaData.CreateTime", "MetaData.LastUpdatedTime"} <= set(spec.fields)


def docs(**extra: Any) -> list[dict[str, Any]]:
    return [
        {"Id": "3", "Name": "b", "Active": True, **extra},
        {"Id": "1", "Name": "A", "Active": False, **extra},
        {"Id": "2", "Name": "c", "Active": True, **extra},
    ]


def ids(answer: dict[str, Any], entity: str) -> list[str]:
    return [d["Id"] for d in answer.get(entity, [])]


def test_inactive_rows_are_hidden_per_entity() -> None:
    assert ids(select(parse("select * from term", TZ), docs()), "Term") == ["2", "3"]
    assert ids(select(parse("select * from TaxCode", TZ), docs()), "TaxCode") == ["1", "2", "3"]
    text = "select * from Term where Active in (true, false) orderby Name desc"
    assert ids(select(parse(text, TZ), docs()), "Term") == ["2", "3", "1"]


def test_projection_and_star_with_fields() -> None:
    answer = select(parse("select Id, Name from Term", TZ), docs())
    assert answer["Term"][0] == {"Id": "2", "Name": "c", "domain": "QBO", "sparse": True}
    assert parse("select *, Sku from Item", TZ).projection is None
    with pytest.raises(QueryError) as caught:
        parse("select * from Term where DueDays = '3'", TZ)
    assert caught.value.code == "4001"


def test_date_macros() -> None:
    today = dt.date(2025, 1, 10)
    assert macro_range("last month", today, 1) == (dt.date(2024, 12, 1), dt.date(2024, 12, 31))
    assert macro_range("This Fiscal Year", today, 4) == (dt.date(2024, 4, 1), dt.date(2025, 3, 31))
    assert macro_range("Last Fiscal Year", today, 4) == (dt.date(2023, 4, 1), dt.date(2024, 3, 31))
    assert macro_range("This Week", today, 1) == (dt.date(2025, 1, 5), dt.date(2025, 1, 11))
    assert macro_range("Next Week-ish", today, 1) is None


def test_params_and_periods() -> None:
    data = RealmData("1", random.Random(1))
    q = MultiDict(
        {"start_date": "2024-01-15", "end_date": "2024-03-02", "summarize_column_by": "Month"}
    )
    params = parse_params("ProfitAndLoss", data, dt.date(2025, 1, 1), q)
    titles = [(p.start.isoformat(), p.end.isoformat(), p.title) for p in params.periods()]
    assert titles == [
        ("2024-01-15", "2024-01-31", "Jan 2024"),
        ("2024-02-01", "2024-02-29", "Feb 2024"),
        ("2024-03-01", "2024-03-02", "Mar 2024"),
        ("2024-01-15", "2024-03-02", "Total"),
    ]
    assert params.basis == "Accrual"
    cash = parse_params("X", data, dt.date(2025, 1, 1), MultiDict({"accounting_method": "cash"}))
    assert (cash.basis, cash.start, cash.end) == ("Cash", dt.date(2025, 1, 1), dt.date(2025, 1, 1))

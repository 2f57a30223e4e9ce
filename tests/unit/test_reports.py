"""The report catalog (qbproxy/core/reports.py): canonical keys, confirmed defaults only,
day dependence, what may be stored and the company-day rule."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from qbproxy.core import reports
from qbproxy.core.reports import CompanyDay, ReportKey, report_key, same_company_day, storable


def key(name: str, query: str) -> ReportKey:
    found = report_key(name, query)
    assert found is not None, (name, query)
    return found


@pytest.mark.parametrize(
    ("name", "a", "b"),
    [
        # Order does not matter; encodings of the same value do not either.
        (
            "ProfitAndLoss",
            "start_date=2024-01-01&end_date=2024-06-30",
            "end_date=2024-06-30&start_date=2024-01-01",
        ),
        ("ProfitAndLoss", "date_macro=This%20Month", "date_macro=This+Month"),
        # minorversion, requestid and format=json are never part of the key.
        ("BalanceSheet", "minorversion=75&format=json", ""),
        ("BalanceSheet", "requestid=abc&minorversion=4", "minorversion=65"),
        # Documented defaults (qbo-api.md) given at exactly that value are keyed as absent.
        ("ProfitAndLoss", "date_macro=This%20Fiscal%20Year-to-date", ""),
        ("BalanceSheet", "date_macro=This+Fiscal+Year-to-date", ""),
        ("GeneralLedger", "date_macro=This Fiscal Year-to-date", ""),
        ("AgedReceivables", "date_macro=This Fiscal Year-to-date", ""),
        ("ProfitAndLoss", "summarize_column_by=Total", ""),
        ("TransactionList", "sort_order=ascend", ""),
        ("AgedReceivableDetail", "aging_period=30&num_periods=4&aging_method=Report_Date", ""),
    ],
)
def test_equivalent_requests_share_a_key(name: str, a: str, b: str) -> None:
    assert key(name, a) == key(name, b)
    assert key(name, a).text == key(name, b).text


@pytest.mark.parametrize(
    ("name", "a", "b"),
    [
        # accounting_method absent means the company's Preferences ReportBasis: never
        # the same key as an explicit value.
        ("ProfitAndLoss", "accounting_method=Accrual", ""),
        ("ProfitAndLoss", "accounting_method=Cash", "accounting_method=cash"),
        # The date_macro default is confirmed for four reports only.
        ("CashFlow", "date_macro=This Fiscal Year-to-date", ""),
        ("TrialBalance", "date_macro=This Fiscal Year-to-date", ""),
        ("CustomerSales", "date_macro=This Fiscal Year-to-date", ""),
        # Values compare exactly: another case or spelling is another key.
        ("ProfitAndLoss", "date_macro=this fiscal year-to-date", ""),
        ("ProfitAndLoss", "summarize_column_by=total", ""),
        ("ProfitAndLoss", "sort_order=Ascend", ""),
        ("ProfitAndLoss", "date_macro=Today", "date_macro=today"),
        # The aging defaults are documented for the detail report only.
        ("AgedReceivables", "aging_period=30", ""),
        ("AgedPayables", "num_periods=4", ""),
        ("AgedReceivableDetail", "aging_period=030", ""),
        # The MCP server's days_per_aging_period is not taken for aging_period.
        ("AgedReceivables", "days_per_aging_period=15", "aging_period=15"),
        ("ProfitAndLoss", "customer=1", "customer=1,2"),
        ("ProfitAndLoss", "customer=", ""),
    ],
)
def test_different_requests_have_different_keys(name: str, a: str, b: str) -> None:
    assert key(name, a).text != key(name, b).text


def test_reports_never_share_keys() -> None:
    texts = {key(name, "").text for name in reports.REPORTS}
    assert len(texts) == len(reports.REPORTS)


def test_the_catalog_holds_the_reports_intuits_mcp_server_calls() -> None:
    assert set(reports.REPORTS) >= {
        "BalanceSheet",
        "ProfitAndLoss",
        "CashFlow",
        "TrialBalance",
        "GeneralLedger",
        "CustomerSales",
        "CustomerBalance",
        "AgedReceivables",
        "AgedReceivableDetail",
        "AgedPayables",
        "VendorExpenses",
        "TransactionList",
    }


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("ProfitAndLossDetail", ""),  # not in the catalog
        ("profitandloss", ""),  # names are matched exactly
        ("ProfitAndLoss", "nonsense=1"),  # unknown parameter
        ("ProfitAndLoss", "Start_Date=2024-01-01"),  # names are matched exactly
        ("ProfitAndLoss", "format=xml"),  # another representation
        ("ProfitAndLoss", "customer=1&customer=2"),  # which one Intuit takes is unknown
        ("ProfitAndLoss", "minorversion=75&minorversion=70"),
        ("BalanceSheet", "report_date=2024-01-01"),  # not a BalanceSheet parameter
        ("TransactionList", "columns=" + "x" * 2000),  # key too long
    ],
)
def test_forwarded_when_unsure(name: str, query: str) -> None:
    assert report_key(name, query) is None


@pytest.mark.parametrize(
    ("name", "query", "dependent"),
    [
        ("ProfitAndLoss", "", True),  # the default period is fiscal year-to-date
        ("ProfitAndLoss", "start_date=2024-01-01", True),  # open end: today's
        ("ProfitAndLoss", "end_date=2024-01-31", True),
        ("ProfitAndLoss", "start_date=2024-01-01&end_date=2024-01-31", False),
        ("ProfitAndLoss", "start_date=2024-01-01&end_date=2024-01-31&date_macro=Today", True),
        ("ProfitAndLoss", "date_macro=Last Fiscal Year", True),
        ("ProfitAndLoss", "start_date=today&end_date=2024-01-31", True),  # not a date
        ("ProfitAndLoss", "start_date=2024-02-30&end_date=2024-03-31", True),
        ("BalanceSheet", "start_date=2024-01-01&end_date=2024-12-31", False),
        ("GeneralLedger", "start_date=2024-01-01&end_date=2024-12-31&customer=3", False),
        ("TransactionList", "start_date=2024-01-01&end_date=2024-12-31", False),
        ("TransactionList", "start_date=2024-01-01&end_date=2024-12-31&duedate_macro=Today", True),
        ("CustomerBalance", "", True),  # report_date defaults to today
        ("CustomerBalance", "report_date=2024-06-30", False),
        ("AgedPayables", "report_date=2024-06-30", False),
        ("AgedPayables", "report_date=2024-06-30&date_macro=Today", True),
        ("AgedReceivableDetail", "", True),
        ("AgedReceivableDetail", "report_date=2024-06-30&aging_period=15", False),
        # qbo-api.md names a date_macro default for AgedReceivables: always dependent.
        ("AgedReceivables", "report_date=2024-06-30", True),
    ],
)
def test_day_dependence(name: str, query: str, dependent: bool) -> None:
    assert key(name, query).day_dependent is dependent


REPORT = {
    "Header": {"Time": "2016-03-03T13:00:18-08:00", "ReportName": "ProfitAndLoss"},
    "Columns": {"Column": []},
    "Rows": {"Row": []},
}
DEPENDENT = key("ProfitAndLoss", "")
FIXED = key("ProfitAndLoss", "start_date=2016-01-01&end_date=2016-01-31")


@pytest.mark.parametrize(
    ("report_key_", "status", "body", "limit", "expected"),
    [
        (DEPENDENT, 200, orjson.dumps(REPORT), 10_000, CompanyDay(dt.date(2016, 3, 3), -28800)),
        (FIXED, 200, orjson.dumps(REPORT), 10_000, None),
        (DEPENDENT, 200, orjson.dumps(REPORT), 10, False),  # over the size bound
        (DEPENDENT, 400, orjson.dumps(REPORT), 10_000, False),
        (DEPENDENT, 200, b"<xml/>", 10_000, False),
        (DEPENDENT, 200, b"[]", 10_000, False),
        (DEPENDENT, 200, orjson.dumps({"Header": {}, "Rows": {}}), 10_000, False),
        (DEPENDENT, 200, orjson.dumps({**REPORT, "Header": "x"}), 10_000, False),
        # A day-dependent answer whose day cannot be told is not stored...
        (DEPENDENT, 200, orjson.dumps({**REPORT, "Header": {}}), 10_000, False),
        (
            DEPENDENT,
            200,
            orjson.dumps({**REPORT, "Header": {"Time": "2016-03-03T13:00:18"}}),
            10_000,
            False,
        ),
        # ...one that does not depend on the day is.
        (FIXED, 200, orjson.dumps({**REPORT, "Header": {}}), 10_000, None),
    ],
)
def test_what_is_stored(
    report_key_: ReportKey, status: int, body: bytes, limit: int, expected: object
) -> None:
    kept = storable(report_key_, status, body, limit)
    if expected is False:
        assert kept is None
    else:
        assert kept is not None
        assert kept.day == expected


PACIFIC = dt.timezone(dt.timedelta(hours=-8))
MARCH_3 = CompanyDay(dt.date(2016, 3, 3), -8 * 3600)


@pytest.mark.parametrize(
    ("now", "same"),
    [
        (dt.datetime(2016, 3, 3, 13, 0, tzinfo=PACIFIC), True),
        (dt.datetime(2016, 3, 3, 0, 0, tzinfo=PACIFIC), True),
        # The proxy's clock in another zone: judged in the company's offset.
        (dt.datetime(2016, 3, 4, 7, 0, tzinfo=dt.UTC), True),  # 23:00 Pacific
        (dt.datetime(2016, 3, 4, 8, 0, tzinfo=dt.UTC), False),  # midnight Pacific
        (dt.datetime(2016, 3, 4, 0, 0, 1, tzinfo=PACIFIC), False),
        (dt.datetime(2016, 3, 2, 23, 59, tzinfo=PACIFIC), False),  # a clock behind Intuit's
        # The last minute of the day is not served: our clock may lag Intuit's.
        (dt.datetime(2016, 3, 3, 23, 59, 30, tzinfo=PACIFIC), False),
        (dt.datetime(2016, 3, 3, 23, 58, 59, tzinfo=PACIFIC), True),
    ],
)
def test_the_company_day(now: dt.datetime, same: bool) -> None:
    assert same_company_day(MARCH_3, now) is same

"""The fake Intuit's reports over real HTTP: Intuit's JSON shape, numbers that add up, numbers
that follow writes (so a stale cached report is detectable), date macros on the company's
calendar day, accounting basis from Preferences, filters, and the call log."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fake_intuit import SANDBOX_KEY, SandboxConfig, create_app
from pytest_aiohttp import AiohttpClient

from tests.integration.test_sandbox import QBO, R1, R2, money

REPORTS = (
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
)
HEADER_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-07:00$")
ALL_DATES = {"start_date": "2000-01-01", "end_date": "2099-12-31"}
Report = dict[str, Any]


@pytest.fixture
async def qbo(aiohttp_client: AiohttpClient) -> QBO:
    app = create_app(SandboxConfig(realms=(R1, R2), customers_per_realm=40, seed=3))
    client = await aiohttp_client(app)
    return QBO(client, app[SANDBOX_KEY])


async def report(qbo: QBO, name: str, **params: str) -> Report:
    resp = await qbo.get(f"reports/{name}", params={"minorversion": "75", **params})
    assert resp.status == 200, resp.body
    body: Report = resp.json
    return body


def walk(rows: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield row
        yield from walk((row.get("Rows") or {}).get("Row", []))


def summary(rep: Report, group: str) -> list[Decimal]:
    for row in walk(rep["Rows"]["Row"]):
        if row.get("group") == group:
            return [money(c["value"]) for c in row["Summary"]["ColData"][1:] if c["value"]]
    raise AssertionError(f"no {group} in {rep['Header']['ReportName']}")


def data_rows(rep: Report) -> list[dict[str, Any]]:
    return [row for row in walk(rep["Rows"]["Row"]) if row.get("type") == "Data"]


@pytest.mark.parametrize("name", REPORTS)
async def test_every_report_has_intuits_shape(qbo: QBO, name: str) -> None:
    rep = await report(qbo, name)
    assert set(rep) == {"Header", "Columns", "Rows"}  # no top-level "time"
    head = rep["Header"]
    assert HEADER_TIME.match(head["Time"])
    assert head["ReportName"] == name
    assert head["ReportBasis"] == "Accrual"
    assert head["Currency"] == "USD"
    assert head["SummarizeColumnsBy"] == "Total"
    dt.date.fromisoformat(head["StartPeriod"])
    dt.date.fromisoformat(head["EndPeriod"])
    assert {"Name": "NoReportData", "Value": "false"} in head["Option"]
    columns = rep["Columns"]["Column"]
    for column in columns:
        assert set(column) == {"ColTitle", "ColType", "MetaData"}
    rows = list(walk(rep["Rows"]["Row"]))
    assert rows
    for row in rows:
        assert row["type"] in ("Data", "Section")
        cells = row["ColData"] if row["type"] == "Data" else row.get("Summary", {}).get("ColData")
        for cell in cells or []:
            assert isinstance(cell["value"], str)
        if row["type"] == "Data":
            assert len(row["ColData"]) == len(columns)


@pytest.mark.parametrize("basis", ["Accrual", "Cash"])
@pytest.mark.parametrize(
    "params",
    [{}, ALL_DATES, {"date_macro": "Last Fiscal Year"}, {"date_macro": "This Month"}],
    ids=["default", "all", "last-fy", "this-month"],
)
async def test_books_balance(qbo: QBO, basis: str, params: dict[str, str]) -> None:
    trial = await report(qbo, "TrialBalance", accounting_method=basis, **params)
    debits, credits = summary(trial, "GrandTotal")
    assert debits == credits
    assert debits > 0
    sheet = await report(qbo, "BalanceSheet", accounting_method=basis, **params)
    assert sheet["Header"]["ReportBasis"] == basis
    assert summary(sheet, "TotalAssets") == summary(sheet, "TotalLiabilitiesAndEquity")
    # Cash at the end of a cash flow statement is what the bank accounts hold.
    flow = await report(qbo, "CashFlow", accounting_method=basis, **params)
    (begin,), (increase,), (end,) = (
        summary(flow, g) for g in ("BeginningCash", "CashIncrease", "EndingCash")
    )
    assert begin + increase == end
    banks = sum(
        (
            money(v["ColData"][1]["value"])
            for section in walk(sheet["Rows"]["Row"])
            if section.get("group") == "BankAccounts"
            for v in section["Rows"]["Row"]
        ),
        Decimal(0),
    )
    assert end == banks


async def test_month_columns_add_up_to_the_total(qbo: QBO) -> None:
    today = dt.date.fromisoformat(qbo.sb.clock.date(qbo.sb.now()))
    since = {"start_date": f"{today.year - 3}-01-01", "end_date": today.isoformat()}
    pl = await report(qbo, "ProfitAndLoss", summarize_column_by="Month", **since)
    assert pl["Header"]["SummarizeColumnsBy"] == "Month"
    columns = pl["Columns"]["Column"]
    assert columns[-1]["ColTitle"] == "Total"
    assert [c["ColType"] for c in columns[1:]] == ["Money"] * (len(columns) - 1)
    assert len(columns) == 2 + 36 + today.month
    *months, whole = summary(pl, "NetIncome")
    assert sum(months, Decimal(0)) == whole
    monthly = await report(qbo, "BalanceSheet", summarize_column_by="Quarter", **since)
    assets = summary(monthly, "TotalAssets")
    assert assets == summary(monthly, "TotalLiabilitiesAndEquity")


async def test_balances_match_the_documents(qbo: QBO) -> None:
    balance = await report(qbo, "CustomerBalance")
    owed = sum((money(c["Balance"]) for c in qbo.truth("Customer")), Decimal(0))
    assert summary(balance, "GrandTotal") == [owed]
    aged = await report(qbo, "AgedReceivables")
    assert summary(aged, "GrandTotal")[-1] == owed
    payable = await report(qbo, "AgedPayables")
    due = sum((money(v["Balance"]) for v in qbo.truth("Vendor")), Decimal(0))
    assert summary(payable, "GrandTotal")[-1] == due
    detail = await report(qbo, "AgedReceivableDetail")
    assert summary(detail, "GrandTotal")[-1] == owed
    ledger = await report(qbo, "GeneralLedger", **ALL_DATES)
    checking = next(a for a in qbo.truth("Account") if a["Name"] == "Checking")
    section = next(
        s
        for s in ledger["Rows"]["Row"]
        if s["Header"]["ColData"][0] == {"value": "Checking", "id": checking["Id"]}
    )
    assert money(section["Rows"]["Row"][-1]["ColData"][-1]["value"]) == money(
        checking["CurrentBalance"]
    )


async def test_a_write_changes_the_reports(qbo: QBO) -> None:
    customer = next(c for c in qbo.truth("Customer") if c["Active"])
    before = {
        name: await report(qbo, name)
        for name in ("ProfitAndLoss", "AgedReceivables", "CustomerSales", "TransactionList")
    }
    invoice = {
        "CustomerRef": {"value": customer["Id"]},
        "Line": [
            {
                "Amount": 321.5,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}},
            }
        ],
    }
    resp = await qbo.post("invoice", invoice)
    assert resp.status == 200
    pl = await report(qbo, "ProfitAndLoss")
    assert summary(pl, "Income")[0] == summary(before["ProfitAndLoss"], "Income")[0] + Decimal(
        "321.50"
    )
    aged = await report(qbo, "AgedReceivables")
    old = summary(before["AgedReceivables"], "GrandTotal")
    assert summary(aged, "GrandTotal")[-1] == old[-1] + Decimal("321.50")
    sales = await report(qbo, "CustomerSales", customer=customer["Id"])
    assert [r["ColData"][0]["id"] for r in data_rows(sales)] == [customer["Id"]]
    listed = await report(qbo, "TransactionList")
    assert len(data_rows(listed)) == len(data_rows(before["TransactionList"])) + 1
    # A bill moves the payables and the vendor expenses.
    vendor = next(v for v in qbo.truth("Vendor") if v["Active"])
    payables = await report(qbo, "AgedPayables")
    expenses = await report(qbo, "VendorExpenses", vendor=vendor["Id"])
    bill = {
        "VendorRef": {"value": vendor["Id"]},
        "Line": [
            {
                "Amount": 99,
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "17"}},
            }
        ],
    }
    assert (await qbo.post("bill", bill)).status == 200
    after = await report(qbo, "AgedPayables")
    assert summary(after, "GrandTotal")[-1] == summary(payables, "GrandTotal")[-1] + 99
    spent = await report(qbo, "VendorExpenses", vendor=vendor["Id"])
    assert spent["Header"]["Vendor"] == vendor["Id"]
    assert summary(spent, "GrandTotal")[0] == summary(expenses, "GrandTotal")[0] + 99


@pytest.mark.parametrize(
    ("macro", "start", "end"),
    [
        ("Today", "2025-03-14", "2025-03-14"),
        ("Yesterday", "2025-03-13", "2025-03-13"),
        ("This Month", "2025-03-01", "2025-03-31"),
        ("This Month-to-date", "2025-03-01", "2025-03-14"),
        ("Last Month", "2025-02-01", "2025-02-28"),
        ("This Fiscal Year", "2025-01-01", "2025-12-31"),
        ("This Fiscal Year-to-date", "2025-01-01", "2025-03-14"),
        ("Last Fiscal Year", "2024-01-01", "2024-12-31"),
        ("This Calendar Year", "2025-01-01", "2025-12-31"),
        ("Last Year", "2024-01-01", "2024-12-31"),
    ],
)
async def test_date_macros_follow_the_company_day(
    qbo: QBO, macro: str, start: str, end: str
) -> None:
    # 2025-03-15 05:00 UTC is still the 14th at -07:00.
    qbo.sb.now = lambda: dt.datetime(2025, 3, 15, 5, 0, tzinfo=dt.UTC).timestamp()
    rep = await report(qbo, "ProfitAndLoss", date_macro=macro)
    assert (rep["Header"]["StartPeriod"], rep["Header"]["EndPeriod"]) == (start, end)
    explicit = await report(qbo, "ProfitAndLoss", start_date="2024-06-01", end_date="2024-06-30")
    assert explicit["Header"]["StartPeriod"] == "2024-06-01"
    aging = await report(qbo, "AgedReceivables")
    assert aging["Header"]["EndPeriod"] == "2025-03-14"


async def test_basis_defaults_to_preferences_and_unknown_params_are_ignored(qbo: QBO) -> None:
    accrual = await report(qbo, "ProfitAndLoss", **ALL_DATES)
    same = await report(qbo, "ProfitAndLoss", nonsense="1", days_per_aging_period="9", **ALL_DATES)
    assert same["Rows"] == accrual["Rows"]
    assert same["Columns"] == accrual["Columns"]
    prefs = qbo.sb.get(qbo.realm, "Preferences", "1")
    assert prefs is not None
    body = {"Id": "1", "SyncToken": prefs["SyncToken"], "sparse": True}
    resp = await qbo.post("preferences", body | {"ReportPrefs": {"ReportBasis": "Cash"}})
    assert resp.status == 200
    cash = await report(qbo, "ProfitAndLoss", **ALL_DATES)
    assert cash["Header"]["ReportBasis"] == "Cash"
    assert cash["Rows"] != accrual["Rows"]
    explicit = await report(qbo, "ProfitAndLoss", accounting_method="Accrual", **ALL_DATES)
    assert explicit["Rows"] == accrual["Rows"]


async def test_aging_parameters(qbo: QBO) -> None:
    rep = await report(qbo, "AgedReceivables", aging_period="15", num_periods="3")
    titles = [c["ColTitle"] for c in rep["Columns"]["Column"]]
    assert titles == ["", "Current", "1 - 15", "16 - 30", "31 and over", "Total"]
    for row in data_rows(rep):
        *buckets, whole = (money(c["value"]) for c in row["ColData"][1:])
        assert sum(buckets, Decimal(0)) == whole
    alias = await report(qbo, "AgedReceivables", days_per_aging_period="15", num_periods="3")
    assert alias["Columns"] == rep["Columns"]
    early = await report(qbo, "CustomerBalance", report_date="2000-01-01")
    assert early["Header"]["EndPeriod"] == "2000-01-01"
    assert summary(early, "GrandTotal") == [Decimal(0)]
    assert {"Name": "NoReportData", "Value": "true"} in early["Header"]["Option"]


async def test_report_calls_are_counted(qbo: QBO) -> None:
    await report(qbo, "BalanceSheet")
    await report(qbo, "BalanceSheet", date_macro="Today")
    await report(qbo, "AgedPayables")
    assert qbo.sb.count("report") == 3
    assert qbo.sb.count("report", entity="BalanceSheet") == 2
    qbo.sb.fail_next(1, 503, kind="report")
    assert (await qbo.get("reports/ProfitAndLoss")).status == 503
    assert qbo.sb.count("report") == 4

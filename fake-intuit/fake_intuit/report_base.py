"""What every report shares: parameters (dates, `date_macro`, basis, columns), the Header,
Columns and the Section/Data rows in Intuit's report JSON (qbo-api.md "Reports").

Choices where qbo-api.md is unsure (README): without start_date/end_date every report but
the aging and balance ones covers "This Fiscal Year-to-date"; an unknown `date_macro` or
`summarize_column_by`, like any unknown parameter, is ignored; "This Year"/"Last Year" mean
the fiscal year ("... Calendar Year" the calendar one); `summarize_column_by` splits into
Month, Quarter, Year or Week columns (plus Total) for ProfitAndLoss, BalanceSheet,
CustomerSales and VendorExpenses, every other value gives one Total column; a name the fake
does not compute answers an empty report (`NoReportData` "true").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from multidict import MultiMapping

from fake_intuit.data import Doc, RealmData
from fake_intuit.ledger import Basis

Row = dict[str, Any]
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MAX_PERIODS = 400  # period columns at most; the Total column always covers the whole range
ECHOED = ("customer", "vendor", "item", "class", "department", "arpaid", "aging_period")


@dataclass(frozen=True, slots=True)
class Period:
    start: dt.date
    end: dt.date
    title: str


@dataclass(frozen=True, slots=True)
class Params:
    name: str
    today: dt.date
    start: dt.date
    end: dt.date
    basis: Basis
    summarize: str  # "Total", "Month", "Quarter", "Year", "Week"
    customers: frozenset[str] | None
    vendors: frozenset[str] | None
    report_date: dt.date
    aging_period: int
    num_periods: int
    arpaid: str
    fiscal_start_month: int
    echoes: tuple[tuple[str, str], ...]

    def periods(self) -> list[Period]:
        """The money columns: one per period of `summarize` within [start, end], then Total."""
        total = Period(self.start, self.end, "Total")
        if self.summarize == "Total":
            return [total]
        out: list[Period] = []
        cursor = self.start
        while cursor <= self.end and len(out) < MAX_PERIODS:
            end = min(self.end, _period_end(cursor, self.summarize))
            out.append(Period(cursor, end, _title(cursor, end, self.summarize)))
            cursor = end + dt.timedelta(days=1)
        return [*out, total]

    def fiscal_year_start(self, day: dt.date) -> dt.date:
        year = day.year if day.month >= self.fiscal_start_month else day.year - 1
        return dt.date(year, self.fiscal_start_month, 1)


def _month_end(day: dt.date) -> dt.date:
    first_next = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return first_next - dt.timedelta(days=1)


def _period_end(day: dt.date, unit: str) -> dt.date:
    if unit == "Week":
        return day + dt.timedelta(days=6 - (day.weekday() + 1) % 7)  # weeks end on Saturday
    if unit == "Quarter":
        last = ((day.month - 1) // 3) * 3 + 3
        return _month_end(dt.date(day.year, last, 1))
    if unit == "Year":
        return dt.date(day.year, 12, 31)
    return _month_end(day)


def _title(start: dt.date, end: dt.date, unit: str) -> str:
    if unit == "Month":
        return start.strftime("%b %Y")
    if unit == "Year":
        return str(start.year)
    return f"{start.strftime('%b %d')} - {end.strftime('%b %d, %Y')}"


def macro_range(macro: str, today: dt.date, fiscal_month: int) -> tuple[dt.date, dt.date] | None:
    """Intuit's `date_macro` values, relative to the company's calendar day."""
    m = macro.strip().lower()
    fy_year = today.year if today.month >= fiscal_month else today.year - 1
    fy = dt.date(fy_year, fiscal_month, 1)

    def years_later(day: dt.date, n: int) -> dt.date:
        return day.replace(year=day.year + n)

    month = today.replace(day=1)
    last_month_end = month - dt.timedelta(days=1)
    quarter = dt.date(today.year, ((today.month - 1) // 3) * 3 + 1, 1)
    week = today - dt.timedelta(days=(today.weekday() + 1) % 7)
    table: dict[str, tuple[dt.date, dt.date]] = {
        "today": (today, today),
        "yesterday": (today - dt.timedelta(days=1),) * 2,
        "this week": (week, week + dt.timedelta(days=6)),
        "this week-to-date": (week, today),
        "last week": (week - dt.timedelta(days=7), week - dt.timedelta(days=1)),
        "this month": (month, _month_end(today)),
        "this month-to-date": (month, today),
        "last month": (last_month_end.replace(day=1), last_month_end),
        "last month-to-date": (
            last_month_end.replace(day=1),
            min(last_month_end, today - dt.timedelta(days=31)),
        ),
        "this quarter": (quarter, _period_end(quarter, "Quarter")),
        "this quarter-to-date": (quarter, today),
        "this fiscal year": (fy, years_later(fy, 1) - dt.timedelta(days=1)),
        "this fiscal year-to-date": (fy, today),
        "last fiscal year": (years_later(fy, -1), fy - dt.timedelta(days=1)),
        "next fiscal year": (years_later(fy, 1), years_later(fy, 2) - dt.timedelta(days=1)),
        "this calendar year": (dt.date(today.year, 1, 1), dt.date(today.year, 12, 31)),
        "this calendar year-to-date": (dt.date(today.year, 1, 1), today),
        "last calendar year": (dt.date(today.year - 1, 1, 1), dt.date(today.year - 1, 12, 31)),
    }
    table["this year"] = table["this fiscal year"]
    table["this year-to-date"] = table["this fiscal year-to-date"]
    table["last year"] = table["last fiscal year"]
    table["last year-to-date"] = (years_later(fy, -1), years_later(today, -1))
    table["all dates"] = (dt.date(1900, 1, 1), today)
    return table.get(m)


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip()[:10]) if text else None
    except ValueError:
        return None


def _int(text: str | None, default: int) -> int:
    try:
        value = int(text) if text else default
    except ValueError:
        return default
    return value if value > 0 else default


def _ids(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    return frozenset(v.strip() for v in text.split(",") if v.strip())


def parse_params(name: str, data: RealmData, today: dt.date, q: MultiMapping[str]) -> Params:
    info = data.docs["CompanyInfo"].get("1", {})
    month_name = str(info.get("FiscalYearStartMonth", "January"))
    fiscal = MONTHS.index(month_name) + 1 if month_name in MONTHS else 1
    prefs = data.docs["Preferences"].get("1", {})
    default_basis = (prefs.get("ReportPrefs") or {}).get("ReportBasis", "Accrual")
    basis = {"cash": "Cash", "accrual": "Accrual"}.get(
        q.get("accounting_method", "").lower(), default_basis
    )
    default = macro_range("This Fiscal Year-to-date", today, fiscal)
    assert default is not None
    chosen = macro_range(q.get("date_macro", ""), today, fiscal) or default
    start = _date(q.get("start_date")) or chosen[0]
    end = _date(q.get("end_date")) or chosen[1]
    if end < start:
        start, end = end, start
    unit = q.get("summarize_column_by", "Total")
    unit = unit if unit in ("Month", "Quarter", "Year", "Week") else "Total"
    echoes = tuple((k, q[k]) for k in ECHOED if k in q)
    return Params(
        name=name,
        today=today,
        start=start,
        end=end,
        basis="Cash" if basis == "Cash" else "Accrual",
        summarize=unit,
        customers=_ids(q.get("customer")),
        vendors=_ids(q.get("vendor")),
        report_date=_date(q.get("report_date")) or today,
        # Intuit's MCP server sends days_per_aging_period (undocumented): the same thing.
        aging_period=_int(q.get("aging_period") or q.get("days_per_aging_period"), 30),
        num_periods=_int(q.get("num_periods"), 4),
        arpaid=q.get("arpaid", "Unpaid").capitalize(),
        fiscal_start_month=fiscal,
        echoes=echoes,
    )


def money_text(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):.2f}"


def cell(value: Any, id_: str | None = None) -> dict[str, str]:
    text = money_text(value) if isinstance(value, Decimal) else str(value)
    return {"value": text, "id": id_} if id_ else {"value": text}


def data_row(label: str, values: Sequence[Any], id_: str | None = None) -> Row:
    return {"ColData": [cell(label, id_), *(cell(v) for v in values)], "type": "Data"}


def section(
    title: str | None,
    rows: list[Row],
    summary: tuple[str, Sequence[Any]] | None,
    group: str | None = None,
    width: int = 1,
) -> Row:
    out: Row = {}
    if title is not None:
        out["Header"] = {"ColData": [cell(title), *(cell("") for _ in range(width))]}
    if rows:
        out["Rows"] = {"Row": rows}
    if summary is not None:
        out["Summary"] = {"ColData": [cell(summary[0]), *(cell(v) for v in summary[1])]}
    out["type"] = "Section"
    if group:
        out["group"] = group
    return out


def money_columns(params: Params, first: str = "Account") -> list[dict[str, Any]]:
    columns: list[dict[str, Any]] = [
        {"ColTitle": "", "ColType": first, "MetaData": [{"Name": "ColKey", "Value": first}]}
    ]
    for period in params.periods():
        key = "total" if period.title == "Total" else period.start.isoformat()
        columns.append(
            {
                "ColTitle": period.title,
                "ColType": "Money",
                "MetaData": [
                    {"Name": "StartDate", "Value": period.start.isoformat()},
                    {"Name": "EndDate", "Value": period.end.isoformat()},
                    {"Name": "ColKey", "Value": key},
                ],
            }
        )
    return columns


def plain_columns(titles: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """(title, type, key) per column."""
    return [
        {"ColTitle": title, "ColType": kind, "MetaData": [{"Name": "ColKey", "Value": key}]}
        for title, kind, key in titles
    ]


def has_data(rows: list[Row]) -> bool:
    for row in rows:
        if row.get("type") == "Data" or has_data((row.get("Rows") or {}).get("Row", [])):
            return True
    return False


def header(params: Params, time: str, *, as_of: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Time": time,
        "ReportName": params.name,
        "ReportBasis": params.basis,
        "StartPeriod": (params.report_date if as_of else params.start).isoformat(),
        "EndPeriod": (params.report_date if as_of else params.end).isoformat(),
        "SummarizeColumnsBy": params.summarize,
        "Currency": "USD",
    }
    names = {"customer": "Customer", "vendor": "Vendor", "item": "Item", "class": "Class"}
    for key, value in params.echoes:
        out[names.get(key, key)] = value
    return out


def display_name(doc: Doc) -> str:
    return str(doc.get("DisplayName") or doc.get("FullyQualifiedName") or doc.get("Name") or "")

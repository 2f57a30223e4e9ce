"""Reports answered from cache (pure): which reports and parameters, the canonical key of a
request, whether its answer depends on the company's calendar day, and what may be stored.

Data, not code: a report is a catalog entry (known parameters, the defaults qbo-api.md
confirms, the date parameters that pin its period). Anything not in the catalog is
forwarded (design.md, promise 5). A key is the report name and its parameters, sorted;
values compare exactly as sent (case included): when unsure, distinct keys, which is
always safe.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

import orjson

# Never part of a key: minorversion (every request is served as 75 since 2025-08-01,
# qbo-api.md), requestid (idempotency of writes). `format` only when it says json
# (node-quickbooks' habit); any other format is another representation: forwarded.
IGNORED = frozenset({"minorversion", "requestid"})
# Longer keys are forwarded (a btree entry is bounded; no real client sends such lists).
MAX_KEY_CHARS = 1024
# The company day is judged this long ahead as well: the proxy's clock may lag Intuit's,
# so a day-dependent answer stops being served a minute before the company's midnight.
DAY_SKEW_SECONDS = 60.0

FYTD = "This Fiscal Year-to-date"
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")

_PERIOD = frozenset({"start_date", "end_date"})
_AS_OF = frozenset({"report_date"})
_BY = frozenset({"customer", "vendor", "item", "class", "department"})
_AGING = frozenset(
    {
        "report_date",
        "date_macro",
        "aging_period",
        "num_periods",
        "aging_method",
        "past_due",
        "columns",
        "sort_order",
        "term",
        # Undocumented, sent by Intuit's MCP server for aging reports (qbo-api.md): keyed
        # as sent, never taken for aging_period.
        "days_per_aging_period",
    }
)


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    params: frozenset[str]  # known parameters; any other is forwarded
    # Parameters whose documented default qbo-api.md confirms for this report: given at
    # exactly this value, keyed as absent.
    defaults: Mapping[str, str] = field(default_factory=dict)
    # Date parameters that, all given as dates (and no *_macro), make the answer
    # independent of the day. None: always day-dependent (when unsure, it is).
    anchors: frozenset[str] | None = _PERIOD


def _period(name: str, params: frozenset[str], fytd: bool = False) -> Report:
    defaults = {"summarize_column_by": "Total", "sort_order": "ascend"}
    if fytd:
        defaults["date_macro"] = FYTD
    known = params | {"date_macro", "sort_order"} | _PERIOD
    return Report(name, known, {k: v for k, v in defaults.items() if k in known})


# The 12 reports Intuit's MCP server calls (qbo-api.md, "Who reads what"), with the
# parameters Intuit's API reference lists for each.
REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        _period(
            "BalanceSheet",
            _BY | {"accounting_method", "summarize_column_by", "adjusted_gain_loss", "qzurl"},
            fytd=True,
        ),
        _period(
            "ProfitAndLoss",
            _BY | {"accounting_method", "summarize_column_by", "adjusted_gain_loss", "qzurl"},
            fytd=True,
        ),
        _period("CashFlow", _BY | {"accounting_method", "summarize_column_by"}),
        _period("TrialBalance", frozenset({"accounting_method", "summarize_column_by"})),
        _period(
            "GeneralLedger",
            _BY
            | {
                "accounting_method",
                "summarize_column_by",
                "account",
                "account_type",
                "source_account",
                "sort_by",
                "columns",
            },
            fytd=True,
        ),
        _period("CustomerSales", _BY | {"accounting_method", "summarize_column_by", "qzurl"}),
        _period(
            "VendorExpenses",
            frozenset({"customer", "vendor", "class", "department"})
            | {"accounting_method", "summarize_column_by"},
        ),
        _period(
            "TransactionList",
            frozenset(
                {
                    "customer",
                    "vendor",
                    "department",
                    "accounting_method",
                    "payment_method",
                    "duedate_macro",
                    "arpaid",
                    "appaid",
                    "bothamount",
                    "transaction_type",
                    "docnum",
                    "start_moddate",
                    "end_moddate",
                    "moddate_macro",
                    "start_duedate",
                    "end_duedate",
                    "start_createdate",
                    "end_createdate",
                    "createdate_macro",
                    "source_account_type",
                    "group_by",
                    "columns",
                    "memo",
                    "printed",
                    "cleared",
                    "term",
                    "name",
                    "sort_by",
                    "qzurl",
                }
            ),
        ),
        Report(
            "CustomerBalance",
            frozenset(
                {
                    "customer",
                    "department",
                    "accounting_method",
                    "date_macro",
                    "arpaid",
                    "report_date",
                    "sort_order",
                    "summarize_column_by",
                }
            ),
            {"summarize_column_by": "Total", "sort_order": "ascend"},
            _AS_OF,
        ),
        # qbo-api.md names a date_macro default for AgedReceivables: its period may be
        # relative even with report_date given, so it is always day-dependent.
        Report(
            "AgedReceivables",
            _AGING | {"customer", "department", "shipvia", "start_duedate", "end_duedate"},
            {"date_macro": FYTD, "sort_order": "ascend"},
            None,
        ),
        # The aging defaults (aging_period 30, num_periods 4, aging_method Report_Date) are
        # documented for the aging *detail* reports only; elsewhere unsure: kept distinct.
        Report(
            "AgedReceivableDetail",
            _AGING
            | {
                "customer",
                "department",
                "shipvia",
                "start_duedate",
                "end_duedate",
                "sort_by",
                "group_by",
                "custom1",
                "custom2",
                "custom3",
            },
            {
                "aging_period": "30",
                "num_periods": "4",
                "aging_method": "Report_Date",
                "sort_order": "ascend",
            },
            _AS_OF,
        ),
        Report("AgedPayables", _AGING | {"vendor", "department"}, {"sort_order": "ascend"}, _AS_OF),
    )
}

# Bounded metric and log labels: the catalog's names only.
NAMES = frozenset(REPORTS)


@dataclass(frozen=True, slots=True)
class ReportKey:
    name: str
    params: tuple[tuple[str, str], ...]  # canonical: sorted, ignored and defaults dropped
    day_dependent: bool

    @property
    def text(self) -> str:
        """The stored key: name and canonical parameters as one query string."""
        return f"{self.name}?{urlencode(self.params)}" if self.params else self.name


def report_key(name: str, query_string: str) -> ReportKey | None:
    """The canonical key of `GET reports/{name}?{query_string}`, or None (forward): an
    unknown report or parameter, a repeated parameter, a format other than json."""
    report = REPORTS.get(name)
    if report is None:
        return None
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        return None
    seen: set[str] = set()
    kept: dict[str, str] = {}
    for key, value in pairs:
        if key in seen:
            return None  # which one Intuit takes is unknown
        seen.add(key)
        if key in IGNORED or (key == "format" and value == "json"):
            continue
        if key not in report.params:
            return None
        if report.defaults.get(key) != value:
            kept[key] = value
    params = tuple(sorted(kept.items()))
    key_ = ReportKey(name, params, day_dependent(report, kept))
    return key_ if len(key_.text) <= MAX_KEY_CHARS else None


def day_dependent(report: Report, params: Mapping[str, str]) -> bool:
    """Whether the answer can change with the company's calendar day: a relative period
    (any *_macro, a missing date range or report_date, a value that is not a date)."""
    if report.anchors is None or any(k.endswith("_macro") for k in params):
        return True
    return not all(_is_date(params.get(anchor)) for anchor in report.anchors)


def _is_date(value: str | None) -> bool:
    if value is None or not _ISO_DATE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


# --- answers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompanyDay:
    """The company's calendar day an answer was computed on, and its UTC offset then."""

    day: dt.date
    utc_offset_seconds: int


@dataclass(frozen=True, slots=True)
class Storable:
    """A report answer that may be stored; `day`: the company day it was computed on,
    kept with a day-dependent entry (None for one that does not depend on the day)."""

    day: CompanyDay | None


def storable(key: ReportKey, status: int, body: bytes, max_bytes: int) -> Storable | None:
    """Only a 200 whose body is a JSON object with Header, Columns and Rows, within
    `max_bytes`, is stored; a day-dependent one only when `Header.Time` tells the company's
    day (it carries the company's offset, e.g. 2016-03-03T13:00:18-08:00). Anything else
    is relayed untouched and not stored."""
    if status != 200 or len(body) > max_bytes:
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not {"Header", "Columns", "Rows"} <= doc.keys():
        return None
    header = doc["Header"]
    if not isinstance(header, dict):
        return None
    if not key.day_dependent:
        return Storable(None)
    day = company_day(header.get("Time"))
    return None if day is None else Storable(day)


def company_day(text: object) -> CompanyDay | None:
    if not isinstance(text, str):
        return None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    offset = at.utcoffset()
    if offset is None:
        return None  # no offset: the company's day cannot be told
    return CompanyDay(at.date(), int(offset.total_seconds()))


def same_company_day(day: CompanyDay, now: dt.datetime) -> bool:
    """`now` (aware) is still `day` in the company's offset, and will be for
    DAY_SKEW_SECONDS more (our clock may lag Intuit's)."""
    tz = dt.timezone(dt.timedelta(seconds=day.utc_offset_seconds))
    later = now + dt.timedelta(seconds=DAY_SKEW_SECONDS)
    return now.astimezone(tz).date() == day.day == later.astimezone(tz).date()

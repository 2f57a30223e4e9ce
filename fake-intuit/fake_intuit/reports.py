"""Reports computed from the realm's current data (so a write changes them): the financial
statements here (ProfitAndLoss, BalanceSheet, TrialBalance, CashFlow, GeneralLedger,
TransactionList), the customer and vendor ones in `report_parties`.

Everything is read off `ledger.postings` (double entry), so TrialBalance debits equal
credits and BalanceSheet assets equal liabilities plus equity (Retained Earnings carries the
profit of earlier fiscal years, Net Income the current one's up to the column's end).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from multidict import MultiMapping

from fake_intuit import report_parties
from fake_intuit.catalog import SPECS
from fake_intuit.data import Doc, RealmData, money, ref_value
from fake_intuit.ledger import Posting, postings
from fake_intuit.report_base import (
    Params,
    Row,
    data_row,
    has_data,
    header,
    money_columns,
    parse_params,
    plain_columns,
    section,
)

ZERO = Decimal(0)
RETAINED = "11"
# (group, title, account types) of the profit and loss, in Intuit's order.
PL_GROUPS = (
    ("Income", "Income", ("Income",)),
    ("COGS", "Cost of Goods Sold", ("Cost of Goods Sold",)),
    ("Expenses", "Expenses", ("Expense",)),
    ("OtherIncome", "Other Income", ("Other Income",)),
    ("OtherExpenses", "Other Expenses", ("Other Expense",)),
)
ASSET_GROUPS = (
    ("BankAccounts", "Bank Accounts", ("Bank",)),
    ("AR", "Accounts Receivable", ("Accounts Receivable",)),
    ("OtherCurrentAssets", "Other Current Assets", ("Other Current Asset",)),
    ("FixedAssets", "Fixed Assets", ("Fixed Asset",)),
    ("OtherAssets", "Other Assets", ("Other Asset",)),
)
LIABILITY_GROUPS = (
    ("AP", "Accounts Payable", ("Accounts Payable",)),
    ("CreditCards", "Credit Cards", ("Credit Card",)),
    ("OtherCurrentLiabilities", "Other Current Liabilities", ("Other Current Liability",)),
    ("LongTermLiabilities", "Long-Term Liabilities", ("Long Term Liability",)),
)


class Books:
    """The realm's postings and accounts, with sums over dates and accounts."""

    def __init__(self, data: RealmData, params: Params) -> None:
        self.data, self.params = data, params
        self.accounts = data.docs["Account"]
        self.legs = postings(data, params.basis)

    def type_of(self, account: str) -> str:
        return str(self.accounts.get(account, {}).get("AccountType", ""))

    def credit_normal(self, account: str) -> bool:
        cls = self.accounts.get(account, {}).get("Classification")
        return cls in ("Liability", "Equity", "Revenue")

    def legs_of(self, name_filter: bool = True) -> list[Posting]:
        p = self.params
        if not name_filter or (p.customers is None and p.vendors is None):
            return self.legs
        wanted = {("Customer", c) for c in p.customers or ()}
        wanted |= {("Vendor", v) for v in p.vendors or ()}
        return [leg for leg in self.legs if leg.name and leg.name[:2] in wanted]

    def sums(
        self, start: dt.date | None, end: dt.date, legs: list[Posting] | None = None
    ) -> dict[str, Decimal]:
        """Debit-positive sums per account of legs dated in [start, end]."""
        out: dict[str, Decimal] = defaultdict(Decimal)
        low, high = (start.isoformat() if start else ""), end.isoformat()
        for leg in self.legs if legs is None else legs:
            if low <= leg.date <= high:
                out[leg.account] += leg.amount
        return out

    def pl_net(self, start: dt.date | None, end: dt.date) -> Decimal:
        """Net income (credit positive) of the P&L accounts in [start, end]."""
        sums = self.sums(start, end)
        return -sum(
            (
                v
                for a, v in sums.items()
                if self.accounts.get(a, {}).get("Classification") in ("Revenue", "Expense")
            ),
            ZERO,
        )

    def balances_at(self, end: dt.date) -> dict[str, Decimal]:
        """Balance-sheet accounts as of `end` (natural sign), Retained Earnings including
        earlier fiscal years' profit."""
        fy = self.params.fiscal_year_start(end)
        sums = self.sums(None, end)
        out = {}
        for account, value in sums.items():
            if self.accounts.get(account, {}).get("Classification") in (
                "Asset",
                "Liability",
                "Equity",
            ):
                out[account] = -value if self.credit_normal(account) else value
        out[RETAINED] = out.get(RETAINED, ZERO) + self.pl_net(None, fy - dt.timedelta(days=1))
        return out

    def label(self, account: str) -> str:
        return str(self.accounts.get(account, {}).get("FullyQualifiedName", account))

    def ordered(self, types: tuple[str, ...]) -> list[str]:
        return [
            a
            for a in sorted(self.accounts, key=lambda a: self.label(a).lower())
            if self.type_of(a) in types
        ]


def _group_rows(
    books: Books, types: tuple[str, ...], columns: list[dict[str, Decimal]]
) -> tuple[list[Row], list[Decimal]]:
    rows, totals = [], [ZERO] * len(columns)
    for account in books.ordered(types):
        values = [col.get(account, ZERO) for col in columns]
        if any(values):
            rows.append(data_row(books.label(account), values, account))
            totals = [t + v for t, v in zip(totals, values, strict=True)]
    return rows, totals


def profit_and_loss(books: Books, params: Params) -> list[Row]:
    legs = books.legs_of()
    columns = []
    for period in params.periods():
        sums = books.sums(period.start, period.end, legs)
        columns.append({a: (-v if books.credit_normal(a) else v) for a, v in sums.items()})
    width = len(columns)
    out, totals = [], {}
    for group, title, types in PL_GROUPS:
        rows, total = _group_rows(books, types, columns)
        totals[group] = total
        out.append(section(title, rows, (f"Total {title}", total), group, width))
        if group == "COGS":
            gross = [i - c for i, c in zip(totals["Income"], total, strict=True)]
            out.append(section(None, [], ("Gross Profit", gross), "GrossProfit"))
        if group == "Expenses":
            net_op = [g - e for g, e in zip(gross, total, strict=True)]
            out.append(section(None, [], ("Net Operating Income", net_op), "NetOperatingIncome"))
    net_other = [i - e for i, e in zip(totals["OtherIncome"], totals["OtherExpenses"], strict=True)]
    out.append(section(None, [], ("Net Other Income", net_other), "NetOtherIncome"))
    net = [a + b for a, b in zip(net_op, net_other, strict=True)]
    out.append(section(None, [], ("Net Income", net), "NetIncome"))
    return out


def balance_sheet(books: Books, params: Params) -> list[Row]:
    periods = params.periods()
    columns = [books.balances_at(p.end) for p in periods]
    net_income = [books.pl_net(params.fiscal_year_start(p.end), p.end) for p in periods]
    width = len(columns)

    def groups(
        spec: tuple[tuple[str, str, tuple[str, ...]], ...],
    ) -> tuple[list[Row], list[Decimal]]:
        rows, totals = [], [ZERO] * width
        for group, title, types in spec:
            inner, total = _group_rows(books, types, columns)
            if inner:
                rows.append(section(title, inner, (f"Total {title}", total), group, width))
                totals = [t + v for t, v in zip(totals, total, strict=True)]
        return rows, totals

    assets, total_assets = groups(ASSET_GROUPS)
    liabilities, total_liabilities = groups(LIABILITY_GROUPS)
    equity_rows, equity = _group_rows(books, ("Equity",), columns)
    equity_rows.append(data_row("Net Income", net_income))
    equity = [e + n for e, n in zip(equity, net_income, strict=True)]
    both = [a + b for a, b in zip(total_liabilities, equity, strict=True)]
    return [
        section("ASSETS", assets, ("TOTAL ASSETS", total_assets), "TotalAssets", width),
        section(
            "LIABILITIES AND EQUITY",
            [
                section(
                    "Liabilities",
                    liabilities,
                    ("Total Liabilities", total_liabilities),
                    "Liabilities",
                    width,
                ),
                section("Equity", equity_rows, ("Total Equity", equity), "Equity", width),
            ],
            ("TOTAL LIABILITIES AND EQUITY", both),
            "TotalLiabilitiesAndEquity",
            width,
        ),
    ]


def trial_balance(books: Books, params: Params) -> list[Row]:
    end = params.end
    fy = params.fiscal_year_start(end)
    balance = books.balances_at(end)
    net: dict[str, Decimal] = {}
    for account, value in balance.items():  # back to debit-positive
        net[account] = -value if books.credit_normal(account) else value
    for account, value in books.sums(fy, end).items():
        if books.accounts.get(account, {}).get("Classification") in ("Revenue", "Expense"):
            net[account] = value
    rows, debits, credits = [], ZERO, ZERO
    for account in sorted(net, key=lambda a: books.label(a).lower()):
        value = net[account]
        if value == 0:
            continue
        debit, credit = (value, "") if value > 0 else ("", -value)
        debits += value if value > 0 else ZERO
        credits += -value if value < 0 else ZERO
        rows.append(data_row(books.label(account), [debit, credit], account))
    return [*rows, section(None, [], ("TOTAL", [debits, credits]), "GrandTotal")]


def cash_flow(books: Books, params: Params) -> list[Row]:
    start, end = params.start, params.end
    changes = books.sums(start, end)
    kinds = {
        "OperatingAdjustments": (
            "Accounts Receivable",
            "Other Current Asset",
            "Accounts Payable",
            "Credit Card",
            "Other Current Liability",
        ),
        "InvestingActivities": ("Fixed Asset", "Other Asset"),
        "FinancingActivities": ("Long Term Liability", "Equity"),
    }
    net_income = books.pl_net(start, end)
    parts: dict[str, tuple[list[Row], Decimal]] = {}
    for group, types in kinds.items():
        rows, total = [], ZERO
        for account in books.ordered(types):
            value = -changes.get(account, ZERO)  # an asset that grows uses cash
            if value:
                rows.append(data_row(books.label(account), [value], account))
                total += value
        parts[group] = (rows, total)
    adjust_rows, adjust = parts["OperatingAdjustments"]
    operating = net_income + adjust
    invest_rows, investing = parts["InvestingActivities"]
    finance_rows, financing = parts["FinancingActivities"]
    banks = books.ordered(("Bank",))
    before = books.sums(None, start - dt.timedelta(days=1))
    begin_cash = sum((before.get(a, ZERO) for a in banks), ZERO)
    increase = operating + investing + financing
    return [
        section(
            "OPERATING ACTIVITIES",
            [
                data_row("Net Income", [net_income]),
                section(
                    "Adjustments to reconcile Net Income to Net Cash provided by operations:",
                    adjust_rows,
                    ("Total Adjustments", [adjust]),
                    "OperatingAdjustments",
                ),
            ],
            ("Net cash provided by operating activities", [operating]),
            "OperatingActivities",
        ),
        section(
            "INVESTING ACTIVITIES",
            invest_rows,
            ("Net cash provided by investing activities", [investing]),
            "InvestingActivities",
        ),
        section(
            "FINANCING ACTIVITIES",
            finance_rows,
            ("Net cash provided by financing activities", [financing]),
            "FinancingActivities",
        ),
        section(None, [], ("NET CASH INCREASE FOR PERIOD", [increase]), "CashIncrease"),
        section(None, [], ("Cash at beginning of period", [begin_cash]), "BeginningCash"),
        section(None, [], ("CASH AT END OF PERIOD", [begin_cash + increase]), "EndingCash"),
    ]


def _txn_cells(leg: Posting) -> list[Any]:
    name = leg.name[2] if leg.name else ""
    return [leg.date, leg.entity, leg.doc_number, name, leg.memo]


def general_ledger(books: Books, params: Params) -> list[Row]:
    legs = books.legs_of()
    before = books.sums(None, params.start - dt.timedelta(days=1), legs)
    low, high = params.start.isoformat(), params.end.isoformat()
    by_account: dict[str, list[Posting]] = defaultdict(list)
    for leg in legs:
        if low <= leg.date <= high:
            by_account[leg.account].append(leg)
    out = []
    for account in sorted(books.accounts, key=lambda a: books.label(a).lower()):
        sign = -1 if books.credit_normal(account) else 1
        balance_sheet = books.accounts[account].get("Classification") in (
            "Asset",
            "Liability",
            "Equity",
        )
        running = sign * before.get(account, ZERO) if balance_sheet else ZERO
        if not by_account[account] and not running:
            continue
        rows = [data_row("Beginning Balance", ["", "", "", "", "", running])]
        for leg in sorted(by_account[account], key=lambda g: (g.date, int(g.txn))):
            value = sign * leg.amount
            running += value
            cells = _txn_cells(leg)
            row = data_row(cells[0], [*cells[1:], value, running])
            row["ColData"][1]["id"] = leg.txn
            rows.append(row)
        total = sum((sign * g.amount for g in by_account[account]), ZERO)
        label = books.label(account)
        out.append(
            section(label, rows, (f"Total for {label}", ["", "", "", "", total, running]), width=7)
            | {"Header": {"ColData": [{"value": label, "id": account}]}}
        )
    return out


def transaction_list(books: Books, params: Params) -> list[Row]:
    data, p = books.data, params
    first_leg: dict[tuple[str, str], Posting] = {}
    for one in books.legs:
        first_leg.setdefault((one.entity, one.txn), one)
    low, high = p.start.isoformat(), p.end.isoformat()
    found: list[tuple[str, int, Row]] = []
    for entity, spec in SPECS.items():
        if spec.family != "txn":
            continue
        for doc in data.docs[entity].values():
            date = str(doc.get("TxnDate", ""))
            if not low <= date <= high or not _wanted(doc, p):
                continue
            leg = first_leg.get((entity, doc["Id"]))
            account = books.label(leg.account) if leg else ""
            name = _name(doc)
            value = money(doc.get("TotalAmt", doc.get("Amount", 0)) or 0)
            cells = [
                entity,
                str(doc.get("DocNumber", "")),
                "Yes" if leg else "No",
                name,
                str(doc.get("PrivateNote", "")),
                account,
                value,
            ]
            row = data_row(date, cells)
            row["ColData"][1]["id"] = doc["Id"]
            found.append((date, int(doc["Id"]), row))
    return [row for _, _, row in sorted(found, key=lambda t: t[:2])]


def _name(doc: Doc) -> str:
    for key in ("CustomerRef", "VendorRef", "EntityRef", "EmployeeRef"):
        ref = doc.get(key)
        if isinstance(ref, dict):
            return str(ref.get("name", ""))
    return ""


def _wanted(doc: Doc, p: Params) -> bool:
    if p.customers is not None and ref_value(doc, "CustomerRef") not in p.customers:
        return False
    return (
        p.vendors is None
        or (ref_value(doc, "VendorRef") or ref_value(doc, "EntityRef")) in p.vendors
    )


Builder = Callable[[Books, Params], list[Row]]
FINANCIAL: dict[str, tuple[Builder, Callable[[Params], list[dict[str, Any]]]]] = {
    "ProfitAndLoss": (profit_and_loss, money_columns),
    "BalanceSheet": (balance_sheet, money_columns),
    "TrialBalance": (
        trial_balance,
        lambda p: plain_columns(
            (
                ("", "Account", "account"),
                ("Debit", "Money", "debt_amt"),
                ("Credit", "Money", "credit_amt"),
            )
        ),
    ),
    "CashFlow": (cash_flow, money_columns),
    "GeneralLedger": (
        general_ledger,
        lambda p: plain_columns(
            (
                ("Date", "Date", "tx_date"),
                ("Transaction Type", "String", "txn_type"),
                ("Num", "String", "doc_num"),
                ("Name", "String", "name"),
                ("Memo/Description", "String", "memo"),
                ("Amount", "Money", "subt_nat_amount"),
                ("Balance", "Money", "rbal_nat_amount"),
            )
        ),
    ),
    "TransactionList": (
        transaction_list,
        lambda p: plain_columns(
            (
                ("Date", "Date", "tx_date"),
                ("Transaction Type", "String", "txn_type"),
                ("Num", "String", "doc_num"),
                ("Posting", "Boolean", "is_no_post"),
                ("Name", "String", "name"),
                ("Memo/Description", "String", "memo"),
                ("Account", "String", "account_name"),
                ("Amount", "Money", "subt_nat_amount"),
            )
        ),
    ),
}


def build(
    data: RealmData, name: str, q: MultiMapping[str], today: dt.date, time: str
) -> dict[str, Any]:
    """The report `name` as Intuit's JSON (Header, Columns, Rows)."""
    params = parse_params(name, data, today, q)
    if name == "CashFlow" or name not in (
        "ProfitAndLoss",
        "BalanceSheet",
        *report_parties.BY_PERIOD,
    ):
        params = dataclasses.replace(params, summarize="Total")
    as_of = False
    if name in FINANCIAL:
        builder, columns_of = FINANCIAL[name]
        rows = builder(Books(data, params), params)
        columns = columns_of(params)
    elif name in report_parties.REPORTS:
        rows, columns, as_of = report_parties.REPORTS[name](data, params)
    else:
        rows, columns = [], money_columns(params)
    head = header(params, time, as_of=as_of)
    head["Option"] = [{"Name": "NoReportData", "Value": "false" if has_data(rows) else "true"}]
    if as_of:
        head["Option"].insert(0, {"Name": "report_date", "Value": params.report_date.isoformat()})
    return {"Header": head, "Columns": {"Column": columns}, "Rows": {"Row": rows}}

"""qbql lexer and parser: tokens, syntax trees, syntax errors and `render`."""

from __future__ import annotations

import pytest

from qbproxy.core.qbql import Query, Unsupported, parse, render
from qbproxy.core.qbql.ast import Bool, Comparison, In, Number, OrderKey, String
from qbproxy.core.qbql.lexer import tokenize


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("SELECT * FROM x", [("word", "SELECT"), ("symbol", "*"), ("word", "FROM"), ("word", "x")]),
        ("a<=b>=c<d>e=f", [("word", "a"), ("symbol", "<="), ("word", "b"), ("symbol", ">=")]),
        ("MetaData.CreateTime", [("word", "MetaData.CreateTime")]),
        ("-12.50 7", [("number", "-12.50"), ("number", "7")]),
        (r"'O\'Brien'", [("string", "O'Brien")]),
        (r"'a\\b'", [("string", "a\\b")]),
        (r"'\\\''", [("string", "\\'")]),
        ("''", [("string", "")]),
        ("'ü\nß'", [("string", "ü\nß")]),
        ("\t(\r\n,\n)", [("symbol", "("), ("symbol", ","), ("symbol", ")")]),
    ],
)
def test_tokens(text: str, tokens: list[tuple[str, str]]) -> None:
    got = [(t.kind, t.text) for t in tokenize(text)]
    assert got[: len(tokens)] == tokens
    assert got[-1] == ("end", "")


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("SELECT * FROM Customer", Query("Customer")),
        ("select count(*) from invoice", Query("invoice", select="count")),
        ("SELECT COUNT ( * ) FROM Invoice", Query("Invoice", select="count")),
        ("SELECT Id, DisplayName FROM Customer", Query("Customer", select=("Id", "DisplayName"))),
        ("SELECT *, Sku FROM Item", Query("Item", select=("*", "Sku"))),  # python-quickbooks
        ("select id,MetaData.CreateTime from x", Query("x", select=("id", "MetaData.CreateTime"))),
        (
            r"SELECT * FROM Customer WHERE DisplayName = 'O\'Brien' AND Balance > 0",
            Query(
                "Customer",
                where=(
                    Comparison("DisplayName", "=", String("O'Brien")),
                    Comparison("Balance", ">", Number("0")),
                ),
            ),
        ),
        (
            "SELECT * FROM Customer WHERE Active IN (true, FALSE) AND x LIKE '%a'",
            Query(
                "Customer",
                where=(
                    In("Active", (Bool(True), Bool(False))),
                    Comparison("x", "LIKE", String("%a")),
                ),
            ),
        ),
        (
            "SELECT * FROM Invoice WHERE a < '1' AND b <= -1.5 AND c >= 2 AND d = 'x'",
            Query(
                "Invoice",
                where=(
                    Comparison("a", "<", String("1")),
                    Comparison("b", "<=", Number("-1.5")),
                    Comparison("c", ">=", Number("2")),
                    Comparison("d", "=", String("x")),
                ),
            ),
        ),
        (
            "SELECT * FROM Invoice ORDER BY TxnDate DESC, Id asc",
            Query("Invoice", order_by=(OrderKey("TxnDate", True), OrderKey("Id", False))),
        ),
        (
            "SELECT * FROM Invoice ORDERBY TxnDate MAXRESULTS 10 STARTPOSITION 3",
            Query("Invoice", order_by=(OrderKey("TxnDate"),), start_position=3, max_results=10),
        ),
        # Semantics are the planner's: the parser keeps what it cannot judge.
        ("SELECT * FROM Vendor MAXRESULTS 0", Query("Vendor", max_results=0)),
        (
            "SELECT * FROM x WHERE Metadata.y = ' '",
            Query("x", where=(Comparison("Metadata.y", "=", String(" ")),)),
        ),
    ],
)
def test_parse(text: str, query: Query) -> None:
    assert parse(text) == query


# Syntax errors (the planner's refusals are in test_qbql_plan.py); each with why.
SYNTAX_ERRORS = [
    "",  # empty
    "SELECT * FROM",  # no entity
    "SELECT * FROM FROM",  # keyword as entity
    "SELECT FROM Customer",  # no selection
    "SELECT * FROM Customer WHERE In = '1'",  # keyword as field
    "SELECT * FROM Customer WHERE a = 'x' OR b = 'y'",  # OR
    "SELECT * FROM Customer WHERE a != 'x'",  # !=
    "SELECT * FROM Customer WHERE a = 'x';",  # semicolon
    "SELECT * FROM Customer WHERE a = 'x",  # unterminated string
    r"SELECT * FROM Customer WHERE a = 'x\t'",  # unknown escape
    "SELECT * FROM Customer WHERE a = 1e3",  # exponent
    "SELECT * FROM Customer WHERE a = 1.",  # dangling point
    "SELECT * FROM Customer WHERE a. = 1",  # dangling dot in a name
    "SELECT * FROM Customer WHERE a = null",  # null
    "SELECT * FROM Customer WHERE a IN ()",  # empty list
    "SELECT * FROM Customer ORDER DisplayName",  # ORDER without BY
    "SELECT * FROM Customer MAXRESULTS 1 MAXRESULTS 2",  # duplicate
    "SELECT * FROM Customer MAXRESULTS -1",  # negative
    "SELECT * FROM Customer MAXRESULTS 1234567890123456789",  # too many digits
    "SELECT * FROM Customer x",  # trailing garbage
    "SELECT * FROM Customer WHERE a = ‘x’",  # typographic quotes
]


@pytest.mark.parametrize("text", SYNTAX_ERRORS)
def test_syntax_errors(text: str) -> None:
    result = parse(text)
    assert isinstance(result, Unsupported), result
    assert result.reason


@pytest.mark.parametrize(
    ("query", "text"),
    [
        (Query("Customer"), "SELECT * FROM Customer"),
        (Query("Invoice", select="count"), "SELECT COUNT(*) FROM Invoice"),
        (Query("Invoice", select=("Id", "DocNumber")), "SELECT Id, DocNumber FROM Invoice"),
        (
            Query(
                "Customer",
                where=(
                    Comparison("DisplayName", "LIKE", String("O'B\\%")),
                    In("Id", (String("1"), Number("2"))),
                    Comparison("Active", "=", Bool(False)),
                ),
                order_by=(OrderKey("Balance", True),),
                start_position=1,
                max_results=10,
            ),
            r"SELECT * FROM Customer WHERE DisplayName LIKE 'O\'B\\%' AND Id IN ('1', 2)"
            " AND Active = false ORDERBY Balance DESC STARTPOSITION 1 MAXRESULTS 10",
        ),
    ],
)
def test_render(query: Query, text: str) -> None:
    assert render(query) == text
    assert parse(text) == query

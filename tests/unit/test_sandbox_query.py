"""The fake Intuit's own query evaluator on hand-made documents (no HTTP)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fake_intuit.query import QueryError, parse, select, tokenize

TZ = dt.timezone(dt.timedelta(hours=-7))


def customer(id_: str, name: str | None, active: bool = True, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"Id": id_, "Active": active, "Balance": 0, **extra}
    if name is not None:
        doc["CompanyName"] = doc["DisplayName"] = name
    doc.setdefault("MetaData", {"LastUpdatedTime": "2024-05-01T10:00:00-07:00"})
    return doc


DOCS = [
    customer("10", "beta"),
    customer("2", "Alpha"),
    customer("33", None),
    customer("4", "O'Neil", Balance=12.5),
    customer("5", "alpha", active=False),
    customer("6", "100%_sure", MetaData={"LastUpdatedTime": "2024-05-01T18:00:00-07:00"}),
]


def run(text: str) -> Any:
    page = select(parse(text, TZ), DOCS)
    if "Customer" in page:
        return [d["Id"] for d in page["Customer"]]
    return page


def test_tokenizer_unescapes_quotes_and_backslashes() -> None:
    assert tokenize(r"'O\'Neil \\ x'")[0] == ("string", "O'Neil \\ x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("select * from Customer", ["2", "4", "6", "10", "33"]),
        ("select * from Customer where DisplayName = 'ALPHA'", ["2"]),
        ("select * from Customer where DisplayName = 'alpha' and Active = false", ["5"]),
        ("select * from Customer where DisplayName = 'o\\'neil'", ["4"]),
        ("select * from Customer where DisplayName like '100%'", ["6"]),
        ("select * from Customer where DisplayName like '1_0%'", []),
        ("select * from Customer where DisplayName < 'b'", ["2", "6"]),
        ("select * from Customer where CompanyName = ' '", ["33"]),
        ("select * from Customer where Balance = '12.50'", ["4"]),
        ("select * from Customer order by DisplayName", ["6", "2", "10", "4", "33"]),
        ("select * from Customer ORDERBY DisplayName DESC", ["33", "4", "10", "2", "6"]),
        (
            "select * from Customer where Active in (true, false) orderby DisplayName",
            ["6", "2", "5", "10", "4", "33"],
        ),
        # A literal without offset is read in the company's offset (-07:00).
        ("select * from Customer where MetaData.LastUpdatedTime > '2024-05-01T12:00:00'", ["6"]),
        ("select * from Customer where Metadata.LastUpdatedTime > '2024-05-01T20:00:00Z'", ["6"]),
        ("select * from Customer maxresults 2 startposition 2", ["4", "6"]),
        ("select count(*) from Customer maxresults 1", {"totalCount": 5}),
        ("select * from Customer where Id = '999'", {}),
    ],
)
def test_semantics(text: str, expected: Any) -> None:
    assert run(text) == (expected or {})


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("select * from Customer startposition 1 startposition 2", "4000"),
        ("select * from Customer where Active > true", "4001"),
        ("select * from Customer where Active = maybe", "4000"),
        ("select * from Customer where Id = 'abc'", "4000"),
        ("select * from Customer where DisplayName between 'a' and 'b'", "4000"),
        ("select * from Customer order DisplayName", "4000"),
        ("select * from Customer;", "4000"),
        ("select * from Customer maxresults 0", "4001"),
        ("select * from Customer order by Notes", "4001"),
    ],
)
def test_refused(text: str, code: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(text, TZ)
    assert info.value.code == code

"""qbql plans against a real Postgres: every corpus plan is valid SQL with the right argument
types, and the decided semantics (case, LIKE escaping, order, NULLs, paging) hold on data.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from qbproxy.core.qbql import Plan, compile_query

# asyncpg ships no type information.
asyncpg: Any = importlib.import_module("asyncpg")

ROOT = Path(__file__).resolve().parents[2]
REALM = "123"


def _supported_corpus() -> list[Any]:
    spec = importlib.util.spec_from_file_location(
        "qbql_plan_corpus", ROOT / "tests" / "unit" / "test_qbql_plan.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return list(module.SUPPORTED)


@pytest.fixture
async def conn(pg_dsn: str) -> AsyncIterator[Any]:
    """A connection to a fresh, migrated database (tests/conftest.py), seeded."""
    db = await asyncpg.connect(pg_dsn)
    try:
        await _seed(db)
        yield db
    finally:
        await db.close()


CUSTOMERS = [
    # id, display_name, active, balance, last_updated_time
    (1, "Acme", True, "10.00", "2024-06-01T00:00:00-07:00"),
    (2, "acme", True, "0", None),
    (3, "Zed", False, "5", None),
    (4, "a_c", True, None, None),
    (5, "abc", True, "100", None),
    (6, None, True, "1", None),
    (7, "O'Brien", True, "2", None),
    (8, "back\\slash", True, "3", None),
    (9, "Émile", True, "4", None),
    (10, "B", True, "5", None),
]
INVOICES = [
    # id, customer_ref, txn_date
    (1, "1", "2024-01-15"),
    (2, "2", "2023-12-31"),
    (3, "1", None),
]


async def _seed(db: Any) -> None:
    for id_, name, active, balance, updated in CUSTOMERS:
        await db.execute(
            "INSERT INTO qbo_customer (realm_id, id, gen, doc, display_name, active, balance,"
            " last_updated_time) VALUES ($1, $2, 1, $3, $4, $5, $6::text::numeric,"
            " $7::text::timestamptz)",
            REALM,
            id_,
            json.dumps({"Id": str(id_)}),
            name,
            active,
            balance,
            updated,
        )
    # Another realm's rows must never show.
    await db.execute(
        "INSERT INTO qbo_customer (realm_id, id, gen, doc, display_name, active)"
        " VALUES ('999', 1, 1, '{\"Id\": \"1\"}', 'Acme', true)"
    )
    for id_, ref, date in INVOICES:
        await db.execute(
            "INSERT INTO qbo_invoice (realm_id, id, gen, doc, customer_ref, txn_date)"
            " VALUES ($1, $2, 1, $3, $4, $5::text::date)",
            REALM,
            id_,
            json.dumps({"Id": str(id_)}),
            ref,
            date,
        )


async def _ids(db: Any, plan: Plan) -> list[int]:
    rows = await db.fetch(plan.sql, REALM, *plan.args)
    return [int(json.loads(row["doc"])["Id"]) for row in rows]


async def test_every_corpus_plan_runs(conn: Any) -> None:
    for case in _supported_corpus():
        plan = compile_query(case.query)
        assert isinstance(plan, Plan), case.query
        rows = await conn.fetch(plan.sql, REALM, *plan.args)
        if plan.count:
            assert len(rows) == 1
            assert list(rows[0].keys()) == ["n"]
            assert isinstance(rows[0]["n"], int)
        else:
            assert len(rows) <= plan.max_results
            for row in rows:
                assert list(row.keys()) == ["doc"]
                assert isinstance(row["doc"], str)


SEMANTICS = [
    ("SELECT * FROM Customer", [1, 2, 4, 5, 6, 7, 8, 9, 10]),
    ("SELECT * FROM Customer WHERE Active = false", [3]),
    ("SELECT * FROM Customer WHERE Active IN (true, false)", list(range(1, 11))),
    ("SELECT * FROM Customer WHERE DisplayName = 'ACME'", [1, 2]),
    ("SELECT * FROM Customer WHERE DisplayName IN ('ACME', 'zed', 'émile')", [1, 2, 9]),
    ("SELECT * FROM Customer WHERE DisplayName LIKE 'a_c'", [4]),
    ("SELECT * FROM Customer WHERE DisplayName LIKE 'A%'", [1, 2, 4, 5]),
    (r"SELECT * FROM Customer WHERE DisplayName LIKE 'BACK\\%'", [8]),
    (r"SELECT * FROM Customer WHERE DisplayName = 'o\'brien'", [7]),
    ("SELECT * FROM Customer WHERE DisplayName > 'b'", [7, 8, 9]),
    ("SELECT * FROM Customer ORDERBY DisplayName", [4, 5, 1, 2, 10, 8, 7, 9, 6]),
    ("SELECT * FROM Customer ORDER BY DisplayName DESC", [6, 9, 7, 8, 10, 1, 2, 5, 4]),
    ("SELECT * FROM Customer WHERE Balance > '5'", [1, 5]),
    ("SELECT * FROM Customer WHERE Balance = 10", [1]),
    ("SELECT * FROM Customer ORDERBY Balance DESC MAXRESULTS 3", [4, 5, 1]),
    ("SELECT * FROM Customer ORDERBY Balance STARTPOSITION 7", [1, 5, 4]),
    ("SELECT * FROM Customer STARTPOSITION 2 MAXRESULTS 3", [2, 4, 5]),
    ("SELECT * FROM Customer STARTPOSITION 100", []),
    ("SELECT * FROM Customer WHERE Id IN ('3', '5')", [5]),
    ("SELECT * FROM Customer ORDERBY Id DESC MAXRESULTS 2", [10, 9]),
    (
        "SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '2024-06-01T06:59:59Z'",
        [1],
    ),
    ("SELECT * FROM Customer WHERE Metadata.LastUpdatedTime > '2024-06-01T07:00:00+0000'", []),
    ("SELECT * FROM Invoice WHERE CustomerRef = '1'", [1, 3]),
    ("SELECT * FROM Invoice WHERE TxnDate >= '2024-01-01'", [1]),
    ("SELECT * FROM Invoice ORDERBY TxnDate DESC", [3, 1, 2]),
]


@pytest.mark.parametrize(("query", "ids"), SEMANTICS)
async def test_semantics(conn: Any, query: str, ids: list[int]) -> None:
    plan = compile_query(query)
    assert isinstance(plan, Plan), plan
    assert await _ids(conn, plan) == ids


@pytest.mark.parametrize(
    ("query", "n"),
    [
        ("SELECT COUNT(*) FROM Customer STARTPOSITION 1 MAXRESULTS 1", 9),
        ("SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)", 10),
        ("select count(*) from invoice where CustomerRef = '1'", 2),
        ("SELECT COUNT(*) FROM Payment", 0),
    ],
)
async def test_counts(conn: Any, query: str, n: int) -> None:
    plan = compile_query(query)
    assert isinstance(plan, Plan), plan
    assert await conn.fetchval(plan.sql, REALM, *plan.args) == n

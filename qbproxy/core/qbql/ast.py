"""The syntax tree of a QBO query and the refusal types shared by lexer, parser and planner.

The tree is purely syntactic: names are kept as written and literals as typed; the planner
(plan.py) resolves them against the catalog (core/catalog.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias


class QueryNotSupported(Exception):
    """Raised inside qbql only; `compile_query` and `parse` turn it into `Unsupported`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A query the cache does not answer exactly as Intuit would: it is forwarded.

    `reason` is a short sentence for logs; it never contains a literal from the query.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class String:
    value: str  # unescaped


@dataclass(frozen=True, slots=True)
class Number:
    text: str  # as written, e.g. "-100.50"; converted by the planner per column type


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool


Value: TypeAlias = String | Number | Bool
Operator: TypeAlias = Literal["=", "<", ">", "<=", ">=", "LIKE"]
OPERATORS: tuple[Operator, ...] = ("=", "<", ">", "<=", ">=", "LIKE")


@dataclass(frozen=True, slots=True)
class Comparison:
    field: str
    op: Operator
    value: Value


@dataclass(frozen=True, slots=True)
class In:
    field: str
    values: tuple[Value, ...]  # never empty


Condition: TypeAlias = Comparison | In


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: str
    descending: bool = False


# "*" for SELECT *, "count" for COUNT(*), else the projected field names as written; a
# tuple starting with "*" is `SELECT *, Sku` (python-quickbooks).
Selection: TypeAlias = Literal["*", "count"] | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Query:
    entity: str  # as written
    select: Selection = "*"
    where: tuple[Condition, ...] = ()
    order_by: tuple[OrderKey, ...] = ()
    start_position: int | None = None  # None: not given
    max_results: int | None = None


# Words that cannot name an entity or field: the grammar's keywords plus the SQL words
# Intuit's language lacks (qbo-api.md "Query language"), so those fail with a clear reason.
RESERVED = frozenset(
    {
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "BETWEEN",
        "IS",
        "NULL",
        "TRUE",
        "FALSE",
        "ORDER",
        "ORDERBY",
        "BY",
        "ASC",
        "DESC",
        "STARTPOSITION",
        "MAXRESULTS",
        "COUNT",
        "GROUP",
        "JOIN",
        "LIMIT",
        "OFFSET",
    }
)

"""qbql properties: never a crash, `parse(render(q)) == q`, literals only ever in arguments."""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbproxy.core import catalog
from qbproxy.core.qbql import Plan, Query, Unsupported, compile_query, parse, render
from qbproxy.core.qbql.ast import (
    RESERVED,
    Bool,
    Comparison,
    Condition,
    In,
    Number,
    OrderKey,
    String,
)
from qbproxy.core.qbql.ast import Value as Literal

# Every character the planner ever writes into SQL. Generated literals contain at least one
# character outside it, so finding a literal in the SQL would mean it was pasted in.
SQL_CHARS = frozenset(string.ascii_letters + string.digits + " _$().,:=<>*[]\"'\\")

CORPUS = [
    "select * from customer where DisplayName = 'x' startposition 1 maxresults 1000",
    "select count(*) from Invoice startposition 1 maxresults 1000",
    "SELECT * FROM Invoice WHERE CustomerRef = '58' MAXRESULTS 1000",
    r"SELECT * FROM Customer WHERE DisplayName LIKE 'O\'B%' ORDER BY DisplayName DESC",
    "SELECT * FROM Payment WHERE Id IN ('1', '2') AND TxnDate >= '2024-01-01' AND "
    "MetaData.LastUpdatedTime > '2024-06-01T00:00:00-07:00' AND TotalAmt > 10.5",
    "SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY Balance DESC, Id "
    "STARTPOSITION 3 MAXRESULTS 7",
]
VOCABULARY = [
    "SELECT", "select", "*", "COUNT(*)", "count", "(", ")", ",", "FROM", "Customer", "invoice",
    "Payment", "Vendor", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "=", "<", ">", "<=", ">=",
    "!=", "ORDERBY", "ORDER", "BY", "ASC", "DESC", "STARTPOSITION", "MAXRESULTS", "Id",
    "DisplayName", "Active", "Balance", "TxnDate", "CustomerRef", "MetaData.CreateTime",
    "Metadata.LastUpdatedTime", "TotalAmt", "true", "false", "0", "1", "-1", "1000", "1001",
    "12.50", "1e5", "'x'", "' '", "''", r"'O\'B'", "'2024-01-01'", "'2024-06-01T00:00:00Z'",
    "'%a_%'", "'5'", "'true'", ";", "'", "\\", "\n", "‘x’",
]  # fmt: skip
MUTATION_CHARS = "'\\ ()*,=<>-.%_;\n\tazAZ09‘’é\x00"


def _never_crashes(text: str) -> None:
    result = compile_query(text)
    assert isinstance(result, Plan | Unsupported)
    if isinstance(result, Unsupported):
        assert result.reason
        assert "internal error" not in result.reason
    else:
        assert "realm_id = $1" in result.sql
        assert result.sql.count("$") == len(result.args) + 1
        assert set(result.sql) <= SQL_CHARS
    parsed = parse(text)
    if isinstance(parsed, Query):
        assert parse(render(parsed)) == parsed


@settings(max_examples=500)
@given(st.text())
def test_random_text_never_raises(text: str) -> None:
    _never_crashes(text)


@settings(max_examples=500)
@given(st.lists(st.sampled_from(VOCABULARY), max_size=25))
def test_token_soup_never_raises(words: list[str]) -> None:
    _never_crashes(" ".join(words))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 8)))
        kind = draw(st.sampled_from(["delete", "insert", "duplicate", "swapcase"]))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + draw(st.text(MUTATION_CHARS, min_size=1, max_size=3)) + text[i:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i] + text[i:j].swapcase() + text[j:]
    return text


@settings(max_examples=1000)
@given(mutated())
def test_mutated_queries_never_raise(text: str) -> None:
    _never_crashes(text)


# Syntax trees for the round trip: any names the grammar allows, any literals.
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}(\.[A-Za-z_][A-Za-z0-9_]{0,8})?", fullmatch=True)
names = names.filter(lambda s: s.upper() not in RESERVED)
literals: st.SearchStrategy[Literal] = st.one_of(
    st.builds(String, st.text().filter(lambda s: "\x00" not in s)),
    st.builds(Number, st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{1,12})?", fullmatch=True)),
    st.builds(Bool, st.booleans()),
)
conditions: st.SearchStrategy[Condition] = st.one_of(
    st.builds(Comparison, names, st.sampled_from(["=", "<", ">", "<=", ">=", "LIKE"]), literals),
    st.builds(In, names, st.lists(literals, min_size=1, max_size=4).map(tuple)),
)
paging = st.none() | st.integers(0, 10**18 - 1)
queries = st.builds(
    Query,
    entity=names,
    select=st.sampled_from(["*", "count"])
    | st.lists(names, min_size=1, max_size=3).map(tuple)
    | st.lists(names, min_size=1, max_size=2).map(lambda n: ("*", *n)),
    where=st.lists(conditions, max_size=5).map(tuple),
    order_by=st.lists(st.builds(OrderKey, names, st.booleans()), max_size=3).map(tuple),
    start_position=paging,
    max_results=paging,
)


@given(queries)
def test_render_then_parse_round_trips(query: Query) -> None:
    assert parse(render(query)) == query


# Valid queries over the catalog, with the Python value each literal must become.
leaky_text = st.text(min_size=1).filter(
    lambda s: "\x00" not in s and bool(s.strip()) and not set(s) <= SQL_CHARS
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


def _values(kind: catalog.ColumnType) -> st.SearchStrategy[tuple[Literal, object]]:
    if kind in ("text", "ref"):
        return leaky_text.map(lambda s: (String(s), s))
    if kind == "bool":
        return st.booleans().map(lambda b: (Bool(b), b))
    if kind == "money":
        amounts = st.decimals(-(10**15) + 1, 10**15 - 1, places=2)
        return st.tuples(amounts, st.booleans()).map(
            lambda t: ((String if t[1] else Number)(format(t[0], "f")), t[0])
        )
    if kind == "date":
        return st.dates().map(lambda d: (String(d.isoformat()), d))
    if kind == "timestamp":
        times = st.datetimes(dt.datetime(2, 1, 1), dt.datetime(9998, 12, 31), timezones=offsets)
        return times.map(lambda t: (String(t.isoformat()), t))
    return st.integers(0, 10**18 - 1).map(lambda i: (String(str(i)), i))


@st.composite
def valid_queries(draw: st.DrawFn) -> tuple[Query, list[tuple[Literal, object]]]:
    entity = draw(st.sampled_from(catalog.ENTITIES))
    fields = [f for f in entity.fields if f.local]
    where: list[Condition] = []
    used: list[tuple[Literal, object]] = []
    for field in draw(st.lists(st.sampled_from(fields), max_size=5)):
        ops = ["=", "IN"]
        if field.type not in ("ref", "bool", "id"):
            ops += ["<", ">", "<=", ">="]
        if field.type == "text":
            ops.append("LIKE")
        op = draw(st.sampled_from(ops))
        if op == "IN":
            pairs = draw(st.lists(_values(field.type), min_size=1, max_size=4))
            where.append(In(field.name, tuple(p[0] for p in pairs)))
        else:
            pairs = [draw(_values(field.type))]
            where.append(Comparison(field.name, op, pairs[0][0]))  # type: ignore[arg-type]
        used += pairs
    sortable = [f for f in fields if f.type not in ("ref", "bool")]
    keys = draw(st.lists(st.sampled_from(sortable), max_size=3, unique_by=lambda f: f.name))
    query = Query(
        entity=draw(st.sampled_from([entity.name, entity.name.lower(), entity.name.upper()])),
        select=draw(st.sampled_from(["*", "count", ("Id", "SyncToken"), ("*", "Sku")])),
        where=tuple(where),
        order_by=tuple(OrderKey(f.name, draw(st.booleans())) for f in keys),
        # A single object (CompanyInfo, Preferences) is queried without paging.
        start_position=None if entity.singleton else draw(st.none() | st.integers(1, 10_000_000)),
        max_results=None if entity.singleton else draw(st.none() | st.integers(1, 1000)),
    )
    return query, used


def _flat(args: tuple[object, ...]) -> list[object]:
    out: list[object] = []
    for arg in args:
        out += arg if isinstance(arg, list) else [arg]
    return out


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(valid_queries())
def test_valid_queries_keep_literals_in_arguments(
    case: tuple[Query, list[tuple[Literal, object]]],
) -> None:
    query, used = case
    plan = compile_query(render(query))
    assert isinstance(plan, Plan), plan
    assert set(plan.sql) <= SQL_CHARS
    assert plan.sql.count("$") == len(plan.args) + 1
    args = _flat(plan.args)
    for literal, value in used:
        if isinstance(literal, String) and not set(literal.value) <= SQL_CHARS:
            assert literal.value not in plan.sql
        like = value.replace("\\", "\\\\").replace("_", "\\_") if isinstance(value, str) else None
        assert value in args or like in args
        if isinstance(value, Decimal | dt.date):
            assert value in args  # converted, not passed as text
    again = compile_query(plan.normalized)
    assert isinstance(again, Plan)
    assert again.normalized == plan.normalized
    assert (again.sql, again.args) == (plan.sql, plan.args)

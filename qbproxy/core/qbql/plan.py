"""From a parsed query to one parameterised Postgres statement over the cache tables: the
decided semantics (fields, operators, literal conversion, order, paging) and the canonical
text used as a cache key. Anything else is `Unsupported` and gets forwarded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, TypeAlias

from qbproxy.core import catalog
from qbproxy.core.projection import canonical_names
from qbproxy.core.qbql.ast import (
    Bool,
    Comparison,
    In,
    Number,
    OrderKey,
    Query,
    QueryNotSupported,
    Selection,
    String,
    Unsupported,
    Value,
)
from qbproxy.core.qbql.parser import parse_or_raise, render, render_condition, render_value

DEFAULT_START_POSITION = 1
DEFAULT_MAX_RESULTS = 100  # qbo-api.md: MAXRESULTS defaults to 100 ...
MAX_MAX_RESULTS = 1000  # ... and is at most 1000 (over: 400, code 4001)
MAX_START_POSITION = 10_000_000
MAX_MONEY_INTEGER_DIGITS = 15
MAX_MONEY_FRACTION_DIGITS = 10

_NUMBER = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?")
_ID = re.compile(r"0|[1-9][0-9]{0,17}")  # at most 18 digits: always inside a bigint
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Intuit writes times as 2024-06-01T00:00:00-07:00; its docs also show -0700. Without an
# offset the instant depends on the company's time zone, which the cache does not know.
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})"
)

_RANGE_OPS = ("<", ">", "<=", ">=")
# Operators answered per column type. Refs and booleans only match values (comparing a
# ref as text or as a number is unsure at Intuit); Ids only match (qbo-api.md, brief).
_OPERATORS: dict[catalog.ColumnType, frozenset[str]] = {
    "text": frozenset({"=", *_RANGE_OPS, "LIKE", "IN"}),
    "ref": frozenset({"=", "IN"}),
    "bool": frozenset({"=", "IN"}),
    "money": frozenset({"=", *_RANGE_OPS, "IN"}),
    "date": frozenset({"=", *_RANGE_OPS, "IN"}),
    "timestamp": frozenset({"=", *_RANGE_OPS, "IN"}),
    "id": frozenset({"=", "IN"}),
}
_PG_TYPE = catalog.PG_TYPES

Op: TypeAlias = Literal["=", "<", ">", "<=", ">=", "LIKE", "IN"]


@dataclass(frozen=True, slots=True)
class Plan:
    """How to answer one query from the cache. `sql` takes the realm id as `$1`, then `args`."""

    entity: str  # canonical, e.g. "Customer"
    table: str  # e.g. "qbo_customer"
    count: bool  # COUNT(*): one row, column `n`; otherwise rows of column `doc`
    sql: str
    args: tuple[object, ...]  # values for $2..$n; no literal ever appears in `sql`
    start_position: int  # 1-based
    max_results: int
    normalized: str  # canonical query text: equal for semantically identical queries
    # For an entity whose `SELECT *` rule is unsure (catalog.InactiveRule): a statement
    # (realm as $1, then `probe_args`) that is true when some row the query selects, but
    # for Active, is inactive. Then the two rules disagree and the query is forwarded.
    inactive_probe: str | None = None
    probe_args: tuple[object, ...] = ()
    # With a probe: the same query under the other rule (inactive rows shown), to answer
    # by once Intuit's rule is known (qbproxy/core/inactive.py).
    shown: Plan | None = None
    # Projection: the lower-cased property names each row keeps (core/projection.py);
    # None for whole documents and counts. Part of `normalized` as well.
    projection: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class _Condition:
    """A condition resolved against the catalog, its values converted to the column type."""

    field: catalog.Field
    op: Op
    values: tuple[object, ...]  # exactly one unless op is IN; a LIKE pattern unescaped
    node: Comparison | In  # canonical syntax, rendered into `normalized`
    text: str  # rendering of `node`; the canonical sort key

    @classmethod
    def make(cls, field: catalog.Field, op: Op, values: tuple[object, ...]) -> _Condition:
        literals = tuple(_literal(field.type, v) for v in values)
        node: Comparison | In
        node = In(field.name, literals) if op == "IN" else Comparison(field.name, op, literals[0])
        return cls(field, op, values, node, render_condition(node))


def compile_query(text: str) -> Plan | Unsupported:
    """The cache plan for a QBO query, or why it must be forwarded. Never raises."""
    try:
        return plan(parse_or_raise(text))
    except QueryNotSupported as exc:
        return Unsupported(exc.reason)
    except Exception as exc:
        # A compiler bug must cost a forward to Intuit, not a failed request; the tests
        # assert that this reason never shows up.
        return Unsupported(f"internal error in the query compiler ({type(exc).__name__})")


def plan(query: Query) -> Plan:
    """The plan for a parsed query; raises QueryNotSupported."""
    entity = catalog.entity_named(query.entity)
    if entity is None:
        raise QueryNotSupported("the entity is not one the cache holds")
    select, projection = _selection(query.select)
    count = select == "count"
    start = DEFAULT_START_POSITION if query.start_position is None else query.start_position
    max_results = DEFAULT_MAX_RESULTS if query.max_results is None else query.max_results
    if not 1 <= max_results <= MAX_MAX_RESULTS:
        raise QueryNotSupported("MAXRESULTS is outside 1..1000")
    if not 1 <= start <= MAX_START_POSITION:
        raise QueryNotSupported("STARTPOSITION is outside 1..10000000")

    if entity.singleton and (query.start_position is not None or query.max_results is not None):
        # qbo-api.md: Preferences has no paging; what Intuit does with it is unknown.
        raise QueryNotSupported("paging a single-object entity")
    conditions, implied = _conditions(entity, query)
    order = _order(entity, query.order_by)
    args: list[object] = []
    where = ["realm_id = $1"]
    for condition in conditions:
        where.append(_condition_sql(condition, f"${len(args) + 2}"))
        args.append(_argument(condition))
    probe: str | None = None
    probe_args: tuple[object, ...] = ()
    if implied and entity.inactive == "unsure":
        # Every condition but the implied `Active = true`, and an inactive row.
        named = [(c, a) for c, a in zip(conditions, args, strict=True) if c is not implied]
        probe_where = ["realm_id = $1", "active IS NOT TRUE"]
        probe_where += [_condition_sql(c, f"${i + 2}") for i, (c, _) in enumerate(named)]
        probe = f"SELECT EXISTS (SELECT 1 FROM {entity.table} WHERE {' AND '.join(probe_where)})"
        probe_args = tuple(a for _, a in named)
    if count:
        # node-quickbooks appends paging even to counts (qbo-api.md); a count ignores it.
        sql = f"SELECT count(*) AS n FROM {entity.table} WHERE {' AND '.join(where)}"
    else:
        keys = ", ".join(_order_sql(field, desc) for field, desc in order)
        limit, offset = len(args) + 2, len(args) + 3
        args += [max_results, start - 1]
        sql = (
            f"SELECT doc FROM {entity.table} WHERE {' AND '.join(where)}"
            f" ORDER BY {keys} LIMIT ${limit} OFFSET ${offset}"
        )
    canonical = Query(
        entity=entity.name,
        select=select,
        # An implied `Active = true` under an unsure rule stays implied: the text must not
        # equal that of the query naming it, which is answered without the probe.
        where=tuple(c.node for c in conditions if probe is None or c is not implied),
        order_by=() if count else tuple(OrderKey(f.name, desc) for f, desc in order),
        start_position=None if count or entity.singleton else start,
        max_results=None if count or entity.singleton else max_results,
    )
    return Plan(
        entity=entity.name,
        table=entity.table,
        count=count,
        sql=sql,
        args=tuple(args),
        start_position=start,
        max_results=max_results,
        normalized=render(canonical),
        inactive_probe=probe,
        probe_args=probe_args,
        shown=None if probe is None else plan(_naming_both(query)),
        projection=projection,
    )


def _naming_both(query: Query) -> Query:
    """The query with `Active IN (true, false)`: every row, active or not."""
    both = In("Active", (Bool(True), Bool(False)))
    return dataclasses.replace(query, where=(*query.where, both))


def _selection(select: Selection) -> tuple[Selection, tuple[str, ...] | None]:
    """The canonical selection and, for a projection, the names each row keeps.

    Projections follow the fake Intuit's documented choice (qbproxy/core/projection.py):
    top-level property names, any case, unknown names adding nothing. Dotted names
    (`MetaData.CreateTime`) are forwarded: what Intuit returns for them is unsure.
    """
    if isinstance(select, str):
        return select, None
    if any("." in name for name in select):
        raise QueryNotSupported("a dotted name in a projection is unsure at Intuit")
    if select[0] == "*":
        return "*", None  # `SELECT *, Sku`: the whole document holds Sku already
    names = canonical_names(select)
    return names, names


def _conditions(entity: catalog.Entity, query: Query) -> tuple[list[_Condition], _Condition | None]:
    """The WHERE conditions resolved, deduplicated and sorted into a canonical order, and
    the `Active = true` that `SELECT *` implies (None when the query names Active or the
    entity has no such rule)."""
    resolved = [_resolve(entity, c) for c in query.where]
    implied: _Condition | None = None
    # qbo-api.md: SELECT * FROM Customer returns active customers only, unless the query
    # names Active itself (`Active IN (true, false)` means both); for the other name
    # lists the rule is unsure (the plan's inactive_probe).
    if entity.inactive != "none" and not any(c.field.name == "Active" for c in resolved):
        active = entity.field("Active")
        assert active is not None
        implied = _Condition.make(active, "=", (True,))
        resolved.append(implied)
    unique = {c.text: c for c in resolved}
    conditions = [unique[text] for text in sorted(unique)]
    if implied is not None:
        implied = unique[implied.text]
    return conditions, implied


def _resolve(entity: catalog.Entity, node: Comparison | In) -> _Condition:
    field = _field(entity, node.field)
    op: Op = "IN" if isinstance(node, In) else node.op
    if op not in _OPERATORS[field.type]:
        raise QueryNotSupported(f"{op} is not supported on {entity.name}.{field.name}")
    if isinstance(node, Comparison):
        return _Condition.make(field, op, (_convert(field, node.value),))
    # An IN list is a set: order and repeats do not change the result.
    converted = [_convert(field, v) for v in node.values]
    by_text = {render_value(_literal(field.type, v)): v for v in converted}
    values = tuple(by_text[text] for text in sorted(by_text))
    return _Condition.make(field, "IN" if len(values) > 1 else "=", values)


def _field(entity: catalog.Entity, name: str) -> catalog.Field:
    field = entity.field(name)  # accepts "Metadata." for "MetaData." (qbo-api.md)
    if field is None or not field.local:
        raise QueryNotSupported(f"a field is not filterable or sortable on {entity.name}")
    return field


def _convert(field: catalog.Field, value: Value) -> object:
    """A literal as the Python value asyncpg sends for the field's column."""
    kind = field.type
    if kind in ("text", "ref"):
        if not isinstance(value, String):
            raise QueryNotSupported(f"{field.name} needs a quoted string")
        if not value.value.strip():
            raise QueryNotSupported("a blank string means null at Intuit (qbo-api.md)")
        if kind == "text" and any(len(ch.lower()) != 1 for ch in value.value):
            # Postgres lower() folds these (e.g. U+0130) to one character, full Unicode
            # lower-casing to two: which one Intuit does is unknown, so forward.
            raise QueryNotSupported("a character whose lower case is ambiguous")
        return value.value
    if kind == "bool":
        # qbo-api.md: booleans are bare; a quoted 'true' is not known to work.
        if not isinstance(value, Bool):
            raise QueryNotSupported(f"{field.name} needs a bare true or false")
        return value.value
    if isinstance(value, Bool):
        raise QueryNotSupported(f"{field.name} cannot be compared with a boolean")
    text = value.text if isinstance(value, Number) else value.value
    if kind == "money":
        return _money(field, text)
    if kind == "id":
        if _ID.fullmatch(text) is None:
            raise QueryNotSupported("an Id must be a number of at most 18 digits")
        return int(text)
    if isinstance(value, Number):
        raise QueryNotSupported(f"{field.name} needs a quoted date or time")
    if kind == "date":
        return _date(text)
    return _timestamp(text)


def _money(field: catalog.Field, text: str) -> Decimal:
    # Plain decimals only: NaN, Infinity and exponents are refused, as are amounts no
    # QBO amount field can hold.
    m = _NUMBER.fullmatch(text)
    if m is None:
        raise QueryNotSupported(f"{field.name} needs a plain decimal number")
    integer, fraction = m.group(1).lstrip("0"), m.group(2) or ""
    if len(integer) > MAX_MONEY_INTEGER_DIGITS or len(fraction) > MAX_MONEY_FRACTION_DIGITS:
        raise QueryNotSupported(f"a number compared with {field.name} is too large or too precise")
    return Decimal(_decimal_text(Decimal(text)))


def _decimal_text(value: Decimal) -> str:
    if value == 0:
        return "0"  # also for -0 and 0.00
    return format(value.normalize(), "f")


def _date(text: str) -> dt.date:
    if _DATE.fullmatch(text) is None:
        raise QueryNotSupported("a date must be written YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise QueryNotSupported("a date is not a calendar date") from None


def _timestamp(text: str) -> dt.datetime:
    if _TIMESTAMP.fullmatch(text) is None:
        raise QueryNotSupported("a time must be ISO-8601 with a UTC offset")
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise QueryNotSupported("a time is not a valid instant") from None


def _literal(kind: catalog.ColumnType, value: object) -> Value:
    """The canonical literal for a converted value (inverse of `_convert`)."""
    if isinstance(value, bool):
        return Bool(value)
    if isinstance(value, Decimal):
        return Number(_decimal_text(value))
    if isinstance(value, dt.datetime | dt.date):
        return String(value.isoformat())
    if isinstance(value, int):
        return String(str(value))
    assert isinstance(value, str), kind
    return String(value)


def _column(field: catalog.Field) -> str:
    # Text compares case-insensitively (brief). lower() runs in Postgres on both sides so
    # column and value fold the same way; COLLATE "C" gives code-point order and matches
    # the expression index in migrations/0001_cache_tables.sql.
    if field.type == "text":
        return f'lower({field.column}) COLLATE "C"'
    return field.column


def _condition_sql(condition: _Condition, param: str) -> str:
    field, column = condition.field, _column(condition.field)
    pg_type = _PG_TYPE[field.type]
    if condition.op == "IN":
        if field.type == "text":
            return f"{column} = ANY(ARRAY(SELECT lower(v) FROM unnest({param}::text[]) AS v))"
        return f"{column} = ANY({param}::{pg_type}[])"
    value = f"{param}::{pg_type}"
    if field.type == "text":
        value = f"lower({value})"
    if condition.op == "LIKE":
        return f"{column} LIKE {value} ESCAPE '\\'"
    return f"{column} {condition.op} {value}"


def _argument(condition: _Condition) -> object:
    if condition.op == "IN":
        return list(condition.values)
    value = condition.values[0]
    if condition.op == "LIKE":
        # qbo-api.md: LIKE supports % only, so _ and \ must match themselves.
        assert isinstance(value, str)
        return value.replace("\\", "\\\\").replace("_", "\\_")
    return value


def _order(entity: catalog.Entity, keys: tuple[OrderKey, ...]) -> list[tuple[catalog.Field, bool]]:
    """ORDERBY keys resolved, ending with Id ascending as the tie-breaker."""
    order: list[tuple[catalog.Field, bool]] = []
    for key in keys:
        field = _field(entity, key.field)
        if field.type in ("ref", "bool"):
            raise QueryNotSupported(f"ordering by a {field.type} is unsure at Intuit")
        if any(f is field for f, _ in order):
            raise QueryNotSupported("ORDERBY names a field twice")
        order.append((field, key.descending))
    # Without ORDERBY, Id ascending as a number (qbo-api.md leaves this to us; the fake
    # does the same). Ids are unique, so keys after an Id key never matter.
    ids = [i for i, (f, _) in enumerate(order) if f.type == "id"]
    if ids:
        return order[: ids[0] + 1]
    id_field = entity.field("Id")
    assert id_field is not None
    return [*order, (id_field, False)]


def _order_sql(field: catalog.Field, descending: bool) -> str:
    # Postgres defaults, written out: ascending puts NULLs last, descending first.
    direction = "DESC NULLS FIRST" if descending else "ASC NULLS LAST"
    return f"{_column(field)} {direction}"

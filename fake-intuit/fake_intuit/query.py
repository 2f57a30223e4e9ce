"""The fake's own evaluator of Intuit's query language (qbo-api.md "Query language").

Kept apart from `qbproxy.qbql` on purpose: the proxy's translator is differential-tested on it.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fake_intuit.catalog import CANONICAL, SPECS, Kind

# Filterable (and sortable) fields of every entity: the catalog (qbo-api.md's lists).
FIELDS: dict[str, dict[str, tuple[Kind, tuple[str, ...]]]] = {
    name: dict(spec.fields) for name, spec in SPECS.items()
}
MAX_RESULTS_LIMIT = 1000  # qbo-api.md: over 1000 is a 400 with code 4001
DEFAULT_MAX_RESULTS = 100


class QueryError(Exception):
    """A query Intuit refuses: code "4000" (parse error) or "4001" (invalid query)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.message = "Error parsing query" if code == "4000" else "Invalid query"
        self.detail = (
            f"QueryParserError: {detail}" if code == "4000" else (f"QueryValidationError: {detail}")
        )


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: Kind
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cond:
    field: Field
    op: str  # "=", "<", ">", "<=", ">=", "LIKE", "IN"
    values: tuple[Any, ...]  # coerced to the field's kind; None is the `' '` null literal


@dataclass(frozen=True, slots=True)
class Query:
    entity: str
    count: bool
    projection: tuple[str, ...] | None  # None: SELECT *
    where: tuple[Cond, ...]
    order: tuple[tuple[Field, bool], ...]  # (field, descending)
    start: int
    max_results: int


_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<number>-?\d+(?:\.\d+)?(?![\w.]))"
    r"|(?P<ident>[A-Za-z_][\w.]*)|(?P<op><=|>=|!=|<>|=|<|>)|(?P<punct>[(),*]))",
    re.DOTALL,
)


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise QueryError("4000", f"Encountered an unexpected character at column {pos + 1}")
        kind, raw = match.lastgroup, match.group(match.lastgroup)
        if kind == "string":  # \' is a quote, \\ a backslash (qbo-api.md)
            raw = re.sub(r"\\(['\\])", r"\1", raw[1:-1])
        tokens.append((kind, raw))
        pos = match.end()
    tokens.append(("end", ""))
    return tokens


class _Parser:
    def __init__(self, text: str, tz: dt.tzinfo) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.tz = tz

    def peek_word(self) -> str:
        kind, raw = self.tokens[self.pos]
        return raw.upper() if kind == "ident" else ""

    def take(self, kind: str, raw: str | None = None) -> str:
        got_kind, got = self.tokens[self.pos]
        if got_kind != kind or (raw is not None and got.upper() != raw):
            shown = got or "<EOF>"
            raise QueryError("4000", f'Encountered "{shown}" at token {self.pos + 1}')
        self.pos += 1
        return got

    def accept(self, kind: str, raw: str) -> bool:
        got_kind, got = self.tokens[self.pos]
        if got_kind == kind and got.upper() == raw:
            self.pos += 1
            return True
        return False

    def parse(self) -> Query:
        self.take("ident", "SELECT")
        count, projection = False, None
        if self.accept("punct", "*"):
            # `SELECT *, Sku FROM Item` (python-quickbooks): whole documents, like SELECT *.
            while self.accept("punct", ","):
                self.take("ident")
        elif self.peek_word() == "COUNT" and self.tokens[self.pos + 1] == ("punct", "("):
            self.pos += 2
            self.take("punct", "*")
            self.take("punct", ")")
            count = True
        else:
            names = [self.take("ident")]
            while self.accept("punct", ","):
                names.append(self.take("ident"))
            projection = tuple(names)
        self.take("ident", "FROM")
        raw_entity = self.take("ident")
        entity = CANONICAL.get(raw_entity.lower())
        if entity is None:
            raise QueryError("4001", f"{raw_entity} is not a valid entity")
        where: list[Cond] = []
        if self.accept("ident", "WHERE"):
            where.append(self.condition(entity))
            while self.accept("ident", "AND"):
                where.append(self.condition(entity))
        order: list[tuple[Field, bool]] = []
        if self.accept("ident", "ORDERBY") or (
            self.accept("ident", "ORDER") and self.take("ident", "BY")
        ):
            order.append(self.order_key(entity))
            while self.accept("punct", ","):
                order.append(self.order_key(entity))
        paging: dict[str, int] = {}
        while (word := self.peek_word()) in ("STARTPOSITION", "MAXRESULTS") and word not in paging:
            self.pos += 1
            paging[word] = int(self.take("number").split(".")[0])
        self.take("end")
        start = paging.get("STARTPOSITION", 1)
        max_results = paging.get("MAXRESULTS", DEFAULT_MAX_RESULTS)
        if max_results > MAX_RESULTS_LIMIT:
            raise QueryError(
                "4001", f"value {max_results} is too large. Max allowed value is: 1000"
            )
        if max_results < 1 or start < 1:
            raise QueryError("4001", "STARTPOSITION and MAXRESULTS must be positive")
        return Query(entity, count, projection, tuple(where), tuple(order), start, max_results)

    def field(self, entity: str) -> Field:
        raw = self.take("ident")
        name = "MetaData." + raw[9:] if raw.lower().startswith("metadata.") else raw
        for known, (kind, path) in FIELDS[entity].items():
            if known.lower() == name.lower():
                return Field(known, kind, path)
        raise QueryError("4001", f"property '{raw}' is not queryable")

    def order_key(self, entity: str) -> tuple[Field, bool]:
        field = self.field(entity)
        if self.accept("ident", "DESC"):
            return field, True
        self.accept("ident", "ASC")
        return field, False

    def condition(self, entity: str) -> Cond:
        field = self.field(entity)
        kind, raw = self.tokens[self.pos]
        if kind == "ident" and raw.upper() in ("LIKE", "IN"):
            op = raw.upper()
        elif kind == "op" and raw in ("=", "<", ">", "<=", ">="):
            op = raw
        else:
            raise QueryError("4000", f'Encountered "{raw or "<EOF>"}" at token {self.pos + 1}')
        self.pos += 1
        if op == "LIKE" and field.kind != "text":
            raise QueryError("4001", f"LIKE is not supported on property '{field.name}'")
        if op in ("<", ">", "<=", ">=") and field.kind in ("ref", "bool"):
            raise QueryError("4001", f"operator {op} is not supported on '{field.name}'")
        if op != "IN":
            return Cond(field, op, (self.value(field, null_ok=op == "="),))
        self.take("punct", "(")
        values = [self.value(field)]
        while self.accept("punct", ","):
            values.append(self.value(field))
        self.take("punct", ")")
        return Cond(field, op, tuple(values))

    def value(self, field: Field, null_ok: bool = False) -> Any:
        kind, raw = self.tokens[self.pos]
        self.pos += 1
        if kind == "ident" and raw.lower() in ("true", "false") and field.kind == "bool":
            return raw.lower() == "true"
        if kind not in ("string", "number"):
            raise QueryError("4000", f'Encountered "{raw or "<EOF>"}" at token {self.pos}')
        if null_ok and kind == "string" and raw == " ":  # `' '` means null (qbo-api.md)
            return None
        coerced = _coerce(field.kind, raw, self.tz)
        if coerced is None:
            raise QueryError("4000", f"invalid value '{raw}' for property '{field.name}'")
        return coerced


def _coerce(kind: Kind, raw: str, tz: dt.tzinfo) -> Any:
    """A literal as the field's kind (numbers and dates may be quoted); None if it is not one."""
    try:
        match kind:
            case "text":
                return raw.lower()
            case "ref":
                return raw
            case "id":
                return int(raw) if raw.strip().isdigit() else None
            case "bool":
                return {"true": True, "false": False}.get(raw.lower())
            case "money":
                value = Decimal(raw.strip())
                return value if value.is_finite() else None
            case "date":
                return dt.date.fromisoformat(raw.strip()[:10])
            case "instant":
                # No offset: read in the company's offset (qbo-api.md leaves it to us).
                moment = dt.datetime.fromisoformat(raw.strip())
                return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    except (ValueError, InvalidOperation):
        return None


def _doc_value(doc: dict[str, Any], field: Field) -> Any:
    value: Any = doc
    for key in field.path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if value is None or value == "":
        return None
    if field.kind == "bool":
        return value if isinstance(value, bool) else None
    return _coerce(field.kind, str(value), dt.UTC)


def parse(text: str, tz: dt.tzinfo) -> Query:
    """Parse a query; raises QueryError with Intuit's code."""
    return _Parser(text, tz).parse()


def _matches(cond: Cond, doc: dict[str, Any]) -> bool:
    value = _doc_value(doc, cond.field)
    if cond.values == (None,):
        return value is None
    if value is None:
        return False
    if cond.op == "IN":
        return value in cond.values
    literal = cond.values[0]
    if cond.op == "LIKE":  # text is already lower-cased
        return _like(literal).fullmatch(value) is not None
    return bool(_COMPARE[cond.op](value, literal))


@functools.lru_cache(maxsize=256)
def _like(pattern: str) -> re.Pattern[str]:
    """Only % is a wildcard (qbo-api.md); `_` and everything else match themselves."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("%")), re.DOTALL)


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


def _sort_key(doc: dict[str, Any], field: Field) -> tuple[Any, ...]:
    # Nulls sort last ascending, first descending (a reversed sort flips both).
    value = _doc_value(doc, field)
    if value is None:
        return (1,)
    if field.kind == "ref":
        return (0, int(value), "") if value.isdigit() else (0, 1 << 62, value)
    return (0, value)


def select(query: Query, docs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The QueryResponse object for `query` over an entity's documents."""
    conds = list(query.where)
    hides = SPECS[query.entity].hides_inactive
    if hides and not any(c.field.name == "Active" for c in conds):
        # Customer (and, the fake's choice, other name lists but TaxCode and TaxRate) queries
        # see active rows only unless they name Active (qbo-api.md).
        conds.append(Cond(Field("Active", "bool", ("Active",)), "=", (True,)))
    rows = [doc for doc in docs if all(_matches(c, doc) for c in conds)]
    if query.count:
        return {"totalCount": len(rows)}
    # Default order, and the tie-break after ORDERBY keys: Id ascending as a number.
    rows.sort(key=lambda doc: int(doc["Id"]) if str(doc.get("Id", "")).isdigit() else 0)
    for field, descending in reversed(query.order):
        rows.sort(key=functools.partial(_sort_key, field=field), reverse=descending)
    page = rows[query.start - 1 : query.start - 1 + query.max_results]
    if not page:
        return {}
    if query.projection is not None:
        keys = {name.split(".")[0].lower() for name in query.projection}
        page = [
            {k: v for k, v in doc.items() if k.lower() in keys} | {"domain": "QBO", "sparse": True}
            for doc in page
        ]
    return {query.entity: page, "startPosition": query.start, "maxResults": len(page)}


def run(
    text: str, docs_by_entity: Callable[[str], Iterable[dict[str, Any]]], tz: dt.tzinfo
) -> dict[str, Any]:
    """Parse and answer one query; raises QueryError."""
    query = parse(text, tz)
    return select(query, docs_by_entity(query.entity))

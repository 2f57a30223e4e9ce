"""Recursive-descent parser from query text to the syntax tree, and its inverse `render`.

The grammar is Intuit's (qbo-api.md "Query language"); anything outside it is refused.
"""

from __future__ import annotations

from qbproxy.core.qbql.ast import (
    RESERVED,
    Bool,
    Comparison,
    Condition,
    In,
    Number,
    Operator,
    OrderKey,
    Query,
    QueryNotSupported,
    Selection,
    String,
    Unsupported,
    Value,
)
from qbproxy.core.qbql.lexer import Token, quote, tokenize

MAX_CONDITIONS = 50
MAX_IN_VALUES = 1000
MAX_PAGING_DIGITS = 18  # keeps int() cheap and the value inside a Postgres bigint

_SYMBOL_OPERATORS: dict[str, Operator] = {"=": "=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}

# Words that mean the query uses SQL Intuit's language lacks (qbo-api.md: no OR, NOT,
# GROUP BY, JOIN; BETWEEN is unsure there, so it is forwarded).
_UNSUPPORTED_WORDS = {
    "OR": "OR is not supported",
    "NOT": "NOT is not supported",
    "BETWEEN": "BETWEEN is not supported",
    "IS": "IS is not supported",
    "NULL": "NULL is not supported",
    "GROUP": "GROUP BY is not supported",
    "JOIN": "JOIN is not supported",
    "LIMIT": "LIMIT is not supported",
    "OFFSET": "OFFSET is not supported",
}


def parse(text: str) -> Query | Unsupported:
    """The syntax tree of `text`, or why it is not a query this grammar accepts."""
    try:
        return parse_or_raise(text)
    except QueryNotSupported as exc:
        return Unsupported(exc.reason)


def parse_or_raise(text: str) -> Query:
    """As `parse`, raising QueryNotSupported instead of returning Unsupported."""
    return _Parser(tokenize(text)).query()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._i = 0

    def _peek(self) -> Token:
        return self._tokens[self._i]

    def _next(self) -> Token:
        token = self._tokens[self._i]
        if token.kind != "end":
            self._i += 1
        return token

    def _at_keyword(self, *words: str) -> bool:
        token = self._peek()
        return token.kind == "word" and token.text.upper() in words

    def _at_symbol(self, symbol: str) -> bool:
        token = self._peek()
        return token.kind == "symbol" and token.text == symbol

    def _fail(self, expected: str) -> QueryNotSupported:
        token = self._peek()
        if token.kind == "word" and token.text.upper() in _UNSUPPORTED_WORDS:
            return QueryNotSupported(_UNSUPPORTED_WORDS[token.text.upper()])
        if token.kind == "end":
            return QueryNotSupported(f"the query ends where {expected} was expected")
        return QueryNotSupported(f"expected {expected} at offset {token.pos}")

    def _keyword(self, word: str) -> None:
        if not self._at_keyword(word):
            raise self._fail(word)
        self._next()

    def _symbol(self, symbol: str) -> None:
        if not self._at_symbol(symbol):
            raise self._fail(f"'{symbol}'")
        self._next()

    def _name(self, what: str) -> str:
        token = self._peek()
        if token.kind != "word" or token.text.upper() in RESERVED:
            raise self._fail(what)
        self._next()
        return token.text

    def query(self) -> Query:
        self._keyword("SELECT")
        select = self._selection()
        self._keyword("FROM")
        entity = self._name("an entity name")
        where: tuple[Condition, ...] = ()
        if self._at_keyword("WHERE"):
            self._next()
            where = self._conditions()
        order_by: tuple[OrderKey, ...] = ()
        if self._at_keyword("ORDERBY", "ORDER"):
            # qbo-api.md: "ORDER BY" works as well as "ORDERBY".
            if self._next().text.upper() == "ORDER":
                self._keyword("BY")
            order_by = self._order_keys()
        paging: dict[str, int] = {}
        # qbo-api.md: MAXRESULTS may come before STARTPOSITION.
        while self._at_keyword("STARTPOSITION", "MAXRESULTS"):
            clause = self._next().text.upper()
            if clause in paging:
                raise QueryNotSupported(f"{clause} is given twice")
            paging[clause] = self._paging_number(clause)
        if self._peek().kind != "end":
            if self._at_keyword("WHERE", "ORDERBY", "ORDER"):
                raise QueryNotSupported("a clause is repeated or out of order")
            raise self._fail("the end of the query")
        return Query(
            entity=entity,
            select=select,
            where=where,
            order_by=order_by,
            start_position=paging.get("STARTPOSITION"),
            max_results=paging.get("MAXRESULTS"),
        )

    def _selection(self) -> Selection:
        if self._at_symbol("*"):
            self._next()
            if not self._at_symbol(","):
                return "*"
            # `SELECT *, Sku FROM Item` (python-quickbooks): kept as ("*", "Sku"); what it
            # means is the planner's.
            star = ["*"]
            while self._at_symbol(","):
                self._next()
                star.append(self._name("a field name"))
            return tuple(star)
        if self._at_keyword("COUNT"):
            self._next()
            self._symbol("(")
            self._symbol("*")
            self._symbol(")")
            return "count"
        fields = [self._name("'*', COUNT(*) or a field name")]
        while self._at_symbol(","):
            self._next()
            fields.append(self._name("a field name"))
        return tuple(fields)

    def _conditions(self) -> tuple[Condition, ...]:
        conditions = [self._condition()]
        while self._at_keyword("AND"):
            self._next()
            conditions.append(self._condition())
            if len(conditions) > MAX_CONDITIONS:
                raise QueryNotSupported("the query has too many conditions")
        return tuple(conditions)

    def _condition(self) -> Condition:
        field = self._name("a field name")
        token = self._peek()
        if token.kind == "symbol" and token.text in _SYMBOL_OPERATORS:
            self._next()
            return Comparison(field, _SYMBOL_OPERATORS[token.text], self._value())
        if self._at_keyword("LIKE"):
            self._next()
            return Comparison(field, "LIKE", self._value())
        if self._at_keyword("IN"):
            self._next()
            self._symbol("(")
            values = [self._value()]
            while self._at_symbol(","):
                self._next()
                values.append(self._value())
                if len(values) > MAX_IN_VALUES:
                    raise QueryNotSupported("an IN list has too many values")
            self._symbol(")")
            return In(field, tuple(values))
        raise self._fail("an operator")

    def _value(self) -> Value:
        token = self._peek()
        if token.kind == "string":
            self._next()
            return String(token.text)
        if token.kind == "number":
            self._next()
            return Number(token.text)
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            self._next()
            return Bool(token.text.lower() == "true")
        raise self._fail("a value")

    def _order_keys(self) -> tuple[OrderKey, ...]:
        keys = [self._order_key()]
        while self._at_symbol(","):
            self._next()
            keys.append(self._order_key())
            if len(keys) > MAX_CONDITIONS:
                raise QueryNotSupported("ORDERBY has too many keys")
        return tuple(keys)

    def _order_key(self) -> OrderKey:
        field = self._name("a field name")
        descending = False
        if self._at_keyword("ASC", "DESC"):
            descending = self._next().text.upper() == "DESC"
        return OrderKey(field, descending)

    def _paging_number(self, clause: str) -> int:
        token = self._peek()
        if token.kind != "number" or not token.text.isdigit():
            raise self._fail(f"a whole number after {clause}")
        if len(token.text) > MAX_PAGING_DIGITS:
            raise QueryNotSupported(f"the {clause} number is too large")
        self._next()
        return int(token.text)


def render(query: Query) -> str:
    """Query text that parses back to `query`: keywords upper case, single spaces."""
    if query.select == "*":
        selection = "*"
    elif query.select == "count":
        selection = "COUNT(*)"
    else:
        selection = ", ".join(query.select)
    parts = [f"SELECT {selection} FROM {query.entity}"]
    if query.where:
        parts.append("WHERE " + " AND ".join(render_condition(c) for c in query.where))
    if query.order_by:
        keys = (f"{k.field} {'DESC' if k.descending else 'ASC'}" for k in query.order_by)
        parts.append("ORDERBY " + ", ".join(keys))
    if query.start_position is not None:
        parts.append(f"STARTPOSITION {query.start_position}")
    if query.max_results is not None:
        parts.append(f"MAXRESULTS {query.max_results}")
    return " ".join(parts)


def render_condition(condition: Condition) -> str:
    if isinstance(condition, In):
        values = ", ".join(render_value(v) for v in condition.values)
        return f"{condition.field} IN ({values})"
    return f"{condition.field} {condition.op} {render_value(condition.value)}"


def render_value(value: Value) -> str:
    if isinstance(value, String):
        return quote(value.value)
    if isinstance(value, Number):
        return value.text
    return "true" if value.value else "false"

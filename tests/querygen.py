"""QBO query texts built from a fake Intuit company's actual values, for differential tests.

`QueryBuilder(source, docs).query()` writes one query over any entity the fake Intuit keeps
(`SELECT *`, `COUNT(*)` or a projection such as `SELECT Id, SyncToken`).
`source` makes every choice: `RandomSource` (a seeded `random.Random`: large, deterministic
sets) or, in hypothesis tests, one drawing from strategies (shrinkable). Literals come from
the documents (names with apostrophes and non-ASCII, ids, refs, dates, amounts, MetaData
times) and from `source.text()`. Most queries are ones qbproxy answers from its cache; a
share is deliberately ones it must forward (README "What is answered from cache").

Independent of `qbproxy.core.qbql` and of the fake's evaluator on purpose: this is test input.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

from fake_intuit.catalog import SPECS

T = TypeVar("T")
Doc = dict[str, Any]
Kind = Literal["id", "text", "ref", "bool", "money", "date", "instant"]

# Characters `RandomSource.text()` writes literals from: quotes, backslashes, LIKE's `%`
# and `_`, non-ASCII.
TEXT_ALPHABET = "abcmxyzABMZ 019'\\%_-.&éÖøåŁ北"


class Source(Protocol):
    """Where a builder's choices come from."""

    def choice(self, options: Sequence[T]) -> T: ...

    def integer(self, low: int, high: int) -> int: ...

    def chance(self, p: float) -> bool: ...

    def text(self) -> str:
        """An arbitrary literal text (unescaped)."""
        ...


class RandomSource:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def text(self) -> str:
        return "".join(self.rng.choice(TEXT_ALPHABET) for _ in range(self.rng.randint(1, 8)))


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: Kind
    path: tuple[str, ...]


# The filterable fields of qbo-api.md ("Query language", "Entities") as the fake Intuit's
# catalog lists them (its choices where qbo-api.md is unsure are in fake-intuit/README.md):
# every entity, with the kinds its evaluator compares them as.
FIELDS: dict[str, tuple[Field, ...]] = {
    name: tuple(Field(field, kind, path) for field, (kind, path) in spec.fields.items())
    for name, spec in SPECS.items()
}
ENTITIES = tuple(FIELDS)
# Offsets MetaData literals are written in; Intuit writes its own as -07:00 here.
OFFSETS = tuple(dt.timezone(dt.timedelta(minutes=m)) for m in (-420, 0, 330, -600, 840, -59))
COMPARISONS = ("=", "<", ">", "<=", ">=")


def quote(text: str) -> str:
    """A string literal, escaped Intuit-style: `\\'` for an apostrophe, `\\\\` for a backslash."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dig(doc: Doc, path: tuple[str, ...]) -> Any:
    value: Any = doc
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


class QueryBuilder:
    def __init__(self, source: Source, docs: dict[str, list[Doc]]) -> None:
        self.s = source
        self.docs = docs
        # Conditions take most values from one document, so that ANDed ones overlap.
        self.anchor: Doc | None = None
        self.values: dict[tuple[str, str], list[Any]] = {}
        # Top-level properties of each entity's documents, for projections.
        self.properties = {e: sorted({key for doc in docs[e] for key in doc}) for e in docs}
        for entity, fields in FIELDS.items():
            for field in fields:
                found = {dig(doc, field.path) for doc in docs[entity]} - {None}
                self.values[entity, field.name] = sorted(found, key=str)

    # -- whole queries ----------------------------------------------------------------------
    def query(self) -> str:
        s = self.s
        entity = s.choice(ENTITIES)
        self.anchor = s.choice(self.docs[entity]) if self.docs[entity] and s.chance(0.6) else None
        if s.chance(0.07):
            return self.forwarded(entity)
        count = s.chance(0.15)
        if count:
            selection = self.kw("COUNT") + s.choice(("(*)", "(*)", "( * )"))
        else:
            selection = self.projection(entity) if s.chance(0.3) else "*"
        parts = [self.kw("SELECT"), selection, self.kw("FROM"), self.entity_name(entity)]
        n_conditions = s.choice((0, 1, 1, 1, 2, 2, 3))
        if n_conditions:
            conditions = [self.condition(entity) for _ in range(n_conditions)]
            parts += [self.kw("WHERE"), f" {self.kw('AND')} ".join(conditions)]
        if s.chance(0.1 if count else 0.55):
            parts.append(self.order_by(entity))
        if s.chance(0.35 if count else 0.6):
            parts.append(self.paging(entity))
        return self.join(parts)

    def forwarded(self, entity: str) -> str:
        """A query qbproxy must forward: outside its grammar or its answered subset."""
        s = self.s
        name = self.entity_name(entity)
        field = s.choice(FIELDS[entity][1:])
        cond = self.condition_on(entity, field)
        options = (
            f"SELECT Id, {field.name} FROM {name}"
            if "." in field.name
            else f"SELECT Id, MetaData.LastUpdatedTime FROM {name}",
            f"SELECT *, MetaData.CreateTime FROM {name}",
            f"SELECT Id, * FROM {name}",
            f"SELECT * FROM {name} WHERE {cond} {self.kw('OR')} {self.condition(entity)}",
            f"SELECT * FROM {name} WHERE {self.kw('NOT')} {cond}",
            f"SELECT * FROM {name} WHERE Id != '1'",
            f"SELECT * FROM {name} WHERE Balance BETWEEN '1' AND '500'",
            f"SELECT * FROM {name} WHERE Notes = 'x'",
            f"SELECT * FROM {name} WHERE {field.name.lower()} = 'x'",
            f"SELECT * FROM {name} ORDERBY Nope",
            f"SELECT * FROM {name} MAXRESULTS 1001",
            f"SELECT * FROM {name} MAXRESULTS 0",
            f"SELECT * FROM {name} STARTPOSITION 0",
            f"SELECT * FROM {name} STARTPOSITION 2 STARTPOSITION 3",
            f"SELECT * FROM {name} WHERE Id > '5'",
            f"SELECT * FROM {name} WHERE Id = ' '",
            f"SELECT * FROM {name} WHERE MetaData.CreateTime > '2024-01-01T00:00:00'",
            f"SELECT * FROM {name} WHERE {cond};",
            f"SELECT * {name}",
            f"SELECT * FROM {name} WHERE",
            "SELECT * FROM Invoice WHERE TotalAmt > '100'",
            "SELECT * FROM Vendor",
            "SELECT COUNT(*) FROM Item",
            "SELECT * FROM Widget",
            "SELECT * FROM Customer WHERE Active = 'true'",
            "SELECT * FROM Invoice ORDERBY CustomerRef",
            "SELECT * FROM Payment WHERE CustomerRef > '3'",
            "SELECT * FROM Customer WHERE CompanyName = ' '",
            'SELECT * FROM Customer WHERE DisplayName = "Cool Cars"',
            "SELECT * FROM Customer ORDERBY DisplayName, DisplayName DESC",
            "SELECT * FROM Invoice WHERE TxnDate = '2024-02-30'",
            "SELECT * FROM Invoice WHERE Balance > 1e2",
            "",
        )
        return s.choice(options)

    def join(self, parts: list[str]) -> str:
        out = parts[0]
        for part in parts[1:]:
            gap = " " if not self.s.chance(0.05) else self.s.choice(("  ", "\n", "\t", " \r\n "))
            out += gap + part
        return out

    def projection(self, entity: str) -> str:
        """`Id, DisplayName`-style names: properties the documents have (any case, repeats),
        sometimes one they lack; or python-quickbooks' `*, Sku`."""
        s = self.s
        if s.chance(0.1):
            return "*, " + s.choice(("Sku", "Name", "sku, Id"))
        names = []
        for _ in range(s.choice((1, 1, 2, 2, 2, 3, 4))):
            name = s.choice(self.properties[entity]) if not s.chance(0.1) else "Nope"
            style = s.choice(("as is", "as is", "as is", "lower", "upper"))
            names.append(name.lower() if style == "lower" else name.upper() if style == "upper"
                         else name)  # fmt: skip
        return s.choice((", ", ",", " , ")).join(names)

    # -- words ------------------------------------------------------------------------------
    def kw(self, word: str) -> str:
        style = self.s.choice(("upper", "upper", "upper", "lower", "title", "mixed"))
        if style == "upper":
            return word.upper()
        if style == "lower":
            return word.lower()
        if style == "title":
            return word.title()
        return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(word))

    def entity_name(self, entity: str) -> str:
        return self.s.choice((entity, entity, entity.lower(), entity.upper()))

    def field_name(self, field: Field) -> str:
        if field.name.startswith("MetaData.") and self.s.chance(0.3):
            return "Metadata." + field.name.removeprefix("MetaData.")
        return field.name

    # -- conditions -------------------------------------------------------------------------
    def condition(self, entity: str) -> str:
        return self.condition_on(entity, self.s.choice(FIELDS[entity]))

    def condition_on(self, entity: str, field: Field) -> str:
        name = self.field_name(field)
        values = self.values[entity, field.name]
        own = dig(self.anchor, field.path) if self.anchor else None
        if own is not None and self.s.chance(0.8):
            values = [own]
        match field.kind:
            case "id":
                return self.id_condition(name, values)
            case "text":
                return self.text_condition(name, values)
            case "ref":
                return self.ref_condition(name, values)
            case "bool":
                return self.bool_condition(name)
            case "money":
                return self.money_condition(name, values)
            case "date":
                return self.date_condition(name, values)
            case "instant":
                return self.instant_condition(name, values)

    def pick(self, values: list[Any], fallback: Any) -> Any:
        return self.s.choice(values) if values else fallback

    def in_list(self, literals: list[str]) -> str:
        return f"{self.kw('IN')} ({', '.join(literals)})"

    def id_condition(self, name: str, ids: list[str]) -> str:
        s = self.s

        def literal() -> str:
            id_ = self.pick(ids, "1") if not s.chance(0.1) else str(s.integer(0, 99999))
            return id_ if s.chance(0.3) else quote(id_)

        if s.chance(0.3):
            return f"{name} {self.in_list([literal() for _ in range(s.integer(1, 4))])}"
        return f"{name} = {literal()}"

    def text_literal(self, values: list[str], piece: bool = False) -> str:
        """A text value: an actual one in any case, a piece of one, or arbitrary text."""
        s = self.s
        if not values or s.chance(0.1):
            return s.text()
        value = s.choice(values)
        if piece and len(value) > 1:
            start = s.integer(0, len(value) - 1)
            value = value[start : s.integer(start + 1, len(value))]
        match s.choice(("as is", "as is", "upper", "lower", "swapcase")):
            case "upper":
                return value.upper()
            case "lower":
                return value.lower()
            case "swapcase":
                return value.swapcase()
        return value

    def like_pattern(self, values: list[str]) -> str:
        s = self.s
        value = self.text_literal(values)
        cut = s.integer(0, len(value))
        other = s.integer(cut, len(value))
        match s.choice(("prefix", "prefix", "suffix", "middle", "split", "exact", "all")):
            case "prefix":
                return value[: max(cut, 1)] + "%"
            case "suffix":
                return "%" + value[cut:]
            case "middle":
                return "%" + value[cut:other] + "%"
            case "split":
                return value[:cut] + "%" + value[other:]
            case "exact":
                return value
        return "%"

    def text_condition(self, name: str, values: list[str]) -> str:
        s = self.s
        op = s.choice(("=", "=", "LIKE", "LIKE", "LIKE", "IN", "<", ">", "<=", ">="))
        if op == "LIKE":
            return f"{name} {self.kw('LIKE')} {quote(self.like_pattern(values))}"
        if op == "IN":
            items = [quote(self.text_literal(values)) for _ in range(s.integer(1, 4))]
            return f"{name} {self.in_list(items)}"
        return f"{name} {op} {quote(self.text_literal(values, piece=op != '='))}"

    def ref_condition(self, name: str, values: list[str]) -> str:
        s = self.s

        def literal() -> str:
            return quote(self.pick(values, "1") if not s.chance(0.1) else str(s.integer(1, 999)))

        if s.chance(0.3):
            return f"{name} {self.in_list([literal() for _ in range(s.integer(1, 4))])}"
        return f"{name} = {literal()}"

    def bool_condition(self, name: str) -> str:
        s = self.s
        if s.chance(0.3):
            items = s.choice((["true", "false"], ["false"], ["true"], ["false", "true"]))
            return f"{name} {self.in_list([self.kw(v) for v in items])}"
        return f"{name} = {self.kw(s.choice(('true', 'false')))}"

    def money_literal(self, values: list[Any]) -> str:
        s = self.s
        amount = Decimal(str(self.pick(values, 0)))
        match s.choice(("actual", "actual", "zero", "shifted", "negative")):
            case "zero":
                amount = Decimal(0)
            case "shifted":
                amount += Decimal(s.integer(-500, 500)) / 100
            case "negative":
                amount = -Decimal(s.integer(1, 100))
        text = s.choice((str(amount), f"{amount:.2f}", f"{amount:.0f}"))
        return text if s.chance(0.3) else quote(text)

    def money_condition(self, name: str, values: list[Any]) -> str:
        s = self.s
        if s.chance(0.15):
            items = [self.money_literal(values) for _ in range(s.integer(1, 3))]
            return f"{name} {self.in_list(items)}"
        return f"{name} {s.choice(COMPARISONS)} {self.money_literal(values)}"

    def date_literal(self, values: list[str]) -> str:
        day = dt.date.fromisoformat(self.pick(values, "2024-01-01"))
        if self.s.chance(0.4):
            day += dt.timedelta(days=self.s.choice((-30, -1, 1, 7)))
        return quote(day.isoformat())

    def date_condition(self, name: str, values: list[str]) -> str:
        s = self.s
        if s.chance(0.15):
            items = [self.date_literal(values) for _ in range(s.integer(1, 3))]
            return f"{name} {self.in_list(items)}"
        return f"{name} {s.choice(COMPARISONS)} {self.date_literal(values)}"

    def instant_literal(self, values: list[str]) -> str:
        """A MetaData time near an actual one, in one of several offsets and spellings."""
        s = self.s
        moment = dt.datetime.fromisoformat(self.pick(values, "2024-01-01T00:00:00-07:00"))
        moment += dt.timedelta(seconds=s.choice((0, 0, 0, -1, 1, 3600, -86400, 40 * 86400)))
        text = moment.astimezone(s.choice(OFFSETS)).isoformat()
        match s.choice(("plain", "plain", "Z", "no colon", "fraction")):
            case "Z":
                text = moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
            case "no colon":
                text = text[:-3] + text[-2:]
            case "fraction":
                text = text[:19] + s.choice((".000", ".5", ".000001")) + text[19:]
        return quote(text)

    def instant_condition(self, name: str, values: list[str]) -> str:
        s = self.s
        if s.chance(0.1):
            items = [self.instant_literal(values) for _ in range(s.integer(1, 3))]
            return f"{name} {self.in_list(items)}"
        return f"{name} {s.choice(COMPARISONS)} {self.instant_literal(values)}"

    # -- ORDERBY and paging -----------------------------------------------------------------
    def order_by(self, entity: str) -> str:
        s = self.s
        sortable = [f for f in FIELDS[entity] if f.kind != "ref"]
        first = s.choice(sortable)
        fields = [first]
        if s.chance(0.4):
            second = s.choice(sortable)
            if second != first:
                fields.append(second)
        keys = [self.field_name(f) + s.choice(("", " " + self.kw("ASC"), " " + self.kw("DESC")))
                for f in fields]  # fmt: skip
        head = self.kw("ORDERBY") if s.chance(0.6) else f"{self.kw('ORDER')} {self.kw('BY')}"
        return f"{head} {', '.join(keys)}"

    def paging(self, entity: str) -> str:
        s = self.s
        n = len(self.docs[entity])
        clauses = []
        if s.chance(0.7):
            start = s.choice((1, 1, 1, 2, 3, 10, n // 2, n, n + 1, 1001))
            clauses.append(f"{self.kw('STARTPOSITION')} {max(start, 1)}")
        if s.chance(0.8) or not clauses:
            size = s.choice((1, 2, 3, 5, 10, 10, 50, 100, 999, 1000))
            clauses.append(f"{self.kw('MAXRESULTS')} {size}")
        if s.chance(0.3):
            clauses.reverse()  # qbo-api.md: MAXRESULTS may come before STARTPOSITION
        return " ".join(clauses)

"""Projections (`SELECT Id, DisplayName FROM Vendor`): rows cut from cached whole documents.

Intuit's shape for a projection is unsure (qbo-api.md, "Query language"). The proxy gives
the fake Intuit's documented choice (fake-intuit/README.md, "Choices"), which the
differential test holds it to: a row carries the top-level properties named, matched
case-insensitively and in the document's own order, plus `"domain": "QBO"` and
`"sparse": true`, nothing else; a name the document lacks adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson


def canonical_names(names: Iterable[str]) -> tuple[str, ...]:
    """The projection key: lower-cased, unique, sorted (names match case-insensitively, and
    their order and repeats do not change a row's properties)."""
    return tuple(sorted({name.lower() for name in names}))


def project(doc: str | bytes, names: frozenset[str]) -> str:
    """The projected row of one entity document; `names` lower-cased (`canonical_names`).

    Values are re-encoded by orjson: the same JSON values, not always the same bytes
    (design.md promise 1 allows that)."""
    whole = orjson.loads(doc)
    row = {key: value for key, value in whole.items() if key.lower() in names}
    row["domain"] = "QBO"
    row["sparse"] = True
    return orjson.dumps(row).decode()

"""What a `POST .../batch` body asks for (pure): its query items, and the tables its
write items can change. Anything not understood counts as a write to every table."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from qbproxy.core.catalog import Entity
from qbproxy.core.deps import ALL, tables_changed

# Keys of a BatchItemRequest that are not the entity (qbo-api.md, Envelopes: Batch).
_ITEM_KEYS = frozenset({"bId", "operation", "optionsData"})


@dataclass(frozen=True, slots=True)
class Batch:
    queries: tuple[tuple[str, str], ...]  # (bId, query text) of the query items
    tables: frozenset[Entity]  # what the write items can change
    queries_only: bool  # no item writes (or might): the batch is a read


_UNSURE = Batch((), ALL, False)


def parse_batch(body: bytes) -> Batch:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _UNSURE
    items = doc.get("BatchItemRequest") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        return _UNSURE
    queries: list[tuple[str, str]] = []
    tables: frozenset[Entity] = frozenset()
    writes = False
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("bId"), str):
            return _UNSURE
        if "operation" not in item and isinstance(item.get("Query"), str) and len(item) == 2:
            queries.append((item["bId"], item["Query"]))
            continue
        operation = item.get("operation")
        entities = [key for key in item if key not in _ITEM_KEYS]
        if not isinstance(operation, str) or len(entities) != 1:
            return _UNSURE
        writes = True
        doc = item[entities[0]]
        keys = frozenset(doc) if isinstance(doc, dict) else None
        tables |= tables_changed(entities[0], operation, keys)
    return Batch(tuple(queries), tables, not writes)

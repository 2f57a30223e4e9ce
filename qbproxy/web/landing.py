"""Landing one entity Intuit answered with as a cache row: a read's fetch, a write's
write-through. It lands only under the generation its ticket recorded (no purge since)."""

from __future__ import annotations

from typing import Any

import orjson

from qbproxy.core.catalog import Entity, row_values
from qbproxy.db.tables import FillTicket
from qbproxy.errors import StoreUnavailable
from qbproxy.services import Proxy
from qbproxy.web.relay import note_store_failure


async def fill_row(
    proxy: Proxy, ticket: FillTicket, rows: list[tuple[str, tuple[Any, ...]]]
) -> None:
    """Land one entity Intuit just returned, if no purge came since the ticket was taken."""
    if not rows:
        return
    entity = ticket.entity.name
    try:
        if await proxy.rows.fill(ticket, rows):
            proxy.metrics.rows_filled.labels(entity).inc()
            proxy.metrics.fills.labels(entity, "row", "landed").inc()
        else:
            proxy.metrics.fills.labels(entity, "row", "discarded").inc()
    except StoreUnavailable as exc:
        note_store_failure(proxy, exc)


def entity_row(
    entity: Entity, body: bytes, entity_id: str | None
) -> list[tuple[str, tuple[Any, ...]]]:
    """The entity of a read or write answer as a cache row; nothing if it is not one."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    item = doc.get(entity.name) if isinstance(doc, dict) else None
    if not isinstance(item, dict) or (entity_id is not None and item.get("Id") != entity_id):
        return []
    values = row_values(entity, item)
    return [] if values is None else [(orjson.dumps(item).decode(), values)]

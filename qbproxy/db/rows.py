"""Cache rows: guarded fills, whole-load completion, CDC changes, and the selects that
answer from them (asyncpg).

Every statement is keyed by realm. Fills are guarded by the table's generation, read under
a row lock in the same transaction as the upsert, so a fill that raced a purge never lands
(design.md, promise 2).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg

from qbproxy.core.catalog import ENTITIES, PG_TYPES, Entity
from qbproxy.db import reports
from qbproxy.db.pool import Pool
from qbproxy.db.tables import FillTicket

log = logging.getLogger("qbproxy.store")

Row = tuple[str, tuple[Any, ...]]  # (document text, column values)

# FOR SHARE: a purge (UPDATE) waits for this fill's transaction, then invalidates it.
LOCK_GENERATION = """
SELECT generation FROM qbo_table_state WHERE realm_id = $1 AND entity = $2 FOR SHARE
"""

# The guard of a fill that also updates the state row: an update lock from the start, so
# two guarded transactions never deadlock upgrading a share lock.
LOCK_SYNC_STATE = """
SELECT generation, synced_at, complete_generation IS NOT DISTINCT FROM generation AS was_complete
FROM qbo_table_state WHERE realm_id = $1 AND entity = $2
FOR NO KEY UPDATE
"""

# A whole load landed under generation $3: complete, and CDC may refresh it from Intuit's
# `time` ($5) on. $6 = $3 + 1 when the table was complete under $3 before (expired, not
# purged): answers kept under $3 in any instance's memory came from the rows replaced.
COMPLETE_WHOLE_LOAD = """
UPDATE qbo_table_state
SET generation = $6, complete_generation = $6, loaded_at = $4, synced_at = $5,
    reloaded_at = $4
WHERE realm_id = $1 AND entity = $2 AND generation = $3
"""

# A CDC landed under generation $3. With changes, $4 = $3 + 1: rows and answers kept under
# the old generation (in any instance's memory) never outlive the rows they came from.
COMPLETE_CDC = """
UPDATE qbo_table_state
SET generation = $4, complete_generation = $4, loaded_at = $5, synced_at = $6
WHERE realm_id = $1 AND entity = $2 AND generation = $3
"""

# A row kept under its table's current generation, with its age (qbproxy.core.policy
# judges it); a row from before a purge is never a candidate.
ROW = """
SELECT r.doc, extract(epoch FROM now() - r.cached_at)::float8 AS age FROM {table} r
JOIN qbo_table_state s ON s.realm_id = r.realm_id AND s.entity = $3
WHERE r.realm_id = $1 AND r.id = $2 AND r.gen = s.generation
"""

# The realm's one object of a single-object entity (CompanyInfo, Preferences).
SINGLE = """
SELECT r.doc, extract(epoch FROM now() - r.cached_at)::float8 AS age FROM {table} r
JOIN qbo_table_state s ON s.realm_id = r.realm_id AND s.entity = $2
WHERE r.realm_id = $1 AND r.gen = s.generation
ORDER BY r.id LIMIT 1
"""


def _upsert_sql(entity: Entity) -> str:
    columns = ["realm_id", "gen", "cached_at", "doc", *(f.column for f in entity.fields)]
    types = ["text", "bigint", "timestamptz", "text", *(PG_TYPES[f.type] for f in entity.fields)]
    unnest = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
    return (
        f"INSERT INTO {entity.table} ({', '.join(columns)}) SELECT * FROM unnest({unnest}) "
        f"ON CONFLICT (realm_id, id) DO UPDATE SET {updates}"
    )


def _by_entity(template: str) -> dict[str, str]:
    return {e.name: template.format(table=e.table) for e in ENTITIES}


_UPSERT = {e.name: _upsert_sql(e) for e in ENTITIES}
_ROW = _by_entity(ROW)
_SINGLE = _by_entity(SINGLE)
_DROP_OLDER = _by_entity("DELETE FROM {table} WHERE realm_id = $1 AND cached_at < $2")
_DELETE_IDS = _by_entity("DELETE FROM {table} WHERE realm_id = $1 AND id = ANY($2::bigint[])")
# Every row of a refreshed table is known current as of the refresh's start: fresh for
# reads by id under the table's generation.
_RESTAMP = _by_entity(
    "UPDATE {table} SET gen = $2, cached_at = $3"
    " WHERE realm_id = $1 AND (gen <> $2 OR cached_at <> $3)"
)


class Rows:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def row(
        self, realm: str, entity: Entity, entity_id: int | None
    ) -> tuple[str, float] | None:
        """(document, age in seconds) of the row under its table's current generation;
        entity_id None: the realm's one object of a single-object entity."""
        async with self._pool.acquire("read") as conn:
            if entity_id is None:
                row = await conn.fetchrow(_SINGLE[entity.name], realm, entity.name)
            else:
                row = await conn.fetchrow(_ROW[entity.name], realm, entity_id, entity.name)
        return None if row is None else (row["doc"], row["age"])

    async def select(self, realm: str, sql: str, args: Sequence[Any]) -> list[str]:
        async with self._pool.acquire("select") as conn:
            rows = await conn.fetch(sql, realm, *args)
        return [row[0] for row in rows]

    async def exists(self, realm: str, sql: str, args: Sequence[Any]) -> bool:
        async with self._pool.acquire("select") as conn:
            found: bool = await conn.fetchval(sql, realm, *args)
        return found

    async def count(self, realm: str, sql: str, args: Sequence[Any]) -> int:
        async with self._pool.acquire("count") as conn:
            n: int = await conn.fetchval(sql, realm, *args)
        return n

    async def fill(self, ticket: FillTicket, rows: Sequence[Row]) -> bool:
        """Upsert rows; False (nothing landed) if a purge came since the ticket."""
        async with self._pool.acquire("fill") as conn, conn.transaction():
            current = await conn.fetchval(LOCK_GENERATION, ticket.realm, ticket.entity.name)
            if current != ticket.generation:
                _discarded(ticket)
                return False
            if rows:
                await _upsert(conn, ticket, ticket.generation, rows)
            return True

    async def complete_whole_load(self, ticket: FillTicket, synced_at: dt.datetime | None) -> bool:
        """Mark the table whole as of Intuit's `synced_at`; rows this load did not see
        (deleted at Intuit) go."""
        entity = ticket.entity
        async with self._pool.acquire("complete") as conn, conn.transaction():
            state = await _lock_sync_state(conn, ticket)
            if state is None:
                return False
            await conn.execute(_DROP_OLDER[entity.name], ticket.realm, ticket.started_at)
            generation = ticket.generation
            if state["was_complete"]:
                generation += 1
                await conn.execute(
                    _RESTAMP[entity.name], ticket.realm, generation, ticket.started_at
                )
            status = await conn.execute(
                COMPLETE_WHOLE_LOAD,
                ticket.realm,
                entity.name,
                ticket.generation,
                ticket.started_at,
                synced_at,
                generation,
            )
            return bool(status == "UPDATE 1")

    async def apply_changes(
        self,
        ticket: FillTicket,
        rows: Sequence[Row],
        deleted_ids: Sequence[int],
        synced_at: dt.datetime,
        *,
        asked_from: dt.datetime,
    ) -> bool:
        """Land a CDC answer's changes to one table and mark it complete, all or nothing
        (False: nothing landed), only if no purge came since the ticket and the table's
        synced_at is still `asked_from`, the one the call's changedSince was computed from:
        a refresh that landed meanwhile (say an older whole load) may have put back rows
        older than what this answer leaves out."""
        entity = ticket.entity
        async with self._pool.acquire("cdc") as conn, conn.transaction():
            state = await _lock_sync_state(conn, ticket)
            if rows or deleted_ids:
                # A change Intuit reports can move any report of the realm (an edit made
                # outside the proxy): purge them, whether or not the rows land here. After
                # the table's lock, in the order every purge takes them (no deadlock).
                await conn.fetchval(reports.PURGE, ticket.realm)
            if state is None or state["synced_at"] != asked_from:
                return False
            generation = ticket.generation + 1 if rows or deleted_ids else ticket.generation
            if rows:
                await _upsert(conn, ticket, generation, rows)
            if deleted_ids:
                await conn.execute(_DELETE_IDS[entity.name], ticket.realm, list(deleted_ids))
            await conn.execute(_RESTAMP[entity.name], ticket.realm, generation, ticket.started_at)
            status = await conn.execute(
                COMPLETE_CDC,
                ticket.realm,
                entity.name,
                ticket.generation,
                generation,
                ticket.started_at,
                synced_at,
            )
            return bool(status == "UPDATE 1")


async def _upsert(
    conn: asyncpg.Connection, ticket: FillTicket, generation: int, rows: Sequence[Row]
) -> None:
    columns: list[list[Any]] = [
        [ticket.realm] * len(rows),
        [generation] * len(rows),
        [ticket.started_at] * len(rows),
        [doc for doc, _ in rows],
    ]
    columns.extend(list(col) for col in zip(*(values for _, values in rows), strict=True))
    await conn.execute(_UPSERT[ticket.entity.name], *columns)


async def _lock_sync_state(conn: asyncpg.Connection, ticket: FillTicket) -> asyncpg.Record | None:
    """The table's state row, locked for this transaction; None if a purge came since the
    ticket (generation check: a fill that raced a write must not land)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        LOCK_SYNC_STATE, ticket.realm, ticket.entity.name
    )
    if row is None or row["generation"] != ticket.generation:
        _discarded(ticket)
        return None
    return row


def _discarded(ticket: FillTicket) -> None:
    log.info(
        "[CACHE] fill of %s for realm %s discarded: purged while loading",
        ticket.entity.name,
        ticket.realm,
    )

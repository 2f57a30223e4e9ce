"""The Postgres side: table state, guarded fills, purges and cached reads (asyncpg).

Every statement is a named constant keyed by realm. Fills are guarded by the table's
generation, read under a row lock in the same transaction as the upsert, so a fill that
raced a purge never lands (design.md, promise 2).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from qbproxy.core.catalog import ENTITIES, PG_TYPES, Entity
from qbproxy.core.cdc import SyncState
from qbproxy.errors import StoreUnavailable
from qbproxy.metrics import Metrics
from qbproxy.sync.invalidation import notification

log = logging.getLogger("qbproxy.store")

ENSURE_STATE = """
INSERT INTO qbo_table_state (realm_id, entity) VALUES ($1, $2)
ON CONFLICT (realm_id, entity) DO NOTHING
"""

# Complete: the last whole load landed under the current generation and is within the TTL.
TABLE_STATE = """
SELECT generation,
       coalesce(complete_generation = generation
                AND loaded_at > now() - make_interval(secs => $3), false) AS complete,
       loaded_at,
       coalesce(load_lease_until > now(), false) AS leased,
       extract(epoch FROM now() - loaded_at)::float8 AS age
FROM qbo_table_state WHERE realm_id = $1 AND entity = $2
"""

# One whole-table load per realm and table across every instance (design.md, "Many
# proxies, one Postgres"). Taken when free or expired; renewed by the holder per page.
ACQUIRE_LEASE = """
UPDATE qbo_table_state
SET load_lease_until = now() + make_interval(secs => $4), load_lease_owner = $3
WHERE realm_id = $1 AND entity = $2
  AND (load_lease_until IS NULL OR load_lease_until < now() OR load_lease_owner = $3)
"""

RELEASE_LEASE = """
UPDATE qbo_table_state SET load_lease_until = NULL, load_lease_owner = NULL
WHERE realm_id = $1 AND entity = $2 AND load_lease_owner = $3
"""

PROXY_SECRET = """
WITH created AS (
    INSERT INTO qbo_proxy_secret (secret) VALUES ($1)
    ON CONFLICT (id) DO NOTHING RETURNING secret
)
SELECT secret FROM created UNION ALL SELECT secret FROM qbo_proxy_secret
LIMIT 1
"""

REMEMBER_TOKEN = """
INSERT INTO qbo_token_trust (realm_id, fingerprint, accepted_at) VALUES ($1, $2, now())
ON CONFLICT (realm_id, fingerprint) DO UPDATE SET accepted_at = now()
"""

# Seconds since Intuit last accepted this token for this realm.
TOKEN_AGE = """
SELECT extract(epoch FROM now() - accepted_at)::float8 FROM qbo_token_trust
WHERE realm_id = $1 AND fingerprint = $2
"""

FORGET_TOKEN = "DELETE FROM qbo_token_trust WHERE fingerprint = $1"

FORGET_OLD_TOKENS = """
DELETE FROM qbo_token_trust WHERE accepted_at < now() - make_interval(secs => $1)
"""

BEGIN_FILL = """
SELECT generation, now() AS started_at FROM qbo_table_state
WHERE realm_id = $1 AND entity = $2
"""

# FOR SHARE: a purge (UPDATE) waits for this fill's transaction, then invalidates it.
LOCK_GENERATION = """
SELECT generation FROM qbo_table_state WHERE realm_id = $1 AND entity = $2 FOR SHARE
"""

COMPLETE_LOAD = """
UPDATE qbo_table_state SET complete_generation = $3, loaded_at = $4
WHERE realm_id = $1 AND entity = $2 AND generation = $3
"""

PURGE = """
INSERT INTO qbo_table_state (realm_id, entity, generation, purged_at)
SELECT $1, e, 2, now() FROM unnest($2::text[]) AS e
ON CONFLICT (realm_id, entity) DO UPDATE
SET generation = qbo_table_state.generation + 1, complete_generation = NULL,
    purged_at = now()
RETURNING entity, generation, now() AS at
"""

# Every instance's memory learns of the purge at commit (qbproxy/invalidation.py).
NOTIFY_PURGE = "SELECT nextval('qbo_purge_seq') AS seq"
NOTIFY = "SELECT pg_notify('qbproxy_purge', $1)"

FRESH_ROW = """
SELECT r.doc FROM {table} r
JOIN qbo_table_state s ON s.realm_id = r.realm_id AND s.entity = $3
WHERE r.realm_id = $1 AND r.id = $2 AND r.gen = s.generation
  AND r.cached_at > now() - make_interval(secs => $4)
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


def _drop_older_sql(entity: Entity) -> str:
    return f"DELETE FROM {entity.table} WHERE realm_id = $1 AND cached_at < $2"


async def _keep_session(conn: asyncpg.Connection) -> None:
    return None


_UPSERT = {e.name: _upsert_sql(e) for e in ENTITIES}
_DROP_OLDER = {e.name: _drop_older_sql(e) for e in ENTITIES}
_FRESH_ROW = {e.name: FRESH_ROW.format(table=e.table) for e in ENTITIES}

# Seconds each complete table of these realms stays fresh (refresh-ahead, qbproxy/ahead.py).
FRESHNESS_LEFT = """
SELECT realm_id, entity,
       extract(epoch FROM loaded_at + make_interval(secs => $2) - now())::float8 AS remaining
FROM qbo_table_state
WHERE realm_id = ANY($1::text[]) AND complete_generation = generation
  AND loaded_at > now() - make_interval(secs => $2)
"""

# --- incremental refresh through Intuit's CDC (qbproxy/cdc.py, qbproxy/fill.py) ----------

SYNC_STATES = """
SELECT entity, synced_at, reloaded_at, now() AS now,
       coalesce(complete_generation = generation
                AND loaded_at > now() - make_interval(secs => $2), false) AS complete
FROM qbo_table_state WHERE realm_id = $1
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


def _delete_ids_sql(entity: Entity) -> str:
    return f"DELETE FROM {entity.table} WHERE realm_id = $1 AND id = ANY($2::bigint[])"


# Every row of a refreshed table is known current as of the CDC's start: fresh for reads
# by id (FRESH_ROW) under the table's generation.
def _restamp_sql(entity: Entity) -> str:
    return (
        f"UPDATE {entity.table} SET gen = $2, cached_at = $3"
        " WHERE realm_id = $1 AND (gen <> $2 OR cached_at <> $3)"
    )


_DELETE_IDS = {e.name: _delete_ids_sql(e) for e in ENTITIES}
_RESTAMP = {e.name: _restamp_sql(e) for e in ENTITIES}


@dataclass(frozen=True, slots=True)
class Purged:
    generations: dict[str, int]  # entity -> its new generation
    seq: int  # position in qbo_purge_seq, acknowledged by every instance
    at: dt.datetime  # database time of the purge

    def ticket(self, realm: str, entity: Entity) -> FillTicket:
        """A fill that lands only if no purge came after this one (a write's write-through:
        a later write's purge must discard this write's older answer)."""
        return FillTicket(realm, entity, self.generations[entity.name], self.at)


@dataclass(frozen=True, slots=True)
class TableState:
    generation: int
    complete: bool
    loaded_at: dt.datetime | None
    leased: bool  # a load holds the lease (this instance or another)
    age: float | None = None  # seconds since the last whole load started (DB clock)


@dataclass(frozen=True, slots=True)
class FillTicket:
    """What a fill recorded when it started: it lands only under the same generation."""

    realm: str
    entity: Entity
    generation: int
    started_at: dt.datetime


class Store:
    """A pool that may be down: every method raises StoreUnavailable instead of a driver error."""

    def __init__(self, *, max_size: int, timeout: float, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self._max_size = max_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None

    async def open(self, dsn: str) -> None:
        # min_size=0 connects lazily, so the proxy starts (and bypasses) with Postgres down
        # and the pool reconnects by itself when it returns.
        self._pool = await asyncpg.create_pool(
            dsn,
            min_size=0,
            max_size=self._max_size,
            command_timeout=self._timeout,
            max_inactive_connection_lifetime=60,
            # Pooled connections never carry session state (no SET, LISTEN or advisory
            # locks; transactions always end), so skip the reset round trip per release.
            reset=_keep_session,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _conn(self, operation: str = "other") -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        started = time.perf_counter()
        try:
            async with self._pool.acquire(timeout=self._timeout) as conn:
                yield conn
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc
        finally:
            if self._metrics is not None:
                seconds = time.perf_counter() - started
                self._metrics.store_seconds.labels(operation).observe(seconds)

    def connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled connection whose errors surface as StoreUnavailable (read-only callers)."""
        return self._conn()

    async def ping(self) -> None:
        async with self._conn("ping") as conn:
            await conn.fetchval("SELECT 1")

    async def table_state(self, realm: str, entity: Entity, ttl: float) -> TableState | None:
        async with self._conn("state") as conn:
            row = await conn.fetchrow(TABLE_STATE, realm, entity.name, ttl)
        if row is None:
            return None
        return TableState(
            row["generation"], row["complete"], row["loaded_at"], row["leased"], row["age"]
        )

    async def freshness_left(
        self, realms: Sequence[str], ttl: float
    ) -> dict[tuple[str, str], float]:
        """(realm, entity) -> seconds until each complete table of `realms` expires; a table
        not complete (purged, expired, never loaded) is absent."""
        async with self._conn("state") as conn:
            rows = await conn.fetch(FRESHNESS_LEFT, list(realms), ttl)
        return {(r["realm_id"], r["entity"]): r["remaining"] for r in rows}

    async def begin_fill(self, realm: str, entity: Entity) -> FillTicket:
        async with self._conn("begin_fill") as conn:
            await conn.execute(ENSURE_STATE, realm, entity.name)
            row = await conn.fetchrow(BEGIN_FILL, realm, entity.name)
        assert row is not None
        return FillTicket(realm, entity, row["generation"], row["started_at"])

    async def fill(self, ticket: FillTicket, docs: Sequence[tuple[str, tuple[Any, ...]]]) -> bool:
        """Upsert (doc text, column values) rows; False (nothing landed) if a purge came since."""
        entity = ticket.entity
        async with self._conn("fill") as conn, conn.transaction():
            if not await self._generation_holds(conn, ticket):
                return False
            if docs:
                columns: list[list[Any]] = [
                    [ticket.realm] * len(docs),
                    [ticket.generation] * len(docs),
                    [ticket.started_at] * len(docs),
                    [doc for doc, _ in docs],
                ]
                columns.extend(
                    list(col) for col in zip(*(values for _, values in docs), strict=True)
                )
                await conn.execute(_UPSERT[entity.name], *columns)
            return True

    async def complete_load(self, ticket: FillTicket) -> bool:
        """Mark the table whole; rows not seen by this load (deleted at Intuit) go."""
        async with self._conn("complete") as conn, conn.transaction():
            if not await self._generation_holds(conn, ticket):
                return False
            await conn.execute(_DROP_OLDER[ticket.entity.name], ticket.realm, ticket.started_at)
            status = await conn.execute(
                COMPLETE_LOAD,
                ticket.realm,
                ticket.entity.name,
                ticket.generation,
                ticket.started_at,
            )
            return bool(status == "UPDATE 1")

    async def _generation_holds(self, conn: asyncpg.Connection, ticket: FillTicket) -> bool:
        current = await conn.fetchval(LOCK_GENERATION, ticket.realm, ticket.entity.name)
        if current != ticket.generation:
            log.info(
                "[CACHE] fill of %s for realm %s discarded: purged while loading",
                ticket.entity.name,
                ticket.realm,
            )
            return False
        return True

    async def acquire_lease(self, realm: str, entity: Entity, owner: str, seconds: float) -> bool:
        async with self._conn("lease") as conn:
            status = await conn.execute(ACQUIRE_LEASE, realm, entity.name, owner, seconds)
        return bool(status == "UPDATE 1")

    async def release_lease(self, realm: str, entity: Entity, owner: str) -> None:
        async with self._conn("lease") as conn:
            await conn.execute(RELEASE_LEASE, realm, entity.name, owner)

    async def proxy_secret(self, candidate: bytes) -> bytes:
        """The key every instance fingerprints tokens with; `candidate` if none exists yet."""
        async with self._conn("token") as conn:
            secret: bytes = await conn.fetchval(PROXY_SECRET, candidate)
        return secret

    async def remember_token(self, realm: str, fingerprint: bytes) -> None:
        async with self._conn("token") as conn:
            await conn.execute(REMEMBER_TOKEN, realm, fingerprint)

    async def token_age(self, realm: str, fingerprint: bytes) -> float | None:
        async with self._conn("token") as conn:
            age: float | None = await conn.fetchval(TOKEN_AGE, realm, fingerprint)
        return age

    async def forget_token(self, fingerprint: bytes) -> None:
        async with self._conn("token") as conn:
            await conn.execute(FORGET_TOKEN, fingerprint)

    async def forget_tokens_older_than(self, seconds: float) -> None:
        async with self._conn("token") as conn:
            await conn.execute(FORGET_OLD_TOKENS, seconds)

    async def purge(self, realm: str, entities: Sequence[Entity]) -> Purged:
        """Bump the tables' generations and tell every instance, in one transaction."""
        async with self._conn("purge") as conn, conn.transaction():
            rows = await conn.fetch(PURGE, realm, [e.name for e in entities])
            generations = {row["entity"]: row["generation"] for row in rows}
            at = rows[0]["at"]
            seq: int = await conn.fetchval(NOTIFY_PURGE)
            await conn.execute(NOTIFY, notification(realm, generations, seq))
        return Purged(generations, seq, at)

    async def fresh_row(self, realm: str, entity: Entity, entity_id: int, ttl: float) -> str | None:
        async with self._conn("read") as conn:
            doc: str | None = await conn.fetchval(
                _FRESH_ROW[entity.name], realm, entity_id, entity.name, ttl
            )
        return doc

    async def select(self, realm: str, sql: str, args: Sequence[Any]) -> list[str]:
        async with self._conn("select") as conn:
            rows = await conn.fetch(sql, realm, *args)
        return [row[0] for row in rows]

    async def count(self, realm: str, sql: str, args: Sequence[Any]) -> int:
        async with self._conn("count") as conn:
            n: int = await conn.fetchval(sql, realm, *args)
        return n

    # --- incremental refresh through CDC ----------------------------------------------

    async def sync_states(
        self, realm: str, ttl: float
    ) -> tuple[dt.datetime | None, list[SyncState]]:
        """The database's clock and every table's sync state for `realm`."""
        async with self._conn("state") as conn:
            rows = await conn.fetch(SYNC_STATES, realm, ttl)
        now = rows[0]["now"] if rows else None
        states = [
            SyncState(r["entity"], r["synced_at"], r["reloaded_at"], r["complete"]) for r in rows
        ]
        return now, states

    async def complete_whole_load(self, ticket: FillTicket, synced_at: dt.datetime | None) -> bool:
        """complete_load, also recording Intuit's time the load's rows are current as of."""
        entity = ticket.entity
        async with self._conn("complete") as conn, conn.transaction():
            state = await self._lock_sync_state(conn, ticket)
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
        rows: Sequence[tuple[str, tuple[Any, ...]]],
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
        async with self._conn("cdc") as conn, conn.transaction():
            state = await self._lock_sync_state(conn, ticket)
            if state is None or state["synced_at"] != asked_from:
                return False
            generation = ticket.generation + 1 if rows or deleted_ids else ticket.generation
            if rows:
                columns: list[list[Any]] = [
                    [ticket.realm] * len(rows),
                    [generation] * len(rows),
                    [ticket.started_at] * len(rows),
                    [doc for doc, _ in rows],
                ]
                columns.extend(
                    list(col) for col in zip(*(values for _, values in rows), strict=True)
                )
                await conn.execute(_UPSERT[entity.name], *columns)
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

    async def _lock_sync_state(
        self, conn: asyncpg.Connection, ticket: FillTicket
    ) -> asyncpg.Record | None:
        """The table's state row, locked for this transaction; None if a purge came since
        the ticket (generation check: a fill that raced a write must not land)."""
        row: asyncpg.Record | None = await conn.fetchrow(
            LOCK_SYNC_STATE, ticket.realm, ticket.entity.name
        )
        if row is None or row["generation"] != ticket.generation:
            log.info(
                "[CACHE] fill of %s for realm %s discarded: purged while loading",
                ticket.entity.name,
                ticket.realm,
            )
            return None
        return row

"""Table state (realm x entity): generations, purges, leases and sync state (asyncpg).

Returns raw facts measured on the database's clock (one clock for every instance);
whether a table is fresh is qbproxy.core.policy's to say. A purge bumps the generation
and NOTIFYs every instance in the same transaction (qbproxy/sync/purge.py waits for
their acknowledgements).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import orjson

from qbproxy.core.catalog import Entity
from qbproxy.core.cdc import SyncState
from qbproxy.core.policy import TableFacts
from qbproxy.db import reports
from qbproxy.db.pool import Pool

ENSURE_STATE = """
INSERT INTO qbo_table_state (realm_id, entity) VALUES ($1, $2)
ON CONFLICT (realm_id, entity) DO NOTHING
"""

# The facts qbproxy.core.policy judges freshness from; ages on the database's clock.
_FACTS = """generation, complete_generation,
       extract(epoch FROM now() - loaded_at)::float8 AS age,
       coalesce(load_lease_until > now(), false) AS leased"""

TABLE_STATE = f"SELECT {_FACTS} FROM qbo_table_state WHERE realm_id = $1 AND entity = $2"

# Every table of these realms (refresh-ahead looks at the realms in use at once).
REALM_STATES = f"""
SELECT realm_id, entity, {_FACTS} FROM qbo_table_state WHERE realm_id = ANY($1::text[])
"""

SYNC_STATES = f"""
SELECT entity, synced_at, reloaded_at, now() AS now, {_FACTS}
FROM qbo_table_state WHERE realm_id = $1
"""

# One refresh per realm and table across every instance (design.md, "Many proxies, one
# Postgres"). Taken when free or expired; renewed by the holder per page.
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

BEGIN_FILL = """
SELECT generation, now() AS started_at FROM qbo_table_state
WHERE realm_id = $1 AND entity = $2
"""

PURGE = """
INSERT INTO qbo_table_state (realm_id, entity, generation, purged_at)
SELECT $1, e, 2, now() FROM unnest($2::text[]) AS e
ON CONFLICT (realm_id, entity) DO UPDATE
SET generation = qbo_table_state.generation + 1, complete_generation = NULL,
    purged_at = now()
RETURNING entity, generation, now() AS at
"""

NOW = "SELECT now()"

# Every instance's memory learns of the purge at commit (qbproxy/sync/invalidation.py).
NEXT_PURGE_SEQ = "SELECT nextval('qbo_purge_seq') AS seq"
NOTIFY = "SELECT pg_notify('qbproxy_purge', $1)"


def notification(realm: str, generations: dict[str, int], seq: int) -> str:
    """The NOTIFY payload every instance applies to its memory (qbproxy/sync/invalidation.py)."""
    return orjson.dumps({"realm": realm, "generations": generations, "seq": seq}).decode()


def _facts(row: asyncpg.Record) -> TableFacts:
    return TableFacts(row["generation"], row["complete_generation"], row["age"], row["leased"])


@dataclass(frozen=True, slots=True)
class FillTicket:
    """What a fill recorded when it started: it lands only under the same generation."""

    realm: str
    entity: Entity
    generation: int
    started_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Purged:
    generations: dict[str, int]  # entity -> its new generation
    report_generation: int  # the realm's reports' new generation (every purge bumps it)
    seq: int  # position in qbo_purge_seq, acknowledged by every instance
    at: dt.datetime  # database time of the purge

    def ticket(self, realm: str, entity: Entity) -> FillTicket:
        """A fill that lands only if no purge came after this one (a write's write-through:
        a later write's purge must discard this write's older answer)."""
        return FillTicket(realm, entity, self.generations[entity.name], self.at)


class Tables:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def state(self, realm: str, entity: Entity) -> TableFacts | None:
        async with self._pool.acquire("state") as conn:
            row = await conn.fetchrow(TABLE_STATE, realm, entity.name)
        return None if row is None else _facts(row)

    async def realm_states(self, realms: Sequence[str]) -> dict[tuple[str, str], TableFacts]:
        """(realm, entity) -> facts, for every table of `realms`, in one statement."""
        async with self._pool.acquire("state") as conn:
            rows = await conn.fetch(REALM_STATES, list(realms))
        return {(r["realm_id"], r["entity"]): _facts(r) for r in rows}

    async def sync_states(self, realm: str) -> tuple[dt.datetime | None, list[SyncState]]:
        """The database's clock and every table's sync state for `realm`."""
        async with self._pool.acquire("state") as conn:
            rows = await conn.fetch(SYNC_STATES, realm)
        now = rows[0]["now"] if rows else None
        states = [SyncState(r["entity"], r["synced_at"], r["reloaded_at"], _facts(r)) for r in rows]
        return now, states

    async def begin_fill(self, realm: str, entity: Entity) -> FillTicket:
        async with self._pool.acquire("begin_fill") as conn:
            await conn.execute(ENSURE_STATE, realm, entity.name)
            row = await conn.fetchrow(BEGIN_FILL, realm, entity.name)
        assert row is not None
        return FillTicket(realm, entity, row["generation"], row["started_at"])

    async def acquire_lease(self, realm: str, entity: Entity, owner: str, seconds: float) -> bool:
        async with self._pool.acquire("lease") as conn:
            status = await conn.execute(ACQUIRE_LEASE, realm, entity.name, owner, seconds)
        return bool(status == "UPDATE 1")

    async def release_lease(self, realm: str, entity: Entity, owner: str) -> None:
        async with self._pool.acquire("lease") as conn:
            await conn.execute(RELEASE_LEASE, realm, entity.name, owner)

    async def purge(self, realm: str, entities: Sequence[Entity]) -> Purged:
        """Bump the tables' generations and the realm's reports' generation (any change
        to the realm can change a report) and tell every instance, in one transaction.
        `entities` may be empty: the reports alone are purged."""
        async with self._pool.acquire("purge") as conn, conn.transaction():
            rows = await conn.fetch(PURGE, realm, [e.name for e in entities])
            generations = {row["entity"]: row["generation"] for row in rows}
            report_generation: int = await conn.fetchval(reports.PURGE, realm)
            at = rows[0]["at"] if rows else await conn.fetchval(NOW)
            seq: int = await conn.fetchval(NEXT_PURGE_SEQ)
            await conn.execute(NOTIFY, notification(realm, generations, seq))
        return Purged(generations, report_generation, seq, at)

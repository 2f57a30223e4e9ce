"""Stored report answers and the realm's report generation (asyncpg).

Returns raw facts on the database's clock (an entry's age); whether it may be served is
qbproxy.core.policy's to say. A fill is guarded as table fills are: it records the realm's
report generation when it starts and lands only if it is unchanged, checked under a row
lock in the same transaction (a purge's UPDATE waits for it, then invalidates it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from qbproxy.core.policy import ReportEntry
from qbproxy.core.reports import CompanyDay
from qbproxy.db.pool import Pool

ENSURE_STATE = """
INSERT INTO qbo_report_state (realm_id) VALUES ($1) ON CONFLICT (realm_id) DO NOTHING
"""

BEGIN_FILL = "SELECT generation, now() AS started_at FROM qbo_report_state WHERE realm_id = $1"

# The realm's purge, run in the transaction of every table purge (qbproxy/db/tables.py):
# a fresh state row starts above the default generation a fill may have seen as absent.
PURGE = """
INSERT INTO qbo_report_state (realm_id, generation, purged_at) VALUES ($1, 2, now())
ON CONFLICT (realm_id) DO UPDATE
SET generation = qbo_report_state.generation + 1, purged_at = now()
RETURNING generation
"""

# FOR SHARE: a purge (UPDATE) waits for this fill's transaction, then invalidates it.
LOCK_GENERATION = "SELECT generation FROM qbo_report_state WHERE realm_id = $1 FOR SHARE"

# Entries of older generations, or past every window, are dropped as the realm fills: the
# table holds at most the realm's distinct keys of one TTL.
DROP_DEAD = """
DELETE FROM qbo_report
WHERE realm_id = $1 AND (gen <> $2 OR cached_at < now() - make_interval(secs => $3))
"""

UPSERT = """
INSERT INTO qbo_report (realm_id, key, gen, cached_at, company_day, utc_offset_seconds, body)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (realm_id, key) DO UPDATE
SET gen = EXCLUDED.gen, cached_at = EXCLUDED.cached_at, company_day = EXCLUDED.company_day,
    utc_offset_seconds = EXCLUDED.utc_offset_seconds, body = EXCLUDED.body
"""

# Only an entry under the realm's current generation is a candidate (a purged one never is).
ENTRY = """
SELECT r.body, extract(epoch FROM now() - r.cached_at)::float8 AS age,
       r.company_day, r.utc_offset_seconds
FROM qbo_report r JOIN qbo_report_state s ON s.realm_id = r.realm_id
WHERE r.realm_id = $1 AND r.key = $2 AND r.gen = s.generation
"""


@dataclass(frozen=True, slots=True)
class ReportTicket:
    """What a report fill recorded when it started: it lands only under this generation."""

    realm: str
    generation: int
    started_at: dt.datetime


class Reports:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def entry(self, realm: str, key: str) -> tuple[bytes, ReportEntry] | None:
        """The stored answer and its facts, if one is kept under the current generation."""
        async with self._pool.acquire("report") as conn:
            row = await conn.fetchrow(ENTRY, realm, key)
        if row is None:
            return None
        day = row["company_day"]
        offset = row["utc_offset_seconds"]
        company = None if day is None or offset is None else CompanyDay(day, offset)
        return bytes(row["body"]), ReportEntry(row["age"], company)

    async def begin_fill(self, realm: str) -> ReportTicket:
        async with self._pool.acquire("begin_fill") as conn:
            await conn.execute(ENSURE_STATE, realm)
            row = await conn.fetchrow(BEGIN_FILL, realm)
        assert row is not None
        return ReportTicket(realm, row["generation"], row["started_at"])

    async def fill(
        self,
        ticket: ReportTicket,
        key: str,
        body: bytes,
        day: CompanyDay | None,
        *,
        keep_seconds: float,
    ) -> bool:
        """Store an answer; False (nothing landed) if a purge came since the ticket."""
        async with self._pool.acquire("fill") as conn, conn.transaction():
            current = await conn.fetchval(LOCK_GENERATION, ticket.realm)
            if current != ticket.generation:
                return False
            await conn.execute(DROP_DEAD, ticket.realm, ticket.generation, keep_seconds)
            await conn.execute(
                UPSERT,
                ticket.realm,
                key,
                ticket.generation,
                ticket.started_at,
                None if day is None else day.day,
                None if day is None else day.utc_offset_seconds,
                body,
            )
            return True

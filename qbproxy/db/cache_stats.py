"""Cache-state gauges read from Postgres at scrape time (rows cached, tables complete).

Read-only, one statement, run by the admin listener under a short timeout and never on
the request path; when Postgres cannot answer the gauges are left out of the scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
from prometheus_client.core import GaugeMetricFamily, Metric

from qbproxy.core.catalog import ENTITIES

ROWS_CACHED_HELP = (
    "Entity rows held under their table's current generation, per entity, summed over "
    "realms (fresh or past the TTL; rows a purge invalidated are not counted). Read from "
    "Postgres at scrape time; absent when Postgres did not answer."
)
TABLES_COMPLETE_HELP = (
    "Realms whose table of this entity is complete (loaded whole under its current "
    "generation, within cache.ttl_seconds), so queries on it are answered from cache. Read "
    "from Postgres at scrape time; absent when Postgres did not answer."
)

# Entity and table names come from schema.ENTITIES (a whitelist); values are $n arguments.
_ROWS = " UNION ALL ".join(
    f"SELECT '{e.name}', count(*) FROM {e.table} r JOIN qbo_table_state s "
    f"ON s.realm_id = r.realm_id AND s.entity = '{e.name}' WHERE r.gen = s.generation"
    for e in ENTITIES
)
CACHE_STATE = f"""
WITH rows_cached (entity, n) AS ({_ROWS}),
complete AS (
    SELECT entity, count(*) AS n FROM qbo_table_state
    WHERE complete_generation = generation
      AND loaded_at > now() - make_interval(secs => $1)
    GROUP BY entity
)
SELECT r.entity, r.n AS rows_cached, coalesce(c.n, 0) AS tables_complete
FROM rows_cached r LEFT JOIN complete c USING (entity)
"""


@dataclass(frozen=True, slots=True)
class CacheState:
    rows_cached: dict[str, int]
    tables_complete: dict[str, int]

    def families(self) -> Iterator[Metric]:
        rows = GaugeMetricFamily("qbproxy_cache_rows", ROWS_CACHED_HELP, labels=["entity"])
        tables = GaugeMetricFamily(
            "qbproxy_cache_tables_complete", TABLES_COMPLETE_HELP, labels=["entity"]
        )
        for entity in sorted(self.rows_cached):
            rows.add_metric([entity], self.rows_cached[entity])
            tables.add_metric([entity], self.tables_complete.get(entity, 0))
        yield rows
        yield tables


async def read_cache_state(conn: asyncpg.Connection, ttl_seconds: float) -> CacheState:
    records = await conn.fetch(CACHE_STATE, ttl_seconds)
    return CacheState(
        rows_cached={r["entity"]: int(r["rows_cached"]) for r in records},
        tables_complete={r["entity"]: int(r["tables_complete"]) for r in records},
    )

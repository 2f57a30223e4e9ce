"""Cache-state gauges read from Postgres at scrape time (rows cached, tables complete).

Read-only, one statement, run by the admin listener under a short timeout and never on
the request path; when Postgres cannot answer the gauges are left out of the scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
from prometheus_client.core import GaugeMetricFamily, Metric

from qbproxy.core import policy
from qbproxy.core.catalog import ENTITIES
from qbproxy.core.policy import TableFacts, Windows

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

# Entity and table names come from the catalog (a whitelist); values are $n arguments.
_ROWS = " UNION ALL ".join(
    f"SELECT '{e.name}', count(*) FROM {e.table} r JOIN qbo_table_state s "
    f"ON s.realm_id = r.realm_id AND s.entity = '{e.name}' WHERE r.gen = s.generation"
    for e in ENTITIES
)
ROWS_CACHED = _ROWS
# Tables loaded whole and not purged since, with their ages: qbproxy.core.policy says which
# are still complete.
WHOLE_TABLES = """
SELECT entity, generation, extract(epoch FROM now() - loaded_at)::float8 AS age
FROM qbo_table_state WHERE complete_generation = generation
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


async def read_cache_state(conn: asyncpg.Connection, windows: Windows) -> CacheState:
    counts = await conn.fetch(ROWS_CACHED)
    whole = await conn.fetch(WHOLE_TABLES)
    complete: dict[str, int] = {}
    for r in whole:
        if policy.complete(TableFacts(r["generation"], r["generation"], r["age"]), windows):
            complete[r["entity"]] = complete.get(r["entity"], 0) + 1
    return CacheState(
        rows_cached={r[0]: int(r[1]) for r in counts},
        tables_complete=complete,
    )

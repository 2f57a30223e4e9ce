"""The one purge path, for writes, webhooks and `qbproxy purge` alike.

A purge bumps the tables' generations and NOTIFYs every instance in one transaction
(qbproxy/db/tables.py), drops them from this instance's memory, and waits until every
other live instance has acknowledged it (qbproxy/sync/invalidation.py): when it returns,
no instance serves what the purge invalidated (design.md, promise 2).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from qbproxy.core.catalog import Entity
from qbproxy.core.memory import Memory
from qbproxy.db.pool import Pool
from qbproxy.db.tables import Purged, Tables
from qbproxy.errors import StoreUnavailable
from qbproxy.metrics import Metrics
from qbproxy.sync.invalidation import wait_for_acks

log = logging.getLogger("qbproxy.purge")


class Purger:
    def __init__(
        self,
        tables: Tables,
        pool: Pool,
        instance_id: str,
        *,
        memory: Memory | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._tables = tables
        self._pool = pool
        self._instance_id = instance_id
        self._memory = memory
        self._metrics = metrics

    async def purge(self, realm: str, tables: Iterable[Entity], reason: str) -> Purged | None:
        """Purge `tables` of `realm`, and always the realm's reports (any change can move a
        report; `tables` may be empty). None when Postgres failed (the purge may not have
        landed: this instance's memory forgets everything, and other instances lose their
        channel too and fence themselves; the TTL bounds the rest)."""
        ordered = sorted(set(tables), key=lambda e: e.name)
        try:
            purged = await self._tables.purge(realm, ordered)
            if self._memory is not None:
                for name, generation in purged.generations.items():
                    self._memory.purged(realm, name, generation)
            await wait_for_acks(self._pool.connection, self._instance_id, purged.seq)
        except StoreUnavailable as exc:
            if self._memory is not None:
                self._memory.clear()
            if self._metrics is not None:
                self._metrics.store_errors.inc()
            log.warning("[CACHE] purge for realm %s (%s) not applied: %s", realm, reason, exc)
            return None
        if self._metrics is not None:
            for entity in ordered:
                self._metrics.purges.labels(entity.name, reason).inc()
            self._metrics.purges.labels("report", reason).inc()
        names = ",".join([*(e.name for e in ordered), "reports"])
        log.info("[CACHE] purged %s for realm %s (%s)", names, realm, reason)
        return purged

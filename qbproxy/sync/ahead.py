"""Refresh-ahead: refresh in-use tables shortly before their TTL runs out, in the background,
so that a busy realm's reads stay hits across TTL boundaries (stale-while-revalidate,
except that nothing stale is ever served: the old rows are still within their TTL).

Every tick, one statement asks Postgres how long each complete table of the realms in use
(qbproxy/core/in_use.py) stays fresh. A table within `sync.refresh_ahead_seconds` of expiry is
refreshed through the loader, with the last token a trusted caller of that realm presented:
one CDC call for the realm's tables (qbproxy/sync/refresh.py), under the same generation guard and
lease as any refresh, so a refresh racing a write does not land and instances do not refresh
a table twice. A realm with no trusted token gets nothing; a failed refresh is not retried
until the table expires, when the next request refreshes (or serves stale) as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from qbproxy.core import policy
from qbproxy.core.catalog import ENTITIES, Entity
from qbproxy.core.in_use import Demand
from qbproxy.core.memory import Memory
from qbproxy.core.policy import Windows
from qbproxy.db.tables import Tables
from qbproxy.db.tokens import Tokens
from qbproxy.errors import StoreUnavailable, UpstreamError
from qbproxy.metrics import Metrics
from qbproxy.sync.refresh import Discarded, Loaded, Loader, Refused

log = logging.getLogger("qbproxy.ahead")

# The tick is a fraction of the window (a table is looked at a few times within it), and
# at most this many seconds.
_MAX_TICK_SECONDS = 5.0
_MIN_TICK_SECONDS = 0.05


class RefreshAhead:
    def __init__(
        self,
        demand: Demand,
        tables: Tables,
        loader: Loader,
        tokens: Tokens,
        memory: Memory,
        metrics: Metrics,
        clock: Callable[[], float],
        *,
        windows: Windows,
    ) -> None:
        self._demand = demand
        self._tables = tables
        self._loader = loader
        self._tokens = tokens
        self._memory = memory
        self._metrics = metrics
        self._clock = clock
        self._windows = windows
        self.ahead = windows.ahead
        self.tick_seconds = min(_MAX_TICK_SECONDS, max(_MIN_TICK_SECONDS, self.ahead / 4))
        self._running: dict[str, asyncio.Task[None]] = {}
        # Realm -> when it may be tried again after a refresh that did not land.
        self._resting: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self.ahead > 0

    async def run(self, ready: asyncio.Event) -> None:
        """Tick until cancelled, once the cache is usable (migrations applied)."""
        if not self.enabled:
            return
        await ready.wait()
        try:
            while True:
                await asyncio.sleep(self.tick_seconds)
                try:
                    await self.tick()
                except StoreUnavailable as exc:
                    log.debug("refresh-ahead skipped a tick: %s", exc)
                except Exception:
                    # A bug here must not end refresh-ahead for good: requests still refresh.
                    log.exception("refresh-ahead tick failed")
        finally:
            await self.close()

    async def tick(self) -> None:
        """Start a background refresh for each in-use realm with a table about to expire."""
        now = self._clock()
        in_use = self._demand.in_use(now)
        for realm in [r for r, until in self._resting.items() if until <= now]:
            del self._resting[realm]
        candidates = [r for r in in_use if r not in self._running and r not in self._resting]
        if not candidates:
            return
        states = await self._tables.realm_states(candidates)
        for realm in candidates:
            expiring = [
                entity
                for entity in ENTITIES
                if entity.name in in_use[realm]
                and policy.due_ahead(states.get((realm, entity.name)), self._windows)
            ]
            if not expiring:
                continue
            authorization = self._demand.token(realm)
            if authorization is None or not await self._tokens.trusted(realm, authorization):
                if authorization is not None:
                    self._demand.forget_token(realm, authorization)
                self._metrics.refresh_ahead.labels("no_token").inc()
                continue
            self._running[realm] = asyncio.create_task(
                self._refresh(realm, expiring, authorization)
            )

    async def _refresh(self, realm: str, expiring: list[Entity], authorization: str) -> None:
        try:
            await self._refresh_tables(realm, expiring, authorization)
        except Exception:
            log.exception("refresh-ahead of realm %s failed", realm)
        finally:
            self._running.pop(realm, None)

    async def _refresh_tables(self, realm: str, expiring: list[Entity], authorization: str) -> None:
        headers = {"Authorization": authorization}
        for entity in expiring:
            # The first call refreshes every table CDC covers; for those, later calls find
            # the table fresh again and ask nothing.
            try:
                result = await self._loader.refresh_ahead(realm, entity, headers, self.ahead)
            except (UpstreamError, StoreUnavailable) as exc:
                self._failed(realm, entity, str(exc))
                return
            match result:
                case Loaded():
                    self._metrics.refresh_ahead.labels("refreshed").inc()
                    await self._learn(realm, entity)
                case Refused(answer):
                    if answer.status in (401, 403):
                        self._demand.forget_token(realm, authorization)
                    self._failed(realm, entity, f"Intuit answered {answer.status}")
                    return
                case Discarded():
                    self._metrics.refresh_ahead.labels("discarded").inc()

    def _failed(self, realm: str, entity: Entity, why: str) -> None:
        self._metrics.refresh_ahead.labels("failed").inc()
        self._resting[realm] = self._clock() + self.ahead
        log.info("[CACHE] refresh-ahead of %s for realm %s failed: %s", entity.name, realm, why)

    async def _learn(self, realm: str, entity: Entity) -> None:
        """Tell this worker's memory the table's new lease of life at once (other workers
        learn it from Postgres when their memory's expiry comes)."""
        if not self._memory.enabled:
            return
        with contextlib.suppress(StoreUnavailable):
            state = await self._tables.state(realm, entity)
            if state is not None:
                left = policy.fresh_for(state, self._windows)
                self._memory.learn(realm, entity.name, state.generation, left, self._clock())

    async def close(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

"""Loading a table whole from Intuit into the cache, once per realm and table at a time.

A load pages `SELECT * FROM X STARTPOSITION n MAXRESULTS 1000` with the caller's token and
lands each page under the generation recorded when it started; concurrent misses wait
for the one load in flight (single flight) instead of asking Intuit again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from qbproxy.errors import StoreUnavailable
from qbproxy.metrics import Metrics
from qbproxy.schema import CUSTOMER, Entity, row_values
from qbproxy.store import FillTicket, Store
from qbproxy.tokens import Tokens
from qbproxy.upstream import Fetched, Upstream

log = logging.getLogger("qbproxy.fill")

# Intuit's largest page (qbo-api.md: MAXRESULTS at most 1000).
PAGE_SIZE = 1000
# A load renews its lease per page; a crashed loader's lease runs out after this.
_LEASE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Loaded:
    """The table is complete (loaded here, or by another instance that held the lease)."""

    rows: int | None


@dataclass(frozen=True, slots=True)
class Refused:
    """Intuit answered a page with something other than 200: relay it."""

    answer: Fetched


@dataclass(frozen=True, slots=True)
class Discarded:
    """A purge came while loading; nothing from this load is served."""


LoadResult = Loaded | Refused | Discarded


def load_query(entity: Entity, start: int) -> str:
    # `SELECT * FROM Customer` returns active customers only (qbo-api.md); the cache must
    # hold inactive ones too, to answer `Active = false` and reads by id.
    where = " WHERE Active IN (true, false)" if entity is CUSTOMER else ""
    return f"SELECT * FROM {entity.name}{where} STARTPOSITION {start} MAXRESULTS {PAGE_SIZE}"


def parse_page(entity: Entity, body: bytes) -> list[dict[str, Any]] | None:
    """Entities of a query page, or None when the body is not a QueryResponse."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    response = doc.get("QueryResponse") if isinstance(doc, dict) else None
    if not isinstance(response, dict):
        return None
    items = response.get(entity.name, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return None
    return items


def to_rows(entity: Entity, items: list[dict[str, Any]]) -> list[tuple[str, tuple[Any, ...]]]:
    rows = []
    for item in items:
        values = row_values(entity, item)
        if values is not None:
            rows.append((orjson.dumps(item).decode(), values))
    return rows


class Loader:
    def __init__(
        self,
        store: Store,
        upstream: Upstream,
        metrics: Metrics,
        tokens: Tokens,
        *,
        ttl_seconds: float,
        wait_seconds: float,
        poll_seconds: float = 0.05,
    ) -> None:
        self._ttl_seconds = ttl_seconds
        self._store = store
        self._upstream = upstream
        self._metrics = metrics
        self._tokens = tokens
        self._wait_seconds = wait_seconds
        self._poll_seconds = poll_seconds
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._inflight: dict[tuple[str, str], asyncio.Task[LoadResult]] = {}

    async def load_table(
        self, realm: str, entity: Entity, headers: Mapping[str, str]
    ) -> tuple[LoadResult, bool]:
        """(result, led): led is False when this call waited on another caller's load."""
        key = (realm, entity.name)
        task = self._inflight.get(key)
        led = task is None
        if task is None:
            # Its own task: a client that hangs up does not cancel the load others wait on.
            task = asyncio.create_task(self._load(realm, entity, dict(headers)))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        else:
            self._metrics.singleflight_waits.labels(entity.name).inc()
        return await asyncio.shield(task), led

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def _load(self, realm: str, entity: Entity, headers: dict[str, str]) -> LoadResult:
        ticket = await self._store.begin_fill(realm, entity)
        if not await self._store.acquire_lease(realm, entity, self._owner, _LEASE_SECONDS):
            return await self._await_other_instance(realm, entity)
        try:
            return await self._load_pages(ticket, headers)
        finally:
            with contextlib.suppress(StoreUnavailable):
                await self._store.release_lease(realm, entity, self._owner)

    async def _await_other_instance(self, realm: str, entity: Entity) -> LoadResult:
        """Another instance holds the lease: wait for its load instead of asking Intuit."""
        self._metrics.singleflight_waits.labels(entity.name).inc()
        deadline = asyncio.get_running_loop().time() + self._wait_seconds
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(self._poll_seconds)
            state = await self._store.table_state(realm, entity, self._ttl_seconds)
            if state is not None and state.complete:
                return Loaded(None)
            if state is None or not state.leased:
                break  # its load failed or was overtaken by a purge
        return Discarded()

    async def _load_pages(self, ticket: FillTicket, headers: dict[str, str]) -> LoadResult:
        realm, entity = ticket.realm, ticket.entity
        authorization = headers.get("Authorization")
        total = 0
        start = 1
        while True:
            answer = await self.fetch_page(realm, entity, start, headers)
            if start == 1:
                # Recorded before the table completes, so an instance waiting on this
                # load finds its caller's token trusted (or not) as soon as it sees it.
                await self._tokens.learn(realm, authorization, answer.status)
            if answer.status != 200:
                self._metrics.fills.labels(entity.name, "table", "failed").inc()
                return Refused(answer)
            items = parse_page(entity, answer.body)
            if items is None:
                self._metrics.fills.labels(entity.name, "table", "failed").inc()
                return Refused(answer)
            if not await self._land(ticket, items):
                return Discarded()
            total += len(items)
            if len(items) < PAGE_SIZE:
                break
            start += PAGE_SIZE
            await self._store.acquire_lease(realm, entity, self._owner, _LEASE_SECONDS)
        if not await self._store.complete_load(ticket):
            self._metrics.fills.labels(entity.name, "table", "discarded").inc()
            return Discarded()
        self._metrics.fills.labels(entity.name, "table", "landed").inc()
        log.info("[CACHE] cached %d %ss for realm %s", total, entity.name.lower(), realm)
        return Loaded(total)

    async def _land(self, ticket: FillTicket, items: list[dict[str, Any]]) -> bool:
        rows = to_rows(ticket.entity, items)
        if not await self._store.fill(ticket, rows):
            self._metrics.fills.labels(ticket.entity.name, "table", "discarded").inc()
            return False
        self._metrics.rows_filled.labels(ticket.entity.name).inc(len(rows))
        return True

    async def fetch_page(
        self, realm: str, entity: Entity, start: int, headers: Mapping[str, str]
    ) -> Fetched:
        query = urlencode(
            {
                "query": load_query(entity, start),
                "minorversion": self._upstream.settings.minor_version,
            }
        )
        return await self._upstream.fetch(
            "GET", f"/v3/company/{realm}/query", query, headers, entity=entity.name, realm=realm
        )

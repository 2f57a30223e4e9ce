"""Refreshing a table from Intuit, once per realm and table at a time: a whole load, or
an incremental refresh of the realm's tables through one CDC call (qbproxy/core/cdc.py).

A load pages `SELECT * FROM X STARTPOSITION n MAXRESULTS 1000` with the caller's token and
lands each page under the generation recorded when it started; a CDC call lands each
table's changes under the generation recorded before the call. Concurrent misses wait for
the one refresh in flight (single flight) instead of asking Intuit again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from qbproxy.config import SyncSettings
from qbproxy.core import cdc, policy
from qbproxy.core.catalog import ENTITIES, Entity, row_values
from qbproxy.core.policy import Windows
from qbproxy.db.rows import Rows
from qbproxy.db.tables import FillTicket, Tables
from qbproxy.db.tokens import Tokens
from qbproxy.errors import StoreUnavailable
from qbproxy.metrics import Metrics
from qbproxy.upstream import Fetched, Upstream

log = logging.getLogger("qbproxy.fill")

# Intuit's largest page (qbo-api.md: MAXRESULTS at most 1000).
PAGE_SIZE = 1000
# A load renews its lease per page; a crashed loader's lease runs out after this.
_LEASE_SECONDS = 60.0
# Between whole loads, CDC refreshes a table; a whole reload at least this often bounds
# what CDC could miss (qbproxy/core/cdc.py, last paragraph).
FULL_RELOAD_SECONDS = 86_400.0
# Tables Intuit's CDC covers (the others reload whole: qbproxy/core/catalog.py).
CDC_TABLES = frozenset(e.name for e in ENTITIES if e.cdc)


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


@dataclass(frozen=True, slots=True)
class _Busy:
    """Another refresh holds the requested table's lease: wait for it."""


# Per table a CDC call covered: its result, or None when the table must be loaded whole.
CdcResults = dict[str, LoadResult | _Busy | None]


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    time: dt.datetime | None  # the answer's `time` (Intuit's clock)


def load_query(entity: Entity, start: int) -> str:
    if entity.singleton:
        return f"SELECT * FROM {entity.name}"  # one object, no paging (qbo-api.md)
    # `SELECT * FROM Customer` returns active customers only (qbo-api.md), and maybe other
    # name lists too; the cache must hold inactive ones, to answer `Active = false` and
    # reads by id.
    where = " WHERE Active IN (true, false)" if entity.inactive != "none" else ""
    return f"SELECT * FROM {entity.name}{where} STARTPOSITION {start} MAXRESULTS {PAGE_SIZE}"


def parse_page(entity: Entity, body: bytes) -> Page | None:
    """Entities of a query page and its time, or None when the body is not a QueryResponse."""
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
    return Page(items, cdc.answer_time(doc))


def to_rows(entity: Entity, items: list[dict[str, Any]]) -> list[tuple[str, tuple[Any, ...]]]:
    rows = []
    for item in items:
        values = row_values(entity, item)
        if values is not None:
            rows.append((orjson.dumps(item).decode(), values))
    return rows


def _synced_at(state: cdc.SyncState) -> dt.datetime:
    assert state.synced_at is not None  # only synced tables qualify for CDC
    return state.synced_at


def _relayed(status: int) -> bool:
    """Answers a refresh relays to its caller rather than retrying whole: the token was
    refused, Intuit throttles, or Intuit is failing (the caller may be served stale)."""
    return status in (401, 403, 429) or status >= 500


class Loader:
    def __init__(
        self,
        tables: Tables,
        rows: Rows,
        upstream: Upstream,
        metrics: Metrics,
        tokens: Tokens,
        *,
        windows: Windows,
        wait_seconds: float,
        poll_seconds: float = 0.05,
        sync: SyncSettings | None = None,
        full_reload_seconds: float = FULL_RELOAD_SECONDS,
    ) -> None:
        self._windows = windows
        self._tables = tables
        self._rows = rows
        self._upstream = upstream
        self._metrics = metrics
        self._tokens = tokens
        self._wait_seconds = wait_seconds
        self._poll_seconds = poll_seconds
        self._sync = sync if sync is not None else SyncSettings()
        self._full_reload_seconds = full_reload_seconds
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._inflight: dict[tuple[str, str], asyncio.Task[LoadResult]] = {}
        # One CDC call per realm at a time, shared by every table it refreshes.
        self._cdc_inflight: dict[str, asyncio.Task[CdcResults]] = {}
        # Tables whose lease a refresh in this process holds: the lease is per process
        # (owner), so this keeps a CDC and a whole load here from sharing one.
        self._held: set[tuple[str, str]] = set()

    async def load_table(
        self, realm: str, entity: Entity, headers: Mapping[str, str]
    ) -> tuple[LoadResult, bool]:
        """(result, led): led is False when this call waited on another caller's load."""
        task, led = self._start(realm, entity, headers, fresh_for=0.0)
        if not led:
            self._metrics.singleflight_waits.labels(entity.name).inc()
        return await self._complete_now(realm, entity, await asyncio.shield(task)), led

    async def refresh_ahead(
        self, realm: str, entity: Entity, headers: Mapping[str, str], fresh_for: float
    ) -> LoadResult:
        """Refresh a complete table that expires within `fresh_for` seconds (refresh-ahead,
        qbproxy/sync/ahead.py), or join the refresh of it already in flight. Loaded(None) when it
        needs none (another instance refreshed it), Discarded when it is no longer complete
        (purged or expired meanwhile: the next request refreshes it)."""
        task, _ = self._start(realm, entity, headers, fresh_for=fresh_for)
        return await asyncio.shield(task)

    async def refresh_incrementally(
        self, realm: str, entity: Entity, headers: Mapping[str, str]
    ) -> LoadResult | None:
        """The table brought up to date by the realm's CDC call, if CDC qualifies for it;
        None when only a whole load would (never loaded, CDC off, the daily reload due).
        Loaded only if the table is complete now, as for load_table."""
        if not self._sync.cdc:
            return None
        result = await self._refresh_by_cdc(realm, entity, dict(headers), 0.0)
        return None if result is None else await self._complete_now(realm, entity, result)

    async def _complete_now(self, realm: str, entity: Entity, result: LoadResult) -> LoadResult:
        """A refresh may have landed before a purge the caller must see (it joined a
        refresh, or a CDC call, that started before a write returned): Loaded only if the
        table is still complete now."""
        if isinstance(result, Loaded) and not policy.complete(
            await self._tables.state(realm, entity), self._windows
        ):
            return Discarded()
        return result

    def _start(
        self, realm: str, entity: Entity, headers: Mapping[str, str], *, fresh_for: float
    ) -> tuple[asyncio.Task[LoadResult], bool]:
        """The refresh of the table in flight here, or a new one: (task, started)."""
        key = (realm, entity.name)
        task = self._inflight.get(key)
        if task is not None:
            return task, False
        # Its own task: a client that hangs up does not cancel the load others wait on.
        task = asyncio.create_task(self._refresh(realm, entity, dict(headers), fresh_for))
        self._inflight[key] = task
        task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return task, True

    async def close(self) -> None:
        tasks = [*self._inflight.values(), *self._cdc_inflight.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _refresh(
        self, realm: str, entity: Entity, headers: dict[str, str], fresh_for: float
    ) -> LoadResult:
        """Refresh the table unless it is complete for `fresh_for` more seconds (0: unless
        it is complete at all)."""
        if fresh_for > 0:
            state = await self._tables.state(realm, entity)
            if not policy.complete(state, self._windows):
                return Discarded()
            if not policy.needs_refresh(state, self._windows, fresh_for):
                return Loaded(None)
        if self._sync.cdc:
            result = await self._refresh_by_cdc(realm, entity, headers, fresh_for)
            if result is not None:
                return result
        return await self._load(realm, entity, headers)

    # --- whole loads ---------------------------------------------------------------

    async def _load(self, realm: str, entity: Entity, headers: dict[str, str]) -> LoadResult:
        ticket = await self._tables.begin_fill(realm, entity)
        if not await self._claim(realm, entity):
            return await self._await_other_instance(realm, entity)
        try:
            return await self._load_pages(ticket, headers)
        finally:
            await self._unclaim(realm, entity)

    async def _claim(self, realm: str, entity: Entity) -> bool:
        """Take the table's lease for a refresh here; False if anyone else holds it."""
        key = (realm, entity.name)
        if key in self._held:
            return False
        self._held.add(key)
        try:
            taken = await self._tables.acquire_lease(realm, entity, self._owner, _LEASE_SECONDS)
        except BaseException:
            self._held.discard(key)
            raise
        if not taken:
            self._held.discard(key)
        return taken

    async def _unclaim(self, realm: str, entity: Entity) -> None:
        try:
            with contextlib.suppress(StoreUnavailable):
                await self._tables.release_lease(realm, entity, self._owner)
        finally:
            self._held.discard((realm, entity.name))

    async def _await_other_instance(self, realm: str, entity: Entity) -> LoadResult:
        """Another instance holds the lease: wait for its load instead of asking Intuit."""
        self._metrics.singleflight_waits.labels(entity.name).inc()
        deadline = asyncio.get_running_loop().time() + self._wait_seconds
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(self._poll_seconds)
            state = await self._tables.state(realm, entity)
            if policy.complete(state, self._windows):
                return Loaded(None)
            if state is None or not state.leased:
                break  # its load failed or was overtaken by a purge
        return Discarded()

    async def _load_pages(self, ticket: FillTicket, headers: dict[str, str]) -> LoadResult:
        realm, entity = ticket.realm, ticket.entity
        authorization = headers.get("Authorization")
        total = 0
        start = 1
        synced_at: dt.datetime | None = None
        while True:
            answer = await self.fetch_page(realm, entity, start, headers)
            if start == 1:
                # Recorded before the table completes, so an instance waiting on this
                # load finds its caller's token trusted (or not) as soon as it sees it.
                await self._tokens.learn(realm, authorization, answer.status)
            if answer.status != 200:
                self._metrics.fills.labels(entity.name, "table", "failed").inc()
                return Refused(answer)
            page = parse_page(entity, answer.body)
            if page is None:
                self._metrics.fills.labels(entity.name, "table", "failed").inc()
                return Refused(answer)
            if start == 1:
                # The first page is the oldest: the table holds every change before it.
                synced_at = page.time
            if not await self._land(ticket, page.items):
                return Discarded()
            total += len(page.items)
            if len(page.items) < PAGE_SIZE:
                break
            start += PAGE_SIZE
            await self._tables.acquire_lease(realm, entity, self._owner, _LEASE_SECONDS)
        if not await self._rows.complete_whole_load(ticket, synced_at):
            self._metrics.fills.labels(entity.name, "table", "discarded").inc()
            return Discarded()
        self._metrics.fills.labels(entity.name, "table", "landed").inc()
        log.info("[CACHE] cached %d %ss for realm %s", total, entity.name.lower(), realm)
        return Loaded(total)

    async def _land(self, ticket: FillTicket, items: list[dict[str, Any]]) -> bool:
        rows = to_rows(ticket.entity, items)
        if not await self._rows.fill(ticket, rows):
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

    # --- incremental refresh through CDC ---------------------------------------------

    async def _refresh_by_cdc(
        self, realm: str, entity: Entity, headers: dict[str, str], fresh_for: float
    ) -> LoadResult | None:
        """The table refreshed by the realm's CDC call (this caller's, or one in flight
        that covers it), or None: load it whole. A table complete for `fresh_for` more seconds
        needs none."""
        if not entity.cdc:
            return None
        now, states = await self._tables.sync_states(realm)
        state = next((s for s in states if s.entity == entity.name), None)
        if state is not None and not policy.needs_refresh(state.table, self._windows, fresh_for):
            return Loaded(None)  # refreshed since the caller looked (a CDC just landed)
        if now is None or state is None or self._since(state, now) is None:
            return None
        for _ in range(2):  # a CDC in flight that does not cover this table: one more
            task = self._cdc_inflight.get(realm)
            started = task is None
            if task is None:
                task = asyncio.create_task(self._cdc(realm, entity, headers))
                self._cdc_inflight[realm] = task
                task.add_done_callback(lambda _: self._cdc_inflight.pop(realm, None))
            else:
                self._metrics.singleflight_waits.labels(entity.name).inc()
            results = await asyncio.shield(task)
            if entity.name in results:
                result = results[entity.name]
                if isinstance(result, _Busy):
                    return await self._await_other_instance(realm, entity)
                if isinstance(result, Refused) and not started:
                    # Intuit refused another caller's token: this caller asks with its own.
                    return Discarded()
                return result
            if started:
                return None
        return None

    def _since(self, state: cdc.SyncState, now: dt.datetime) -> dt.datetime | None:
        return cdc.changed_since(
            state,
            now,
            margin_seconds=self._sync.safety_margin_seconds,
            full_reload_seconds=self._full_reload_seconds,
        )

    async def _cdc(self, realm: str, requested: Entity, headers: dict[str, str]) -> CdcResults:
        """One CDC call for every table of the realm it can refresh (its lease free, synced
        recently enough), each landing under the generation taken before the call."""
        now, states = await self._tables.sync_states(realm)
        # Read before the tickets: a refresh landing after this read voids this one.
        synced: dict[str, cdc.SyncState] = {
            state.entity: state
            for state in states
            if now is not None
            and state.entity in CDC_TABLES
            and self._since(state, now) is not None
        }
        if requested.name not in synced:
            return {}
        tickets: dict[str, FillTicket] = {}
        try:
            # Leases in one order everywhere, giving up at the requested table's: of two
            # instances refreshing a realm at once, one covers what the other waits for.
            for entity in ENTITIES:
                if entity.name not in synced:
                    continue
                # Ticket before lease and call, as for loads: a purge after it voids the call.
                ticket = await self._tables.begin_fill(realm, entity)
                if await self._claim(realm, entity):
                    tickets[entity.name] = ticket
                elif entity.name == requested.name:
                    return {requested.name: _Busy()}
            # A refresh elsewhere may have landed between the read above and the leases:
            # its tables are fresh, and asking again would only be discarded (asked_from).
            _, now_states = await self._tables.sync_states(realm)
            moved = {
                state.entity
                for state in now_states
                if state.entity in tickets and state.synced_at != synced[state.entity].synced_at
            }
            if requested.name in moved:
                return {requested.name: Loaded(None)}
            unmoved = {name: t for name, t in tickets.items() if name not in moved}
            return await self._cdc_call(realm, unmoved, synced, headers)
        finally:
            for ticket in tickets.values():
                await self._unclaim(realm, ticket.entity)

    async def _cdc_call(
        self,
        realm: str,
        tickets: dict[str, FillTicket],
        synced: dict[str, cdc.SyncState],
        headers: dict[str, str],
    ) -> CdcResults:
        entities = [t.entity for t in tickets.values()]
        oldest = min(_synced_at(synced[name]) for name in tickets)
        since = oldest - dt.timedelta(seconds=self._sync.safety_margin_seconds)
        query = cdc.cdc_query(entities, since, self._upstream.settings.minor_version)
        answer = await self._upstream.fetch(
            "GET", f"/v3/company/{realm}/cdc", query, headers, entity="cdc", realm=realm
        )
        await self._tokens.learn(realm, headers.get("Authorization"), answer.status)
        if answer.status != 200:
            if _relayed(answer.status):
                for name in tickets:
                    self._metrics.fills.labels(name, "cdc", "failed").inc()
                return dict.fromkeys(tickets, Refused(answer))
            return self._fall_back(realm, tickets, f"Intuit answered {answer.status}")
        parsed = cdc.parse_answer(answer.body, entities)
        if isinstance(parsed, cdc.Reload) and parsed.reason == "capped" and len(tickets) > 1:
            # Intuit caps an answer at 1,000 objects (per list or per answer: unsure):
            # ask again per half, down to the one table whose changes alone fill the cap,
            # which reloads whole while the others land their changes.
            names = sorted(tickets)
            halves = (names[: len(names) // 2], names[len(names) // 2 :])
            results: CdcResults = {}
            for half in halves:
                part = {name: tickets[name] for name in half}
                results.update(await self._cdc_call(realm, part, synced, headers))
            return results
        if isinstance(parsed, cdc.Reload):
            return self._fall_back(realm, tickets, f"{parsed.reason}: {parsed.detail}")
        results = {}
        landed = 0
        for name, ticket in tickets.items():
            changes = parsed.tables[name]
            if await self._rows.apply_changes(
                ticket,
                changes.rows,
                changes.deleted_ids,
                parsed.synced_at,
                asked_from=_synced_at(synced[name]),
            ):
                self._metrics.fills.labels(name, "cdc", "landed").inc()
                self._metrics.rows_filled.labels(name).inc(len(changes.rows))
                landed += changes.count
                results[name] = Loaded(changes.count)
            else:
                self._metrics.fills.labels(name, "cdc", "discarded").inc()
                results[name] = Discarded()
        log.info("[CACHE] refreshed %d changes for realm %s via CDC", landed, realm)
        return results

    def _fall_back(self, realm: str, tickets: dict[str, FillTicket], why: str) -> CdcResults:
        for name in tickets:
            self._metrics.fills.labels(name, "cdc", "fallback").inc()
        log.info("[CACHE] CDC for realm %s not usable (%s): reloading whole", realm, why)
        return dict.fromkeys(tickets)

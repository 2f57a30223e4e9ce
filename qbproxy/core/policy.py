"""The cache policy: for a read or query, facts in, one action out; for a write, its plan.

In the manner of hishel's state machine: the web layer gathers facts (memory, the table's
state as Postgres reports it, whether the caller is trusted, what a refresh or Intuit
answered), asks `decide_query` / `decide_read` what to do, does it, adds what it learned
and asks again, until the action is an answer. Freshness, the stale window and the
refresh-ahead window are computed here and nowhere else: the database layer reports raw
ages measured on the database's clock (one clock for every instance), never verdicts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from qbproxy.core import deps
from qbproxy.core.catalog import Entity, entity_named
from qbproxy.core.reports import CompanyDay, same_company_day

Cache = Literal["HIT", "MISS", "STALE", "BYPASS"]
Failure = Literal["timeout", "unavailable", "5xx", "throttled"]


# --- windows and freshness -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Windows:
    """The configured time windows, read from settings in one place (qbproxy/services.py)."""

    ttl: float  # cache.ttl_seconds: a table or row is fresh this long after it landed
    max_stale: float  # cache.max_stale_seconds: served (STALE) while Intuit fails
    ahead: float  # sync.refresh_ahead_seconds, as clamped by `ahead_window`

    @classmethod
    def of(cls, ttl: float, max_stale: float, refresh_ahead: float) -> Windows:
        return cls(ttl, max_stale, ahead_window(refresh_ahead, ttl))


def ahead_window(ahead_seconds: float, ttl_seconds: float) -> float:
    """The refresh-ahead window: at most half the TTL, so a table is not refreshed again as
    soon as it was refreshed (a window as long as the TTL would never stop)."""
    return max(0.0, min(ahead_seconds, ttl_seconds / 2))


@dataclass(frozen=True, slots=True)
class TableFacts:
    """A table's (realm x entity) state row, as Postgres holds it."""

    generation: int  # bumped by every purge
    complete_generation: int | None  # the generation the last whole load or CDC landed under
    age: float | None  # seconds since that refresh started, on the database's clock
    leased: bool = False  # a refresh holds the lease (this instance or another)

    @property
    def whole(self) -> bool:
        """Loaded whole and not purged since (fresh or not)."""
        return self.complete_generation == self.generation and self.age is not None


def fresh_for(table: TableFacts | None, windows: Windows) -> float:
    """Seconds the table stays complete (<= 0: not complete: purged, expired, never loaded)."""
    if table is None or not table.whole:
        return 0.0
    assert table.age is not None
    return windows.ttl - table.age


def complete(table: TableFacts | None, windows: Windows) -> bool:
    """Queries on the table may be answered from its rows."""
    return fresh_for(table, windows) > 0


def stale_servable(table: TableFacts | None, windows: Windows) -> bool:
    """Intuit failing: the rows may still be served, marked STALE. Never a table a write has
    purged since (read-your-writes outranks availability; design.md, promises 2 and 6)."""
    return (
        table is not None
        and table.whole
        and table.age is not None
        and (table.age < windows.max_stale)
    )


def due_ahead(table: TableFacts | None, windows: Windows) -> bool:
    """Refresh-ahead should refresh the table now. An incomplete table is left to the next
    request: a write purged it (its caller reads next) or it has expired already."""
    left = fresh_for(table, windows)
    return windows.ahead > 0 and 0 < left <= windows.ahead


def needs_refresh(table: TableFacts | None, windows: Windows, fresh_margin: float) -> bool:
    """A refresh asked for with `fresh_margin` seconds to spare still has work to do: the
    table is not complete for that many more seconds (another refresh may have landed)."""
    return fresh_for(table, windows) <= fresh_margin


def row_fresh(age: float | None, windows: Windows, *, stale: bool = False) -> bool:
    """A row kept under its table's current generation, `age` seconds old, may be served:
    within the TTL, or within the stale window while Intuit fails."""
    return age is not None and age < (windows.max_stale if stale else windows.ttl)


# --- reads and queries ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServeMemory:
    """The worker's memory holds this answer under a generation known complete: no I/O."""


@dataclass(frozen=True, slots=True)
class LookUp:
    """Read the table's state (a query) or the row (a read) from Postgres, then ask again."""


@dataclass(frozen=True, slots=True)
class ServeRows:
    """Answer from the cache tables; `remember`: keep the answer in memory under the
    table's generation for the next identical request."""

    cache: Cache
    remember: bool = False


@dataclass(frozen=True, slots=True)
class Refresh:
    """Bring the table up to date from Intuit (CDC or a whole load, single flight), then ask
    again. For a read by id, `incremental`: only the realm's CDC call, never a whole load."""

    incremental: bool = False


@dataclass(frozen=True, slots=True)
class Fetch:
    """A read by id: ask Intuit for this one entity with the caller's token and keep it."""


@dataclass(frozen=True, slots=True)
class Relay:
    """Ask Intuit for this caller and relay what it says (Intuit decides; promise 4)."""


@dataclass(frozen=True, slots=True)
class RelayAnswer:
    """Relay the answer Intuit already gave this caller's own call (a refusal of its token,
    a fault about its request, or a failure when nothing stale may be served)."""


@dataclass(frozen=True, slots=True)
class ServeStale:
    """Intuit failing: answer from rows within the stale window, marked STALE."""


@dataclass(frozen=True, slots=True)
class Fail:
    """Intuit failing and nothing servable: a QBO-shaped fault (502/503/504)."""


Action = (
    ServeMemory | LookUp | ServeRows | Refresh | Fetch | Relay | RelayAnswer | ServeStale | Fail
)

Refreshed = Literal["loaded", "refused", "discarded", "not_possible"]


@dataclass(frozen=True, slots=True)
class QueryFacts:
    """What is known so far about answering one query for one caller."""

    trusted: bool  # Intuit accepted the caller's token for the realm recently
    in_memory: bool = False  # memory holds this answer under a generation known complete
    looked_up: bool = False  # `table` was read from Postgres (None then: no state row)
    table: TableFacts | None = None
    refreshed: Refreshed | None = None  # what the table's refresh came to, once tried
    failure: Failure | None = None  # Intuit failed (an exception, a 5xx or a 429)
    answered: bool = False  # Intuit answered this caller's own call (relayable)


def decide_query(facts: QueryFacts, windows: Windows) -> Action:
    if facts.failure is not None:
        if facts.trusted and not facts.looked_up:
            return LookUp()  # the stale window is judged on the table as it is now
        if facts.trusted and stale_servable(facts.table, windows):
            return ServeStale()
        return RelayAnswer() if facts.answered else Fail()
    if facts.trusted and facts.in_memory:
        return ServeMemory()
    if not facts.looked_up:
        return LookUp()
    if facts.refreshed is None:
        if complete(facts.table, windows):
            # Cached, but Intuit decides for a caller it has not vouched for.
            return ServeRows("HIT", remember=True) if facts.trusted else Relay()
        # A caller Intuit has not vouched for may lead the load (its answer teaches trust);
        # the load is then held to the realm's untrusted budget (qbproxy/upstream.py).
        return Refresh()
    if facts.refreshed == "loaded" and facts.trusted:
        return ServeRows("MISS")
    if facts.answered:
        return RelayAnswer()  # Intuit refused the refresh this caller's token led
    # Another caller's refresh (Intuit refused that token, or vouched for it and not for
    # this one), or one a purge overtook: ask Intuit for this caller.
    return Relay()


@dataclass(frozen=True, slots=True)
class ReadFacts:
    """What is known so far about answering one read by id for one caller."""

    trusted: bool
    in_memory: bool = False
    looked_up: bool = False  # `row_age` was read from Postgres
    row_age: float | None = None  # seconds since the row landed, under the current generation
    refreshed: Refreshed | None = None
    failure: Failure | None = None
    answered: bool = False  # Intuit answered this caller's fetch (relayable)


def decide_read(facts: ReadFacts, windows: Windows) -> Action:
    if facts.failure is not None:
        if facts.trusted and not facts.looked_up:
            return LookUp()  # the stale window is judged on the row as it is now
        if facts.trusted and row_fresh(facts.row_age, windows, stale=True):
            return ServeStale()
        return RelayAnswer() if facts.answered else Fail()
    if not facts.trusted:
        return Fetch()  # never from cache; Intuit's answer still teaches token trust
    if facts.in_memory:
        return ServeMemory()
    if facts.refreshed not in (None, "loaded"):
        return Fetch()  # the realm's CDC did not bring the table up to date
    if not facts.looked_up:
        return LookUp()
    if row_fresh(facts.row_age, windows):
        return ServeRows("HIT", remember=True) if facts.refreshed is None else ServeRows("MISS")
    if facts.refreshed is None:
        # A table loaded whole before is brought up to date by the realm's one CDC call
        # (the one call the read costs anyway); one never loaded is not loaded for a read.
        return Refresh(incremental=True)
    return Fetch()


# --- reports -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """A stored report answer under the realm's current report generation (a purge since
    makes it no candidate at all: never served, not even stale)."""

    age: float  # seconds since the call that computed it began, on the database's clock
    day: CompanyDay | None  # the company day it holds for; None: it does not depend on it


def report_servable(
    entry: ReportEntry | None, now: dt.datetime, windows: Windows, *, stale: bool = False
) -> bool:
    """Within the TTL (or the stale window while Intuit fails), and for an answer that
    depends on the day, still the company's day it was computed on: a relative period is
    never served across the company's midnight, not even stale."""
    if entry is None or entry.age >= (windows.max_stale if stale else windows.ttl):
        return False
    return entry.day is None or same_company_day(entry.day, now)


# What asking Intuit for the report came to: this caller's own call was answered
# ("answered", whatever Intuit said), or another request's call for the same key landed
# an entry ("landed") or did not ("not_landed": not storable, discarded by a purge).
ReportFetched = Literal["answered", "landed", "not_landed"]


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """What is known so far about answering one report request for one caller."""

    trusted: bool
    now: dt.datetime  # aware: the company's day is judged on it
    looked_up: bool = False  # `entry` was read from Postgres (None then: none servable)
    entry: ReportEntry | None = None
    fetched: ReportFetched | None = None
    failure: Failure | None = None  # Intuit failed (an exception, a 5xx or a 429)
    answered: bool = False  # Intuit answered this caller's own call (relayable)


def decide_report(facts: ReportFacts, windows: Windows) -> Action:
    """ServeRows: the stored answer; Refresh: ask Intuit once per key (single flight) and
    store what may be stored; RelayAnswer: relay this caller's own answer; Relay: ask
    Intuit for this caller without storing."""
    if facts.failure is not None:
        if facts.trusted and not facts.looked_up:
            return LookUp()  # the stale window is judged on the entry as it is now
        if facts.trusted and report_servable(facts.entry, facts.now, windows, stale=True):
            return ServeStale()
        return RelayAnswer() if facts.answered else Fail()
    if facts.fetched == "answered":
        return RelayAnswer()
    if facts.fetched == "not_landed":
        return Relay()
    if not facts.looked_up:
        return LookUp()
    if report_servable(facts.entry, facts.now, windows):
        if not facts.trusted:
            return Relay()  # cached, but Intuit decides for a caller it has not vouched for
        return ServeRows("HIT" if facts.fetched is None else "MISS")
    if facts.fetched is None:
        return Refresh()
    return Relay()  # what another request stored is gone already (a purge came)


def failure_of(status: int) -> Failure | None:
    """Intuit could not answer (throttled or broken), as opposed to refusing the request."""
    if status == 429:
        return "throttled"
    return "5xx" if status >= 500 else None


# --- writes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WritePlan:
    """What a forwarded write does to the cache (design.md, promise 2)."""

    tables: frozenset[Entity]  # purged before forwarding (trusted callers) and after
    write_through: Entity | None  # keep the entity Intuit answers with, if it may land


def needs_body(segment: str, operation: str, is_json: bool) -> bool:
    """Whether the write's JSON body is read (a small document) rather than streamed on:
    only the body tells a create from an update, which narrows the purge or lets the answer
    be written through, and an update's answer is written through."""
    if not is_json:
        return False
    cached = entity_named(segment) is not None
    if operation == "create/update":
        return cached or deps.create_purges_less(segment)
    return operation == "update" and cached


def plan_write(segment: str, operation: str, body: dict[str, object] | None) -> WritePlan:
    """`body` is the parsed JSON object when it was read (None: streamed, or not an object)."""
    if operation == "create/update":
        is_create = body is not None and "Id" not in body and "sparse" not in body
        operation = deps.CREATE if is_create else deps.UPDATE
    tables = deps.tables_changed(segment, operation, frozenset(body or ()))
    cached = entity_named(segment)
    through = cached if body is not None and operation in (deps.CREATE, deps.UPDATE) else None
    return WritePlan(tables, through)


def purge_after(status: int) -> bool:
    """Intuit's 401/403 (the token refused) and 429 (throttled before it looked at the
    request) mean nothing was written: nothing to purge. Any other answer purges the plan's
    tables and the realm's reports (any write can change a report)."""
    return status not in (401, 403, 429)


def write_through_lands(status: int, before: int | None, after: int | None) -> bool:
    """The entity of a 200 lands only when no other purge of its table came between this
    write's own two (`before`, `after`: the generations they made). A write Intuit committed
    after this one purges after ours and discards the row; one that purged in between may
    be newer, so nothing lands at all."""
    return status == 200 and before is not None and after == before + 1

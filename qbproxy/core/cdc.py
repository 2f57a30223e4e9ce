"""Incremental refresh through Intuit's change data capture, as values (pure): whether a
table may be refreshed by CDC and from when, the call's query, and its answer read into
per-table upserts and deletes, or a reason to reload whole (qbo-api.md, "CDC", "Envelopes").

Why `changedSince = synced_at - margin` loses no change
-------------------------------------------------------
`synced_at` is a time on Intuit's clock: the `time` of the answer a fill's data came from
(a CDC answer, or the first page of a whole load, since later pages are newer still). It
is written only by a fill that landed under the generation guard, together with that fill's
rows, so it keeps this invariant: *the table's rows reflect every change Intuit made before
`synced_at - slack`*, where slack covers the gap between Intuit computing an answer and
stamping its `time`, `LastUpdatedTime` having whole seconds, and skew between Intuit's
servers; `sync.safety_margin_seconds` (60 s) must exceed it. Other writers of rows (a read
fetched alone, a write's answer written through) only ever put a version Intuit returned
after the one the invariant speaks of. Purges (writes, webhooks) change no row and no
`synced_at`: a change the proxy did not see yet happened at or after the last `synced_at`
that does not reflect it, so its `LastUpdatedTime >= synced_at - margin` and the next CDC,
asking for everything changed since then, returns it. Applying that answer makes the rows
reflect everything before its own `time`, which becomes the new `synced_at`: the invariant
holds again, and the proxy's own clock is never involved, so clock skew cannot lose a change.

The guard is what makes a CDC answer *servable*: tickets are taken before the call, a write
purges after Intuit committed it, so a CDC answer computed before that commit lands only if
it also lands before that purge (which then makes the table incomplete again), never after.
And a caller that joined a refresh started before a write returned answers from the table
only if it is still complete once the refresh is done (`Loader.load_table`).

Assumed from Intuit, as the fake Intuit does (qbo-api.md leaves it unsure): a change that
moves a balance (a Payment lowering an Invoice's and a Customer's Balance) bumps the moved
entity's `LastUpdatedTime`. A whole reload at least every `full_reload_seconds` (a day by
default) bounds what a wrong assumption, or a whole load paged while Intuit deleted rows
(which shifts later pages), could leave behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import orjson

from qbproxy.core.catalog import Entity, row_values
from qbproxy.core.policy import TableFacts
from qbproxy.core.routing import is_id

# Intuit answers changes up to 30 days back (qbo-api.md, "Hosts and paths").
LOOKBACK = dt.timedelta(days=30)
# At most 1,000 objects per CDC response (qbo-api.md, "Envelopes"); an answer that holds
# that many may be cut short, so it proves nothing about what it leaves out.
CAP = 1000

Row = tuple[str, tuple[Any, ...]]  # (document text, column values), as fills land them


@dataclass(frozen=True, slots=True)
class SyncState:
    """What a table's state row says about syncing it."""

    entity: str
    synced_at: dt.datetime | None  # Intuit's clock; None: never loaded whole here
    reloaded_at: dt.datetime | None  # start of the last whole load (database clock)
    table: TableFacts | None = None  # its freshness facts (qbproxy.core.policy judges them)


@dataclass(frozen=True, slots=True)
class TableChanges:
    rows: tuple[Row, ...]  # changed or created: upsert
    deleted_ids: tuple[int, ...]  # `"status": "Deleted"`: remove

    @property
    def count(self) -> int:
        return len(self.rows) + len(self.deleted_ids)


@dataclass(frozen=True, slots=True)
class Changes:
    """A complete CDC answer: each requested table's changes, and Intuit's `time`."""

    synced_at: dt.datetime
    tables: Mapping[str, TableChanges]

    @property
    def count(self) -> int:
        return sum(t.count for t in self.tables.values())


@dataclass(frozen=True, slots=True)
class Reload:
    """The answer cannot be trusted to hold every change: reload the tables whole."""

    reason: Literal["capped", "unreadable"]
    detail: str


def changed_since(
    state: SyncState,
    now: dt.datetime,
    *,
    margin_seconds: float,
    full_reload_seconds: float,
) -> dt.datetime | None:
    """The `changedSince` a CDC refreshing this table asks for, or None: reload it whole
    (never synced, last whole load too old, or too far back for Intuit's 30 days).

    `now` is the database's clock; it is compared with Intuit's `synced_at` only against
    the 30-day window, with the margin to spare for skew.
    """
    if state.synced_at is None or state.reloaded_at is None:
        return None
    if now - state.reloaded_at > dt.timedelta(seconds=full_reload_seconds):
        return None
    margin = dt.timedelta(seconds=margin_seconds)
    since = state.synced_at - margin
    if since <= now - (LOOKBACK - margin):
        return None
    return since


def format_since(since: dt.datetime) -> str:
    """ISO-8601 with an offset, rounded down to the second (earlier is always safe)."""
    return since.astimezone(dt.UTC).replace(microsecond=0).isoformat()


def cdc_query(entities: Sequence[Entity], since: dt.datetime, minor_version: int) -> str:
    return urlencode(
        {
            "entities": ",".join(e.name for e in entities),
            "changedSince": format_since(since),
            "minorversion": minor_version,
        }
    )


def answer_time(doc: object) -> dt.datetime | None:
    """The envelope's `time` (Intuit's clock, with an offset), or None."""
    text = doc.get("time") if isinstance(doc, dict) else None
    if not isinstance(text, str):
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def parse_answer(body: bytes, entities: Sequence[Entity]) -> Changes | Reload:
    """`{"CDCResponse":[{"QueryResponse":[{"Invoice":[...]}, {"Customer":[...]}]}],"time"}`
    read into upserts and deletes per requested entity; anything unexpected is a Reload
    (a change read wrongly would be served until the next whole load)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Reload("unreadable", "not JSON")
    synced_at = answer_time(doc)
    if synced_at is None:
        return Reload("unreadable", "no time")
    assert isinstance(doc, dict)
    responses = doc.get("CDCResponse")
    if not isinstance(responses, list) or not responses:
        return Reload("unreadable", "no CDCResponse")
    wanted = {e.name: e for e in entities}
    found: dict[str, list[dict[str, Any]]] = {name: [] for name in wanted}
    for response in responses:
        parts = response.get("QueryResponse") if isinstance(response, dict) else None
        if not isinstance(parts, list):
            return Reload("unreadable", "CDCResponse without a QueryResponse list")
        for part in parts:
            if not isinstance(part, dict):
                return Reload("unreadable", "QueryResponse item is not an object")
            for name, items in part.items():
                if name not in wanted:
                    continue  # startPosition, maxResults, entities not asked for
                if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                    return Reload("unreadable", f"{name} is not a list of objects")
                found[name].extend(items)
    total = sum(len(items) for items in found.values())
    if total >= CAP:
        # Whether the cap counts per list or per answer is not settled: either way a cut
        # answer cannot say which list lost what, so every table reloads.
        return Reload("capped", f"{total} objects")
    tables: dict[str, TableChanges] = {}
    for name, items in found.items():
        read = _table_changes(wanted[name], items)
        if isinstance(read, Reload):
            return read
        tables[name] = read
    return Changes(synced_at, tables)


def _table_changes(entity: Entity, items: list[dict[str, Any]]) -> TableChanges | Reload:
    latest: dict[int, dict[str, Any] | None] = {}  # the last word on each Id; None: deleted
    for item in items:
        raw_id = item.get("Id")
        if not isinstance(raw_id, str) or not is_id(raw_id):
            return Reload("unreadable", f"{entity.name} without a digit-string Id")
        latest[int(raw_id)] = None if item.get("status") == "Deleted" else item
    rows: list[Row] = []
    deleted: list[int] = []
    for entity_id, doc in latest.items():
        if doc is None:
            deleted.append(entity_id)
            continue
        values = row_values(entity, doc)
        if values is None:
            return Reload("unreadable", f"{entity.name} {entity_id} is not an entity")
        rows.append((orjson.dumps(doc).decode(), values))
    return TableChanges(tuple(rows), tuple(deleted))

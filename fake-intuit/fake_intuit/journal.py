"""A test- and benchmark-facing record of every applied write (not part of Intuit's API):
off unless `Sandbox.start_journal()` is called. It keeps the documents each write left
behind, so a checker can rebuild a realm as it stood after any write and compute what
Intuit would have answered then (a report, which has no SyncToken to compare)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from multidict import MultiDict

from fake_intuit import reports
from fake_intuit.data import Doc, RealmData
from fake_intuit.envelopes import dumps
from fake_intuit.writes import snapshot


@dataclass(frozen=True, slots=True)
class Entry:
    """One applied write: what its changed documents became (None: gone) and their
    tombstones, with the realm's void marks and opening quantities after it."""

    realm: str
    stamp_ns: int  # time.monotonic_ns() right after it applied (Sandbox.history's clock)
    docs: tuple[tuple[str, str, Doc | None, Doc | None], ...]  # entity, id, doc, tombstone
    voided: frozenset[tuple[str, str]]
    opening_qty: tuple[tuple[str, Decimal], ...]


def _copy(data: RealmData) -> RealmData:
    out = RealmData(data.realm, random.Random(0))
    out.docs = {e: {k: snapshot(d) for k, d in docs.items()} for e, docs in data.docs.items()}
    out.tombstones = {
        e: {k: snapshot(d) for k, d in docs.items()} for e, docs in data.tombstones.items()
    }
    out.voided = set(data.voided)
    out.opening_qty = dict(data.opening_qty)
    return out


class Journal:
    """Every write applied since it started, per realm, in order."""

    def __init__(self, realms: dict[str, RealmData]) -> None:
        self.base = {realm: _copy(data) for realm, data in realms.items()}
        self.entries: dict[str, list[Entry]] = {realm: [] for realm in realms}

    def record(
        self, realm: str, stamp_ns: int, data: RealmData, changed: Sequence[tuple[str, str]]
    ) -> None:
        docs = []
        for entity, id_ in changed:
            doc = data.docs[entity].get(id_)
            tomb = data.tombstones[entity].get(id_)
            docs.append(
                (
                    entity,
                    id_,
                    snapshot(doc) if doc is not None else None,
                    snapshot(tomb) if tomb is not None else None,
                )
            )
        self.entries[realm].append(
            Entry(
                realm,
                stamp_ns,
                tuple(docs),
                frozenset(data.voided),
                tuple(sorted(data.opening_qty.items())),
            )
        )

    def states(self, realm: str) -> Iterator[tuple[int, RealmData]]:
        """(version, the realm after that many writes), from 0 (when the journal started)
        on. The same object is changed in place between steps: use it before the next."""
        state = _copy(self.base[realm])
        yield 0, state
        for number, entry in enumerate(self.entries[realm], 1):
            for entity, id_, doc, tomb in entry.docs:
                if doc is None:
                    state.docs[entity].pop(id_, None)
                else:
                    state.docs[entity][id_] = snapshot(doc)
                if tomb is not None:
                    state.tombstones[entity][id_] = snapshot(tomb)
            state.voided = set(entry.voided)
            state.opening_qty = dict(entry.opening_qty)
            yield number, state


def report(data: RealmData, name: str, query: Sequence[tuple[str, str]], today: dt.date) -> Any:
    """The report `name` for these parameters as the fake would answer it on `today`, as
    parsed JSON, with `Header.Time` left empty (the one part that is a clock reading)."""
    body = reports.build(data, name, MultiDict(query), today, "")
    parsed: dict[str, Any] = orjson.loads(dumps(body))
    parsed.get("Header", {}).pop("Time", None)
    return parsed

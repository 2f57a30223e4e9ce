"""Stale reports: a report has no SyncToken, so it is judged by what it says. The fake Intuit
keeps a journal of every write it applied (`Sandbox.start_journal()`); from it the realm can be
rebuilt as it stood after any write, and the report computed for that state.

Versions of a realm: 0 when the journal started, then one per applied write, at the instant
it applied (the history's clock). As for entity reads (`report.stale_reads`), the write that
made version i is the app's write in flight at that instant; it completed when the app had
its answer. A report read that began at t0 and ended at t1 must say what the report said at
some version in [L, H]: L the newest version whose write completed before t0 (every older
one lacks that write), H the newest applied before t1 (a read may see writes still in
flight). Equal to an older version: **stale**. Equal to none: **unmatched** (a wrong answer
of another kind, counted apart). Bodies are compared without `Header.Time`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from fake_intuit.data import RealmData
from fake_intuit.journal import Journal, report
from yarl import URL

from bench.replay import Exchange, Replay, report_digest

_NEVER = 2**63
# (realm, state fingerprint, report path, company day) -> digest; shared by the contenders
# of one run, whose fakes go through the same states when their writes land in the same order.
Memo = MutableMapping[tuple[str, str, str, dt.date], str]


@dataclass(slots=True)
class ReportCheck:
    checked: int = 0
    stale: int = 0
    unmatched: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


def _fingerprint(previous: str, payload: Any) -> str:
    raw = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(previous.encode() + raw).hexdigest()


def _without_meta(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if doc is None else {k: v for k, v in doc.items() if k != "MetaData"}


def _walk(journal: Journal, realm: str) -> Iterable[tuple[int, str, RealmData]]:
    """(version, fingerprint, state) in order; the state is reused between steps."""
    fp = ""
    entries = journal.entries[realm]
    for version, state in journal.states(realm):
        if version == 0:
            fp = _fingerprint(realm, {e: sorted(d) for e, d in state.docs.items()})
            fp = _fingerprint(
                fp, [_without_meta(d) for docs in state.docs.values() for d in docs.values()]
            )
        else:
            entry = entries[version - 1]
            fp = _fingerprint(fp, [(e, i, _without_meta(d)) for e, i, d, _ in entry.docs])
        yield version, fp, state


def _request(path: str) -> tuple[str, list[tuple[str, str]]]:
    url = URL(path, encoded=True)
    return url.path.rsplit("/", 1)[-1], list(url.query.items())


def stale_reports(
    replay: Replay,
    journal: Journal,
    day_of: Callable[[int], dt.date],
    memo: Memo | None = None,
) -> ReportCheck:
    """Judge every report answered 200 in `replay`; `day_of(monotonic_ns)` is the company's
    day at that instant (report dates are relative to it)."""
    memo = {} if memo is None else memo
    out = ReportCheck()
    writes: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for ex in replay.exchanges:
        if ex.kind == "write":
            writes[ex.realm].append((ex.start_ns, ex.end_ns))
    reads: dict[str, list[Exchange]] = defaultdict(list)
    for ex in replay.exchanges:
        if ex.kind == "report" and ex.status == 200 and ex.digest is not None:
            reads[ex.realm].append(ex)
    for realm, exchanges in reads.items():
        stamps = [e.stamp_ns for e in journal.entries.get(realm, [])]
        done = []
        for stamp in stamps:
            ends = [end for start, end in writes[realm] if start <= stamp <= end]
            done.append(max(ends) if ends else _NEVER)
        windows = []
        for ex in exchanges:
            low = max((i + 1 for i, c in enumerate(done) if c < ex.start_ns), default=0)
            high = sum(1 for s in stamps if s <= ex.end_ns)
            days = sorted({day_of(ex.start_ns), day_of(ex.end_ns)})
            windows.append((ex, low, high, days))
        fresh = _matching(
            journal, realm, memo, [(ex, range(lo, hi + 1), d) for ex, lo, hi, d in windows]
        )
        out.checked += len(exchanges)
        left = [(ex, lo, d) for ex, lo, _, d in windows if id(ex) not in fresh]
        if not left:
            continue
        older = _matching(journal, realm, memo, [(ex, range(0, lo), d) for ex, lo, d in left])
        for ex, lo, _ in left:
            stale = id(ex) in older
            out.stale += stale
            out.unmatched += not stale
            if len(out.examples) < 5:
                completed = [c for c in done[:lo] if c < ex.start_ns]
                out.examples.append(
                    {
                        "realm": realm,
                        "report": ex.path.split("/reports/", 1)[-1],
                        "verdict": "stale" if stale else "unmatched",
                        "cache": ex.cache,
                        "required_version": lo,
                        "read_began_ms_after_write": round((ex.start_ns - max(completed)) / 1e6, 1)
                        if completed
                        else None,
                    }
                )
    return out


def _matching(
    journal: Journal,
    realm: str,
    memo: Memo,
    wanted: list[tuple[Exchange, range, list[dt.date]]],
) -> set[int]:
    """ids of the exchanges whose digest equals the report at one of their versions."""
    by_version: dict[int, list[tuple[Exchange, list[dt.date]]]] = defaultdict(list)
    for ex, versions, days in wanted:
        for v in versions:
            by_version[v].append((ex, days))
    matched: set[int] = set()
    if not by_version:
        return matched
    last = max(by_version)
    for version, fp, state in _walk(journal, realm):
        for ex, days in by_version.get(version, []):
            if id(ex) in matched:
                continue
            name, query = _request(ex.path)
            for day in days:
                key = (realm, fp, ex.path, day)
                digest = memo.get(key)
                if digest is None:
                    digest = memo[key] = report_digest(report(state, name, query, day))
                if digest == ex.digest:
                    matched.add(id(ex))
                    break
        if version >= last:
            break
    return matched

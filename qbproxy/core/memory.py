"""In-process mirror of table state and prebuilt answers, for hits without Postgres (pure).

Postgres stays the truth. This mirror only says "complete under generation G until T",
learned from Postgres, and holds answer bytes computed under G. Purges reach it through
LISTEN/NOTIFY (qbproxy/sync/invalidation.py), acknowledged before a write's response returns,
so an instance never serves from memory what a finished write changed (design.md,
promise 2). Generations only move forward: a late read of old state cannot undo a purge.

Bounded by what answers really cost (issue 14, item 6): body, key text and a measured
per-entry overhead all count against `max_bytes`. A purge costs what it removes, at most
`SWEEP_STEP` entries at once (item 7): answers are indexed by table, a purge detaches the
table's index in O(1), and the entries are freed in steps by the purge and later `keep`s.
Until freed they still count against `max_bytes` and are never served (a generation check
on every read, which alone keeps answers correct).
"""

from __future__ import annotations

import sys
from collections import OrderedDict, deque
from dataclasses import dataclass

TableKey = tuple[str, str]  # (realm, entity)
AnswerKey = tuple[str, str, str]  # (realm, entity, normalized query or "#<id>")

# Bytes an answer costs beyond its body and key strings: the LRU's and the table index's
# dict slots, the key tuple, the entry object and allocator slack. Measured with
# tracemalloc (tests/unit/test_answer_memory.py::test_entry_overhead_covers_what_python_spends)
# and rounded up; `python -m bench memory` compares it with RSS.
ENTRY_OVERHEAD = 400
# Answers a purge (or a keep, or a learn that moves a generation on) frees at most at once:
# about 0.2 ms of event loop with 1M answers held (`python -m bench memory`).
SWEEP_STEP = 128


# An answer: (generation, body, cost, id of the table index holding it). A tuple of atomic
# values, so the garbage collector untracks it: a million answers add nothing to a pause.
_Entry = tuple[int, bytes, int, int]
_Index = dict[AnswerKey, _Entry]


@dataclass(slots=True)
class _State:
    generation: int
    complete_until: float  # monotonic seconds; 0 when not complete


def answer_cost(key: AnswerKey, body: bytes) -> int:
    """What keeping `body` under `key` costs in memory, in O(1): the strings and bytes
    objects as Python sizes them (a 90,000-character query text costs 90 kB), plus
    `ENTRY_OVERHEAD`. The entity name is a shared constant of the catalog."""
    return ENTRY_OVERHEAD + sys.getsizeof(key[0]) + sys.getsizeof(key[2]) + sys.getsizeof(body)


class Memory:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._states: dict[TableKey, _State] = {}
        self._answers: OrderedDict[AnswerKey, _Entry] = OrderedDict()  # LRU order
        # Answers by table: each table's live index, and the indexes purges let go of
        # (freed in steps, oldest first); entries name their index by id.
        self._indexes: dict[int, _Index] = {}
        self._live: dict[TableKey, int] = {}
        self._detached: deque[int] = deque()
        self._next_index = 0
        self._bytes = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    # -- table state ------------------------------------------------------------------------
    def complete_generation(self, realm: str, entity: str, now: float) -> int | None:
        """The generation the table is complete under, if memory knows it is, now."""
        state = self._states.get((realm, entity))
        if state is None or state.complete_until <= now:
            return None
        return state.generation

    def learn(
        self, realm: str, entity: str, generation: int, complete_for: float, now: float
    ) -> None:
        """Postgres said: `generation`, complete for `complete_for` more seconds (<= 0: not)."""
        key = (realm, entity)
        state = self._states.get(key)
        if state is not None and generation < state.generation:
            return  # a purge already moved past what this read saw
        if state is not None and generation > state.generation:
            # A reload or CDC moved on: the answers kept can never serve again.
            self._detach(key)
            self.sweep(SWEEP_STEP)
        until = now + complete_for if complete_for > 0 else 0.0
        self._states[key] = _State(generation, until)

    def purged(self, realm: str, entity: str, generation: int) -> None:
        """A purge made `generation` current and the table incomplete. O(1) plus at most
        `SWEEP_STEP` answers freed; the rest of a larger table's answers are freed by later
        calls, and none of them is served meanwhile (their generation is gone)."""
        key = (realm, entity)
        state = self._states.get(key)
        if state is not None and state.generation > generation:
            return  # a later purge has been applied already
        self._states[key] = _State(generation, 0.0)
        self._detach(key)
        self.sweep(SWEEP_STEP)

    def clear(self) -> None:
        """Forget everything (the invalidation channel was lost: memory cannot be trusted)."""
        self._states.clear()
        self._answers.clear()
        self._indexes.clear()
        self._live.clear()
        self._detached.clear()
        self._bytes = 0

    # -- answers ----------------------------------------------------------------------------
    def answer(self, key: AnswerKey, generation: int) -> bytes | None:
        entry = self._answers.get(key)
        if entry is None:
            return None
        if entry[0] != generation:
            if entry[0] < generation:
                self._forget(key)  # generations only move forward: it can never serve again
            return None
        self._answers.move_to_end(key)
        return entry[1]

    def keep(self, key: AnswerKey, generation: int, body: bytes) -> None:
        """Keep an answer computed under `generation`, evicting the least recently used."""
        cost = answer_cost(key, body)
        if cost > self.max_bytes // 4:
            return
        table = (key[0], key[1])
        state = self._states.get(table)
        if state is not None and state.generation > generation:
            return  # already purged past it
        self.sweep(SWEEP_STEP)
        self._forget(key)
        index_id = self._live.get(table)
        if index_id is None:
            index_id = self._live[table] = self._next_index
            self._indexes[index_id] = {}
            self._next_index += 1
        entry = (generation, body, cost, index_id)
        self._indexes[index_id][key] = entry
        self._answers[key] = entry
        self._bytes += cost
        if self._bytes > self.max_bytes:
            self.sweep(SWEEP_STEP)  # garbage of purged tables goes before live answers
        while self._bytes > self.max_bytes and self._answers:
            self._forget(next(iter(self._answers)))

    def sweep(self, limit: int) -> int:
        """Free up to `limit` answers of tables purged earlier; how many were freed."""
        freed = 0
        while self._detached and freed < limit:
            index_id = self._detached[0]
            index = self._indexes[index_id]
            while index and freed < limit:
                key, entry = index.popitem()
                if self._answers.get(key) is entry:  # not replaced since
                    del self._answers[key]
                    self._bytes -= entry[2]
                freed += 1
            if not index:
                self._detached.popleft()
                del self._indexes[index_id]
        return freed

    def _detach(self, table: TableKey) -> None:
        index_id = self._live.pop(table, None)
        if index_id is None:
            return
        if self._indexes[index_id]:
            self._detached.append(index_id)
        else:
            del self._indexes[index_id]

    def _forget(self, key: AnswerKey) -> None:
        entry = self._answers.pop(key, None)
        if entry is None:
            return
        self._bytes -= entry[2]
        index = self._indexes.get(entry[3])
        if index is not None and index.get(key) is entry:
            del index[key]

    # -- accounting -------------------------------------------------------------------------
    @property
    def bytes_held(self) -> int:
        """What the answers held cost (`answer_cost`), not yet freed ones of purged tables
        included."""
        return self._bytes

    @property
    def entries(self) -> int:
        return len(self._answers)

    @property
    def pending(self) -> int:
        """Answers of purged tables not freed yet (never served)."""
        return sum(len(self._indexes[i]) for i in self._detached)

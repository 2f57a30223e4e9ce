"""In-process mirror of table state and prebuilt answers, for hits without Postgres (pure).

Postgres stays the truth. This mirror only says "complete under generation G until T",
learned from Postgres, and holds answer bytes computed under G. Purges reach it through
LISTEN/NOTIFY (qbproxy/sync/invalidation.py), acknowledged before a write's response returns,
so an instance never serves from memory what a finished write changed (design.md,
promise 2). Generations only move forward: a late read of old state cannot undo a purge.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

TableKey = tuple[str, str]  # (realm, entity)
AnswerKey = tuple[str, str, str]  # (realm, entity, normalized query or "#<id>")


@dataclass(slots=True)
class _State:
    generation: int
    complete_until: float  # monotonic seconds; 0 when not complete


class Memory:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._states: dict[TableKey, _State] = {}
        self._answers: OrderedDict[AnswerKey, tuple[int, bytes]] = OrderedDict()
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
        until = now + complete_for if complete_for > 0 else 0.0
        self._states[key] = _State(generation, until)

    def purged(self, realm: str, entity: str, generation: int) -> None:
        """A purge made `generation` current and the table incomplete."""
        key = (realm, entity)
        state = self._states.get(key)
        if state is not None and state.generation > generation:
            return  # a later purge has been applied already
        self._states[key] = _State(generation, 0.0)
        # Answers keyed by an older generation can never be served again; drop them now.
        stale = [k for k in self._answers if k[0] == realm and k[1] == entity]
        for k in stale:
            self._forget(k)

    def clear(self) -> None:
        """Forget everything (the invalidation channel was lost: memory cannot be trusted)."""
        self._states.clear()
        self._answers.clear()
        self._bytes = 0

    # -- answers ----------------------------------------------------------------------------
    def answer(self, key: AnswerKey, generation: int) -> bytes | None:
        entry = self._answers.get(key)
        if entry is None or entry[0] != generation:
            return None
        self._answers.move_to_end(key)
        return entry[1]

    def keep(self, key: AnswerKey, generation: int, body: bytes) -> None:
        """Keep an answer computed under `generation`, evicting the least recently used."""
        if len(body) > self.max_bytes // 4:
            return
        state = self._states.get((key[0], key[1]))
        if state is not None and state.generation > generation:
            return  # already purged past it
        self._forget(key)
        self._answers[key] = (generation, body)
        self._bytes += len(body)
        while self._bytes > self.max_bytes and self._answers:
            self._forget(next(iter(self._answers)))

    def _forget(self, key: AnswerKey) -> None:
        entry = self._answers.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1])

    @property
    def bytes_held(self) -> int:
        return self._bytes

"""Per-realm circuit breaker (pure): closed -> open after N consecutive failures of Intuit
(timeouts, connection errors to Intuit, 5xx) -> half-open once the open period passed, when
exactly one probe goes to Intuit -> closed on its success, open again on its failure.

The open period starts short (`first_open_seconds`, about a second) and doubles with each
failed probe up to `open_seconds`, so that once Intuit is back the circuit closes within
seconds (design.md, promise 6) while a long outage costs one probe per `open_seconds`.
`now` is monotonic seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Pass:
    """Ask Intuit. `probe`: this call decides whether a half-open circuit closes; report its
    outcome with `probe=True`, or `abandon` it if it never got an answer worth judging."""

    probe: bool


@dataclass(frozen=True, slots=True)
class FailFast:
    """The circuit is open: do not ask Intuit; worth trying again in `retry_after` seconds."""

    retry_after: float


@dataclass(slots=True)
class _Realm:
    failures: int = 0
    opened_at: float | None = None
    open_for: float = 0.0  # the current open period
    probe_started: float | None = None  # a probe is in flight since then


class Circuits:
    """One circuit per realm; only realms with recent failures are kept."""

    def __init__(self, failures: int, open_seconds: float, first_open_seconds: float) -> None:
        if failures < 1 or open_seconds <= 0 or not 0 < first_open_seconds <= open_seconds:
            raise ValueError(
                "a circuit needs failures >= 1 and 0 < first_open_seconds <= open_seconds"
            )
        self.failures = failures
        self.open_seconds = open_seconds
        self.first_open_seconds = first_open_seconds
        self._realms: dict[str, _Realm] = {}

    def allow(self, realm: str, now: float) -> Pass | FailFast:
        state = self._realms.get(realm)
        if state is None or state.opened_at is None:
            return Pass(probe=False)
        reopens = state.opened_at + state.open_for
        if now < reopens:
            return FailFast(reopens - now)
        started = state.probe_started
        if started is not None and now < started + state.open_for:
            # One probe at a time; its answer is due soon. A probe older than the open
            # period (Intuit hanging) no longer blocks the next one.
            return FailFast(min(self.first_open_seconds, started + state.open_for - now))
        state.probe_started = now
        return Pass(probe=True)

    def success(self, realm: str, *, probe: bool) -> bool:
        """Intuit answered (below 500). Returns True when this closed an open circuit."""
        state = self._realms.get(realm)
        if state is None:
            return False
        if state.opened_at is None:
            del self._realms[realm]
            return False
        if not probe:
            # Started before the circuit opened: only the probe judges an open circuit.
            return False
        del self._realms[realm]
        return True

    def failure(self, realm: str, now: float, *, probe: bool) -> bool:
        """A timeout, a connection error or a 5xx. Returns True when this opened the circuit
        (from closed, or a failed probe re-opening it for twice as long, at most
        `open_seconds`)."""
        state = self._realms.setdefault(realm, _Realm())
        if state.opened_at is not None:
            if not probe:
                return False
            state.opened_at = now
            state.open_for = min(state.open_for * 2, self.open_seconds)
            state.probe_started = None
            return True
        state.failures += 1
        if state.failures < self.failures:
            return False
        state.opened_at = now
        state.open_for = self.first_open_seconds
        return True

    def abandon(self, realm: str) -> None:
        """The probe ended without a verdict (refused by the limiter, cancelled, a caller
        whose answer does not count): let the next request probe instead."""
        state = self._realms.get(realm)
        if state is not None:
            state.probe_started = None

    def open_for(self, realm: str) -> float:
        """The realm's current open period (0 when closed), for logs."""
        state = self._realms.get(realm)
        return 0.0 if state is None or state.opened_at is None else state.open_for

    def state(self, realm: str, now: float) -> State:
        state = self._realms.get(realm)
        if state is None or state.opened_at is None:
            return "closed"
        if now < state.opened_at + state.open_for:
            return "open"
        return "half_open"

    def counts(self, now: float) -> dict[State, int]:
        """How many realms are open and half-open (closed ones are not kept), for a gauge."""
        out: dict[State, int] = {"open": 0, "half_open": 0}
        for realm in self._realms:
            state = self.state(realm, now)
            if state != "closed":
                out[state] += 1
        return out

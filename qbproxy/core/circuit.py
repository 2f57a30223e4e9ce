"""Per-realm circuit breaker (pure): closed -> open after N consecutive failures (timeouts,
connection errors, 5xx) -> half-open once a cool-down passed, when exactly one probe goes to
Intuit -> closed on its success, open again on its failure. `now` is monotonic seconds.
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
    probing: bool = False


class Circuits:
    """One circuit per realm; only realms with recent failures are kept."""

    def __init__(self, failures: int, open_seconds: float) -> None:
        if failures < 1 or open_seconds <= 0:
            raise ValueError("a circuit needs failures >= 1 and open_seconds > 0")
        self.failures = failures
        self.open_seconds = open_seconds
        self._realms: dict[str, _Realm] = {}

    def allow(self, realm: str, now: float) -> Pass | FailFast:
        state = self._realms.get(realm)
        if state is None or state.opened_at is None:
            return Pass(probe=False)
        reopens = state.opened_at + self.open_seconds
        if now < reopens:
            return FailFast(reopens - now)
        if state.probing:
            # One probe at a time; the others wait as long as a whole cool-down at most.
            return FailFast(self.open_seconds)
        state.probing = True
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
        (from closed, or a failed probe re-opening it)."""
        state = self._realms.setdefault(realm, _Realm())
        if state.opened_at is not None:
            if not probe:
                return False
            state.opened_at = now
            state.probing = False
            return True
        state.failures += 1
        if state.failures < self.failures:
            return False
        state.opened_at = now
        return True

    def abandon(self, realm: str) -> None:
        """The probe ended without a verdict (refused by the limiter, cancelled): let the
        next request probe instead."""
        state = self._realms.get(realm)
        if state is not None:
            state.probing = False

    def state(self, realm: str, now: float) -> State:
        state = self._realms.get(realm)
        if state is None or state.opened_at is None:
            return "closed"
        if now < state.opened_at + self.open_seconds:
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

"""Intuit's per-realm limits as arithmetic (pure): requests in flight, starts in a sliding
60 s window, the expected wait of a FIFO queue, and back-off after Intuit's 429.

A start is counted as Intuit counts it, when the request reaches Intuit: it is stamped at
admission and moved to the time Intuit's answer arrived (`sent`), an upper bound on when
Intuit saw it, so the window never frees a slot before Intuit's does (issue 14, item 11).

Every method takes `now` (monotonic seconds); the async shell in upstream.py sleeps and
wakes waiters, this module only decides.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

# "500 requests a minute" per realm (qbo-api.md, Limits).
WINDOW_SECONDS = 60.0
# Intuit's 429 carries no Retry-After; Intuit says wait 60 s (qbo-api.md, Errors). The proxy
# backs off 1 s first and doubles with each 429 in a row up to that, one probe between
# back-offs, so that a short throttle costs seconds rather than a minute (issue 14, item 4).
FIRST_BACKOFF_SECONDS = 1.0
DEFAULT_BACKOFF_SECONDS = 60.0
# A Retry-After beyond this is not believed: one bad header must not silence a realm for days.
MAX_BACKOFF_SECONDS = 3600.0
# Idle realms are forgotten every this many arrivals (memory stays bounded by busy realms).
_SWEEP_EVERY = 1024

Reason = Literal["backoff", "window", "queue", "busy"]


@dataclass(frozen=True, slots=True)
class Limits:
    concurrency: int
    per_minute: int
    # Longest a request may wait in the queue; a longer expected wait is refused at once.
    max_queue_seconds: float


@dataclass(frozen=True, slots=True)
class Go:
    """Start now: one start and one in-flight slot are counted until `done`. `probe`: the
    first call after a back-off; report its answer (`answered`) or `probe_ended`."""

    probe: bool = False


@dataclass(frozen=True, slots=True)
class Queued:
    """Wait in line; `expected` is the least wait the window alone imposes (seconds)."""

    expected: float


@dataclass(frozen=True, slots=True)
class Wait:
    """Still the head of the line: ask again after `seconds`, or (None) when a request of
    this realm finishes."""

    seconds: float | None


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer 429 without asking Intuit; `retry_after` seconds until it is worth trying."""

    retry_after: float
    reason: Reason


@dataclass(slots=True)
class _Realm:
    inflight: int = 0
    waiting: int = 0
    starts: deque[float] = field(default_factory=deque)  # sorted
    backoff_until: float = -math.inf
    throttles: int = 0  # Intuit's 429s since its last other answer
    probing: bool = False  # the call after a back-off is in flight

    def idle(self, now: float) -> bool:
        return (
            self.inflight == 0
            and self.waiting == 0
            and not self.starts
            and self.backoff_until <= now
            and self.throttles == 0
            and not self.probing
        )


class RateLimiter:
    """Accounting for every realm. Callers keep FIFO order: only the head of a realm's line
    calls `poll`; `arrive` admits directly only when nobody is waiting."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._realms: dict[str, _Realm] = {}
        self._arrivals = 0

    def arrive(self, realm: str, now: float) -> Go | Queued | Refuse:
        """A new request for `realm`: start, join the line, or be refused."""
        self._arrivals += 1
        if self._arrivals % _SWEEP_EVERY == 0:
            self.sweep(now)
        state = self._state(realm, now)
        if state.backoff_until > now:
            return Refuse(state.backoff_until - now, "backoff")
        if state.waiting == 0 and self._free(state):
            return self._go(state, now)
        expected = self._window_wait(state, now, ahead=state.waiting)
        if expected > self.limits.max_queue_seconds:
            return Refuse(expected, "window")
        state.waiting += 1
        return Queued(expected)

    def poll(self, realm: str, now: float) -> Go | Wait | Refuse:
        """The head of the line asks again. Go and Refuse take it out of the line."""
        state = self._state(realm, now)
        if state.backoff_until > now:
            state.waiting -= 1
            return Refuse(state.backoff_until - now, "backoff")
        if self._free(state):
            state.waiting -= 1
            return self._go(state, now)
        if len(state.starts) >= self.limits.per_minute:
            return Wait(self._window_wait(state, now, ahead=0))
        return Wait(None)

    def try_start(self, realm: str, now: float) -> Go | Refuse:
        """Start now or be refused, never wait: for callers that must not hold up the line
        (a caller Intuit has not vouched for takes only what nobody waits for)."""
        state = self._state(realm, now)
        if state.backoff_until > now or state.throttles:
            # Never the probe after a back-off either: that is a trusted caller's to make.
            return Refuse(max(1.0, state.backoff_until - now), "backoff")
        if state.waiting == 0 and self._free(state):
            return self._go(state, now)
        return Refuse(max(1.0, self._window_wait(state, now, ahead=state.waiting)), "busy")

    def cancel(self, realm: str, admitted_at: float, now: float) -> None:
        """Undo a start that was never sent (another budget refused it)."""
        state = self._state(realm, now)
        state.inflight -= 1
        with _suppress_missing():
            state.starts.remove(admitted_at)
        state.probing = False
        if state.idle(now):
            del self._realms[realm]

    def sent(self, realm: str, admitted_at: float, now: float) -> None:
        """Intuit answered a call admitted at `admitted_at`: Intuit counted it no later than
        `now`, so its window slot is held until `now + 60` (a late stamp frees no slot
        early)."""
        state = self._realms.get(realm)
        if state is None or now <= admitted_at:
            return
        with _suppress_missing():
            state.starts.remove(admitted_at)
            bisect.insort(state.starts, now)

    def answered(self, realm: str) -> None:
        """Intuit answered something other than 429: the realm is not throttled."""
        state = self._realms.get(realm)
        if state is not None:
            state.throttles = 0
            state.probing = False

    def probe_ended(self, realm: str) -> None:
        """The probe after a back-off got no answer: the next call probes instead."""
        state = self._realms.get(realm)
        if state is not None:
            state.probing = False

    def give_up(self, realm: str, now: float) -> float:
        """A queued request leaves the line unserved (deadline passed, client gone).

        Returns the Retry-After to suggest: until the window has room, at least 1 s.
        """
        state = self._state(realm, now)
        state.waiting -= 1
        return max(1.0, self._window_wait(state, now, ahead=0))

    def done(self, realm: str, now: float) -> None:
        """A started request finished (any outcome): its in-flight slot frees."""
        state = self._state(realm, now)
        state.inflight -= 1
        if state.idle(now):
            del self._realms[realm]

    def throttled(self, realm: str, now: float, retry_after: float | None) -> float:
        """Intuit answered 429: refuse the realm's requests for `retry_after` seconds, or
        when Intuit gave none 1 s, doubling with each 429 in a row up to 60 s; then one
        probe goes before the rest. Returns the back-off applied."""
        state = self._state(realm, now)
        if retry_after is None:
            seconds = min(FIRST_BACKOFF_SECONDS * 2.0**state.throttles, DEFAULT_BACKOFF_SECONDS)
        else:
            seconds = retry_after
        seconds = min(max(seconds, 1.0), MAX_BACKOFF_SECONDS)
        state.throttles = min(state.throttles + 1, 16)
        state.probing = False
        state.backoff_until = max(state.backoff_until, now + seconds)
        return seconds

    def backoff_remaining(self, realm: str, now: float) -> float:
        state = self._realms.get(realm)
        return 0.0 if state is None else max(0.0, state.backoff_until - now)

    def inflight(self, realm: str) -> int:
        state = self._realms.get(realm)
        return 0 if state is None else state.inflight

    def waiting(self, realm: str) -> int:
        state = self._realms.get(realm)
        return 0 if state is None else state.waiting

    def tracked_realms(self) -> int:
        return len(self._realms)

    def sweep(self, now: float) -> None:
        """Forget realms with nothing in flight, waiting, in the window or backing off."""
        for realm in list(self._realms):
            state = self._realms[realm]
            _expire(state, now)
            if state.idle(now):
                del self._realms[realm]

    def _state(self, realm: str, now: float) -> _Realm:
        state = self._realms.get(realm)
        if state is None:
            state = self._realms[realm] = _Realm()
        _expire(state, now)
        return state

    def _free(self, state: _Realm) -> bool:
        return (
            state.inflight < self.limits.concurrency
            and len(state.starts) < self.limits.per_minute
            and not state.probing  # after a back-off, one probe first
        )

    def _go(self, state: _Realm, now: float) -> Go:
        state.inflight += 1
        bisect.insort(state.starts, now)
        if state.throttles:
            state.probing = True
            return Go(probe=True)
        return Go()

    def _window_wait(self, state: _Realm, now: float, ahead: int) -> float:
        """Seconds until the window lets the request with `ahead` others before it start.

        Each request ahead takes a window slot when it starts, at the earliest. So with
        `s` the starts in the window (oldest first) and R the per-minute limit, the k-th
        start overall (k = len(s) + ahead) can happen once the (k - R)-th start has left
        the window: at s[k - R] + 60, or 60 s after a start that is itself still queued.
        Concurrency is not counted: this is a lower bound, the queue deadline covers it.
        """
        per_minute = self.limits.per_minute
        starts = state.starts
        earlier = len(starts) + ahead - per_minute
        if earlier < 0:
            return 0.0
        rounds = 0
        if earlier >= len(starts):
            rounds = (earlier - len(starts)) // per_minute + 1
            earlier -= rounds * per_minute
        base = now if earlier < 0 else max(now, starts[earlier] + WINDOW_SECONDS)
        return base + rounds * WINDOW_SECONDS - now


def _suppress_missing() -> contextlib.suppress:
    """A stamp already out of the window (a call longer than 60 s) is not there to move."""
    return contextlib.suppress(ValueError)


def _expire(state: _Realm, now: float) -> None:
    while state.starts and state.starts[0] <= now - WINDOW_SECONDS:
        state.starts.popleft()


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date (IMF-fixdate, §5.6.7; the obsolete
    forms are not read). None when absent or unreadable: the caller's default applies."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        # Month and day names are English by definition; strptime's are the C locale's.
        when = dt.datetime.strptime(text, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return max(0.0, when.timestamp() - now_epoch)


def retry_after_header(seconds: float) -> str:
    """The `Retry-After` value for a proxy-made 429: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))

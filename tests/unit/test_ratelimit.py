"""Per-realm limit arithmetic: concurrency, the 60 s start window, the queue's expected
wait, back-off after Intuit's 429. Each scenario is a script of (time, step, result)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from qbproxy.core.limits import (
    Go,
    Limits,
    Queued,
    RateLimiter,
    Refuse,
    Wait,
    parse_retry_after,
    retry_after_header,
)

R, S = "9130350000000001", "9130350000000002"
Result = Go | Queued | Wait | Refuse | float | None
Step = tuple[float, str, str, Result]  # (now, action, realm, expected)


def run(limits: Limits, script: list[Step]) -> None:
    limiter = RateLimiter(limits)
    for number, (now, action, realm, expected) in enumerate(script):
        result: Result
        if action == "arrive":
            result = limiter.arrive(realm, now)
        elif action == "poll":
            result = limiter.poll(realm, now)
        elif action == "done":
            limiter.done(realm, now)
            result = None
        elif action == "give_up":
            result = limiter.give_up(realm, now)
        elif action == "try_start":
            result = limiter.try_start(realm, now)
        elif action == "answered":
            limiter.answered(realm)
            result = None
        elif action == "probe_ended":
            limiter.probe_ended(realm)
            result = None
        elif action.startswith("sent "):
            # "sent T": the call admitted at T was answered now + 0.5
            limiter.sent(realm, float(action.split()[1]), now + 0.5)
            result = None
        elif action.startswith("cancel "):
            limiter.cancel(realm, float(action.split()[1]), now)
            result = None
        elif action.startswith("throttled"):
            _, _, given = action.partition(" ")
            result = limiter.throttled(realm, now, float(given) if given else None)
        else:
            raise AssertionError(action)
        assert result == expected, f"step {number}: {action} at {now}"


SCENARIOS: dict[str, tuple[Limits, list[Step]]] = {
    "concurrency: the third waits for a slot, gets it when one finishes": (
        Limits(concurrency=2, per_minute=100, max_queue_seconds=10),
        [
            (0, "arrive", R, Go()),
            (0, "arrive", R, Go()),
            (0, "arrive", R, Queued(0.0)),
            (1, "poll", R, Wait(None)),
            (2, "done", R, None),
            (2, "poll", R, Go()),
        ],
    ),
    "concurrency is per realm": (
        Limits(concurrency=1, per_minute=100, max_queue_seconds=10),
        [
            (0, "arrive", R, Go()),
            (0, "arrive", S, Go()),
            (0, "arrive", R, Queued(0.0)),
        ],
    ),
    "window: a fourth start within 60 s waits until the first leaves it": (
        Limits(concurrency=10, per_minute=3, max_queue_seconds=100),
        [
            (0, "arrive", R, Go()),
            (1, "arrive", R, Go()),
            (2, "arrive", R, Go()),
            (20, "arrive", R, Queued(40.0)),
            (20, "poll", R, Wait(40.0)),
            (59.5, "poll", R, Wait(0.5)),
            (60, "poll", R, Go()),
        ],
    ),
    "window: the expected wait counts the requests queued ahead": (
        Limits(concurrency=10, per_minute=2, max_queue_seconds=1000),
        [
            (0, "arrive", R, Go()),
            (10, "arrive", R, Go()),
            (20, "arrive", R, Queued(40.0)),  # when the start at 0 leaves
            (20, "arrive", R, Queued(50.0)),  # when the start at 10 leaves
            (20, "arrive", R, Queued(100.0)),  # 60 s after the first queued one starts
            (20, "arrive", R, Queued(110.0)),
            (20, "arrive", R, Queued(160.0)),
        ],
    ),
    "window: a longer expected wait than max_queue_seconds is refused at once": (
        Limits(concurrency=10, per_minute=2, max_queue_seconds=10),
        [
            (0, "arrive", R, Go()),
            (1, "arrive", R, Go()),
            (5, "arrive", R, Refuse(55.0, "window")),
            (5, "arrive", S, Go()),  # other realms are not affected
            (52, "arrive", R, Queued(8.0)),  # the start at 0 leaves at 60
            (52, "arrive", R, Queued(9.0)),  # the start at 1 leaves at 61
            (52, "arrive", R, Refuse(68.0, "window")),  # 60 s after the first queued starts
        ],
    ),
    "max_queue_seconds 0: nothing queues behind the window": (
        Limits(concurrency=10, per_minute=1, max_queue_seconds=0),
        [
            (0, "arrive", R, Go()),
            (30, "arrive", R, Refuse(30.0, "window")),
            (60, "arrive", R, Go()),
        ],
    ),
    "first come first served: a newcomer queues behind a waiter even if a slot is free": (
        Limits(concurrency=1, per_minute=100, max_queue_seconds=10),
        [
            (0, "arrive", R, Go()),
            (0, "arrive", R, Queued(0.0)),
            (1, "done", R, None),
            (1, "arrive", R, Queued(0.0)),
            (1, "poll", R, Go()),  # the head takes the slot
            (1, "poll", R, Wait(None)),  # the newcomer, now head, waits
        ],
    ),
    "giving up leaves the line and suggests at least 1 s": (
        Limits(concurrency=1, per_minute=100, max_queue_seconds=10),
        [
            (0, "arrive", R, Go()),
            (0, "arrive", R, Queued(0.0)),
            (10, "give_up", R, 1.0),
            (11, "done", R, None),
            (11, "arrive", R, Go()),  # nobody waiting any more
        ],
    ),
    "giving up while the window is full suggests the window's wait": (
        Limits(concurrency=1, per_minute=1, max_queue_seconds=100),
        [
            (0, "arrive", R, Go()),
            (0, "done", R, None),
            (10, "arrive", R, Queued(50.0)),
            (20, "give_up", R, 40.0),
        ],
    ),
    "Intuit's 429 without Retry-After: 1 s, then one probe; each 429 in a row doubles it": (
        Limits(concurrency=10, per_minute=100, max_queue_seconds=10),
        [
            (0, "arrive", R, Go()),
            (1, "throttled", R, 1.0),
            (1, "done", R, None),
            (1.5, "arrive", R, Refuse(0.5, "backoff")),
            (1.5, "arrive", S, Go()),
            (2, "arrive", R, Go(probe=True)),
            (2, "arrive", R, Queued(0.0)),  # the rest wait for the probe's answer
            (2.1, "poll", R, Wait(None)),
            (2.25, "throttled", R, 2.0),
            (2.25, "done", R, None),
            (2.5, "poll", R, Refuse(1.75, "backoff")),
            (4.25, "arrive", R, Go(probe=True)),
            (4.5, "throttled", R, 4.0),
            (4.5, "done", R, None),
            (8.5, "arrive", R, Go(probe=True)),
            (8.75, "answered", R, None),  # Intuit answered: back to normal
            (8.75, "done", R, None),
            (9, "arrive", R, Go()),
            (9, "arrive", R, Go()),
            (9.5, "throttled", R, 1.0),  # a new episode starts short again
        ],
    ),
    "the back-off grows to 60 s at most": (
        Limits(concurrency=10, per_minute=1000, max_queue_seconds=10),
        [(t * 100.0, "throttled", R, min(2.0**t, 60.0)) for t in range(8)],
    ),
    "a probe that got no answer lets the next call probe": (
        Limits(concurrency=10, per_minute=100, max_queue_seconds=10),
        [
            (0, "throttled", R, 1.0),
            (1, "arrive", R, Go(probe=True)),
            (1, "arrive", R, Queued(0.0)),
            (2, "probe_ended", R, None),
            (2, "done", R, None),
            (2, "poll", R, Go(probe=True)),
        ],
    ),
    "Intuit's Retry-After is honoured, clamped to 1 s .. 1 h, and never shortens a back-off": (
        Limits(concurrency=10, per_minute=100, max_queue_seconds=10),
        [
            (0, "throttled 5", R, 5.0),
            (1, "arrive", R, Refuse(4.0, "backoff")),
            (5, "arrive", R, Go(probe=True)),
            (10, "throttled 0", R, 1.0),
            (10.5, "arrive", R, Refuse(0.5, "backoff")),
            (20, "throttled 100000", R, 3600.0),
            (21, "throttled 2", R, 2.0),
            (30, "arrive", R, Refuse(3590.0, "backoff")),
        ],
    ),
    "a back-off refuses the waiters in line too": (
        Limits(concurrency=1, per_minute=100, max_queue_seconds=10),
        [
            (0, "arrive", R, Go()),
            (0, "arrive", R, Queued(0.0)),
            (1, "throttled", R, 1.0),
            (1, "done", R, None),
            (1, "poll", R, Refuse(1.0, "backoff")),
            (1.5, "arrive", R, Refuse(0.5, "backoff")),
        ],
    ),
    "try_start never queues: it takes only what nobody waits for": (
        Limits(concurrency=2, per_minute=100, max_queue_seconds=10),
        [
            (0, "try_start", R, Go()),
            (0, "arrive", R, Go()),
            (0, "try_start", R, Refuse(1.0, "busy")),  # no slot free
            (0, "arrive", R, Queued(0.0)),
            (1, "done", R, None),
            (1, "try_start", R, Refuse(1.0, "busy")),  # someone waits for that slot
            (1, "poll", R, Go()),
        ],
    ),
    "try_start never makes the probe after a back-off": (
        Limits(concurrency=2, per_minute=100, max_queue_seconds=10),
        [
            (0, "throttled", R, 1.0),
            (0.5, "try_start", R, Refuse(1.0, "backoff")),
            (5, "try_start", R, Refuse(1.0, "backoff")),
            (5, "arrive", R, Go(probe=True)),
            (5.1, "answered", R, None),
            (5.1, "try_start", R, Go()),
        ],
    ),
    "a start counts from when Intuit answered, not from admission (item 11)": (
        Limits(concurrency=10, per_minute=1, max_queue_seconds=100),
        [
            (0, "arrive", R, Go()),
            (0, "sent 0", R, None),  # Intuit answered it at 0.5 s
            (0.5, "done", R, None),
            (60, "arrive", R, Queued(0.5)),  # admitted 60 s ago, but Intuit saw it later
            (60.5, "poll", R, Go()),
        ],
    ),
    "cancel undoes a start that was never sent": (
        Limits(concurrency=1, per_minute=1, max_queue_seconds=100),
        [
            (0, "try_start", R, Go()),
            (0, "cancel 0", R, None),
            (0, "try_start", R, Go()),
        ],
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    limits, script = SCENARIOS[name]
    run(limits, script)


def test_idle_realms_are_forgotten() -> None:
    limiter = RateLimiter(Limits(concurrency=1, per_minute=10, max_queue_seconds=10))
    assert limiter.arrive(R, 0) == Go()
    limiter.done(R, 0)
    assert limiter.tracked_realms() == 1  # its start still counts in the window
    limiter.sweep(59)
    assert limiter.tracked_realms() == 1
    limiter.sweep(60)
    assert limiter.tracked_realms() == 0


def test_arrivals_sweep_now_and_then() -> None:
    limiter = RateLimiter(Limits(concurrency=1, per_minute=10, max_queue_seconds=10))
    for n in range(1000):
        realm = str(n)
        limiter.arrive(realm, 0)
        limiter.done(realm, 0)
    for n in range(100):
        limiter.arrive("busy", 100 + n)
        limiter.done("busy", 100 + n)
    assert limiter.tracked_realms() == 1  # the thousand idle realms went at a sweep


def test_counters() -> None:
    limiter = RateLimiter(Limits(concurrency=1, per_minute=10, max_queue_seconds=10))
    limiter.arrive(R, 0)
    limiter.arrive(R, 0)
    assert (limiter.inflight(R), limiter.waiting(R)) == (1, 1)
    assert (limiter.inflight(S), limiter.waiting(S)) == (0, 0)
    limiter.throttled(R, 0, 60.0)
    assert limiter.backoff_remaining(R, 15) == 45
    assert limiter.backoff_remaining(S, 15) == 0


_NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("-1", None),
        ("1.5", None),  # delay-seconds is an integer (RFC 9110 §10.2.3)
        ("soon", None),
        ("", None),
        (format_datetime(datetime.fromtimestamp(_NOW + 30, UTC), usegmt=True), 30.0),
        (format_datetime(datetime.fromtimestamp(_NOW - 30, UTC), usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00 -0000", None),  # not IMF-fixdate
        ("Wednesday, 21-Oct-15 07:28:00 GMT", None),  # obsolete RFC 850 form: not read
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, _NOW) == expected


@pytest.mark.parametrize(
    ("seconds", "header"),
    [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (59.5, "60"), (3600.0, "3600")],
)
def test_retry_after_header_is_whole_seconds_at_least_one(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header


@pytest.mark.parametrize("module", ["qbproxy.core.limits", "qbproxy.core.circuit"])
def test_core_imports_no_io_libraries(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "io = {'asyncio', 'aiohttp', 'asyncpg', 'prometheus_client', 'socket'}\n"
        "bad = io & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""The per-realm circuit breaker: closed -> open after N consecutive failures -> half-open
after the cool-down (one probe) -> closed on the probe's success. Scripts of
(time, step, result) against a fake clock."""

from __future__ import annotations

import pytest

from qbproxy.core.circuit import Circuits, FailFast, Pass

R, S = "9130350000000001", "9130350000000002"
Result = Pass | FailFast | bool | str | None
Step = tuple[float, str, str, Result]  # (now, action, realm, expected)

OK, FAIL = "ok", "fail"  # a call started while closed reports its outcome
PROBE_OK, PROBE_FAIL = "probe ok", "probe fail"
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
GO, PROBE = Pass(probe=False), Pass(probe=True)


def run(
    script: list[Step],
    failures: int = 3,
    open_seconds: float = 30.0,
    first_open_seconds: float | None = None,
) -> None:
    first = open_seconds if first_open_seconds is None else first_open_seconds
    circuits = Circuits(failures, open_seconds, first)
    for number, (now, action, realm, expected) in enumerate(script):
        result: Result
        if action == "allow":
            result = circuits.allow(realm, now)
        elif action == OK:
            result = circuits.success(realm, probe=False)
        elif action == PROBE_OK:
            result = circuits.success(realm, probe=True)
        elif action == FAIL:
            result = circuits.failure(realm, now, probe=False)
        elif action == PROBE_FAIL:
            result = circuits.failure(realm, now, probe=True)
        elif action == "abandon":
            circuits.abandon(realm)
            result = None
        elif action == "state":
            result = circuits.state(realm, now)
        else:
            raise AssertionError(action)
        assert result == expected, f"step {number}: {action} at {now}"


SCENARIOS: dict[str, list[Step]] = {
    "closed passes everything": [
        (0, "allow", R, GO),
        (0, "state", R, CLOSED),
    ],
    "N consecutive failures open it; it then fails fast for the cool-down": [
        (0, FAIL, R, False),
        (1, FAIL, R, False),
        (2, FAIL, R, True),
        (2, "state", R, OPEN),
        (2, "allow", R, FailFast(30.0)),
        (31.5, "allow", R, FailFast(0.5)),
        (2, "allow", S, GO),  # other realms are not affected
    ],
    "a success in between resets the count": [
        (0, FAIL, R, False),
        (1, FAIL, R, False),
        (2, OK, R, False),
        (3, FAIL, R, False),
        (4, FAIL, R, False),
        (5, "state", R, CLOSED),
        (6, FAIL, R, True),
    ],
    "after the cool-down exactly one probe goes; its success closes the circuit": [
        (0, FAIL, R, False),
        (0, FAIL, R, False),
        (0, FAIL, R, True),
        (30, "state", R, HALF_OPEN),
        (30, "allow", R, PROBE),
        (30, "allow", R, FailFast(30.0)),  # one probe at a time
        (31, PROBE_OK, R, True),
        (31, "state", R, CLOSED),
        (31, "allow", R, GO),
        (32, FAIL, R, False),  # the count starts again from zero
    ],
    "a failed probe re-opens it for another cool-down": [
        (0, FAIL, R, False),
        (0, FAIL, R, False),
        (0, FAIL, R, True),
        (40, "allow", R, PROBE),
        (45, PROBE_FAIL, R, True),
        (45, "state", R, OPEN),
        (50, "allow", R, FailFast(25.0)),
        (75, "allow", R, PROBE),
    ],
    "an abandoned probe lets the next request probe": [
        (0, FAIL, R, False),
        (0, FAIL, R, False),
        (0, FAIL, R, True),
        (30, "allow", R, PROBE),
        (30, "abandon", R, None),
        (30, "allow", R, PROBE),
    ],
    "while open, outcomes of calls started before it opened change nothing": [
        (0, FAIL, R, False),
        (0, FAIL, R, False),
        (0, FAIL, R, True),
        (1, OK, R, False),
        (1, "state", R, OPEN),
        (2, FAIL, R, False),
        (20, "allow", R, FailFast(10.0)),  # the cool-down still runs from 0
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    run(SCENARIOS[name])


# Open for 1 s first, doubling with each failed probe up to 8 s (issue 14, item 1).
BACKOFF: dict[str, list[Step]] = {
    "the first open period is short": [
        (0, FAIL, R, False),
        (0, FAIL, R, False),
        (0, FAIL, R, True),
        (0.5, "allow", R, FailFast(0.5)),
        (1, "state", R, HALF_OPEN),
        (1, "allow", R, PROBE),
        (1.2, PROBE_OK, R, True),
        (1.2, "allow", R, GO),
    ],
    "each failed probe doubles the open period up to open_seconds": [
        (0, FAIL, R, False),
        (0, FAIL, R, False),
        (0, FAIL, R, True),
        (1, "allow", R, PROBE),
        (1, PROBE_FAIL, R, True),  # open for 2 s
        (2.5, "allow", R, FailFast(0.5)),
        (3, "allow", R, PROBE),
        (3, PROBE_FAIL, R, True),  # 4 s
        (7, "allow", R, PROBE),
        (7, PROBE_FAIL, R, True),  # 8 s
        (15, "allow", R, PROBE),
        (15, PROBE_FAIL, R, True),  # still 8 s: the ceiling
        (22, "allow", R, FailFast(1.0)),
        (23, "allow", R, PROBE),
        (23.1, PROBE_OK, R, True),
        (23.1, "state", R, CLOSED),
    ],
    "a success resets the back-off: the next outage starts short again": [
        (0, FAIL, R, False),
        (0, FAIL, R, False),
        (0, FAIL, R, True),
        (1, "allow", R, PROBE),
        (1, PROBE_FAIL, R, True),
        (3, "allow", R, PROBE),
        (3, PROBE_OK, R, True),
        (4, FAIL, R, False),
        (4, FAIL, R, False),
        (4, FAIL, R, True),
        (5, "allow", R, PROBE),
    ],
    "while a probe is in flight the rest fail fast for at most the first period": [
        (0, FAIL, R, False),
        (0, FAIL, R, False),
        (0, FAIL, R, True),
        (1, "allow", R, PROBE),
        (1.5, "allow", R, FailFast(0.5)),
        (1.5, "allow", S, GO),
    ],
    "a probe that hangs past the open period lets another probe go": [
        (0, FAIL, R, False),
        (0, FAIL, R, False),
        (0, FAIL, R, True),
        (1, "allow", R, PROBE),
        (1.75, "allow", R, FailFast(0.25)),
        (2, "allow", R, PROBE),
        (2.5, PROBE_OK, R, True),
    ],
}


@pytest.mark.parametrize("name", list(BACKOFF))
def test_backoff_scenario(name: str) -> None:
    run(BACKOFF[name], open_seconds=8.0, first_open_seconds=1.0)


def test_one_failure_opens_when_so_configured() -> None:
    run([(0, FAIL, R, True), (0.5, "allow", R, FailFast(0.5))], failures=1, open_seconds=1)


def test_counts_by_state_for_the_gauge() -> None:
    circuits = Circuits(1, 10, 10)
    assert circuits.counts(0) == {"open": 0, "half_open": 0}
    circuits.failure(R, 0, probe=False)
    circuits.failure(S, 5, probe=False)
    circuits.failure("3", 0, probe=False)
    circuits.success("3", probe=False)  # ignored while open
    assert circuits.counts(6) == {"open": 3, "half_open": 0}
    assert circuits.counts(12) == {"open": 1, "half_open": 2}
    circuits.allow(R, 12)
    circuits.success(R, probe=True)
    assert circuits.counts(12) == {"open": 1, "half_open": 1}


def test_closed_realms_are_not_kept() -> None:
    circuits = Circuits(3, 10, 10)
    circuits.failure(R, 0, probe=False)
    circuits.success(R, probe=False)
    assert circuits.state(R, 0) == CLOSED
    assert circuits.counts(0) == {"open": 0, "half_open": 0}
    assert not circuits._realms


@pytest.mark.parametrize(
    ("failures", "open_seconds", "first"),
    [(0, 30.0, 1.0), (5, 0.0, 0.0), (5, -1.0, 1.0), (5, 30.0, 0.0), (5, 1.0, 2.0)],
)
def test_refuses_unusable_settings(failures: int, open_seconds: float, first: float) -> None:
    with pytest.raises(ValueError, match="failures >= 1"):
        Circuits(failures, open_seconds, first)

"""Intuit's per-realm limits and the circuit breaker, driven through `Upstream` over real
HTTP against the fake Intuit (and hand-made upstreams where the fake has no such habit).

The fake enforces Intuit's limits itself (qbproxy/sandbox/state.py, `admit`): a request the
proxy let through over the limit would come back 429 from it, so "every answer 200" shows
the proxy held the line. "Not sent" is read from the fake's own call log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from qbproxy.config import UpstreamSettings
from qbproxy.core.limits import retry_after_header
from qbproxy.errors import CircuitOpen, RateLimited, UpstreamTimeout, UpstreamUnavailable
from qbproxy.metrics import Metrics
from qbproxy.upstream import Fetched, Upstream
from tests.integration.conftest import OTHER_REALM, REALM, Intuit, ProxyFactory

Serve = Callable[[web.Application], Awaitable[str]]


class FakeClock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Limited:
    upstream: Upstream
    registry: CollectorRegistry

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


Make = Callable[..., Awaitable[Limited]]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    made: list[Upstream] = []

    async def build(
        base_url: str, clock: Callable[[], float] = time.monotonic, **overrides: Any
    ) -> Limited:
        # The limiter arithmetic is asserted to the request: no margin unless asked for.
        overrides.setdefault("requests_per_minute_margin", 0)
        settings = dataclasses.replace(UpstreamSettings(base_url=base_url), **overrides)
        registry = CollectorRegistry()
        upstream = Upstream(settings, Metrics(registry), clock=clock)
        await upstream.open()
        made.append(upstream)
        return Limited(upstream, registry)

    yield build
    for upstream in made:
        await upstream.close()


async def read(
    intuit: Intuit, upstream: Upstream, realm: str | None = REALM, auth_realm: str = REALM
) -> Fetched:
    return await upstream.fetch(
        "GET",
        f"/v3/company/{auth_realm}/customer/1",
        "minorversion=75",
        intuit.auth(auth_realm),
        entity="Customer",
        realm=realm,
    )


async def until(condition: Callable[[], bool]) -> None:
    """Wait for state a request still travelling over HTTP is about to reach: a condition,
    not a duration; the limiter has no event to await for it."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


async def settle() -> None:
    """Let tasks just created run to their first wait: admission is synchronous up to
    the HTTP call or the line, so one turn of the loop suffices."""
    await asyncio.sleep(0)


# --- concurrency -------------------------------------------------------------------------


async def test_concurrency_is_held_per_realm_and_the_line_moves_on(
    intuit: Intuit, make: Make
) -> None:
    intuit.sandbox.max_concurrency_per_realm = 2  # the fake 429s a third in flight
    limited = await make(intuit.url, max_concurrency_per_realm=2)
    upstream = limited.upstream
    gates = [intuit.sandbox.pause(stage="before", times=1, realm=REALM) for _ in range(2)]
    tasks = [asyncio.create_task(read(intuit, upstream)) for _ in range(5)]
    await settle()
    assert upstream.limiter.inflight(REALM) == 2
    assert upstream.limiter.waiting(REALM) == 3
    for gate in gates:
        await gate.wait_arrived()
    assert intuit.sandbox.count(realm=REALM) == 2

    other = await read(intuit, upstream, realm=OTHER_REALM, auth_realm=OTHER_REALM)
    assert other.status == 200  # another realm does not wait behind this one

    for gate in gates:
        gate.release()
    answers = await asyncio.gather(*tasks)
    assert [a.status for a in answers] == [200] * 5
    assert intuit.sandbox.count(realm=REALM) == 5
    assert upstream.limiter.inflight(REALM) == upstream.limiter.waiting(REALM) == 0
    assert limited.sample("qbproxy_upstream_throttle_avoided_total", entity="Customer") == 3
    assert limited.sample("qbproxy_upstream_throttled_total", entity="Customer") == 0


async def test_a_wait_past_max_queue_seconds_is_the_proxys_own_429(
    intuit: Intuit, make: Make
) -> None:
    limited = await make(intuit.url, max_concurrency_per_realm=1, max_queue_seconds=0.0)
    gate = intuit.sandbox.pause(stage="before", times=1, realm=REALM)
    held = asyncio.create_task(read(intuit, limited.upstream))
    await gate.wait_arrived()
    with pytest.raises(RateLimited) as refused:
        await read(intuit, limited.upstream)
    assert refused.value.reason == "queue"
    assert retry_after_header(refused.value.retry_after) == "1"
    assert intuit.sandbox.count(realm=REALM) == 1  # never sent
    gate.release()
    assert (await held).status == 200
    assert (await read(intuit, limited.upstream)).status == 200


async def test_a_waiter_that_goes_away_leaves_the_line(intuit: Intuit, make: Make) -> None:
    limited = await make(intuit.url, max_concurrency_per_realm=1)
    upstream = limited.upstream
    gate = intuit.sandbox.pause(stage="before", times=1, realm=REALM)
    held = asyncio.create_task(read(intuit, upstream))
    await gate.wait_arrived()
    waiter = asyncio.create_task(read(intuit, upstream))
    await settle()
    assert upstream.limiter.waiting(REALM) == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert upstream.limiter.waiting(REALM) == 0
    gate.release()
    await held
    assert (await read(intuit, upstream)).status == 200
    assert intuit.sandbox.count(realm=REALM) == 2
    assert upstream.limiter.inflight(REALM) == 0


async def test_without_a_realm_nothing_is_limited(intuit: Intuit, make: Make) -> None:
    limited = await make(intuit.url, max_concurrency_per_realm=1, max_queue_seconds=0.0)
    gate = intuit.sandbox.pause(stage="before", times=1, realm=REALM)
    held = asyncio.create_task(read(intuit, limited.upstream))
    await gate.wait_arrived()
    assert (await read(intuit, limited.upstream, realm=None)).status == 200
    gate.release()
    await held


# --- the minute window ---------------------------------------------------------------------


async def test_the_minute_window_refuses_at_once_with_retry_after(
    intuit: Intuit, make: Make
) -> None:
    clock = FakeClock()
    limited = await make(intuit.url, clock=clock, max_requests_per_minute_per_realm=3)
    upstream = limited.upstream
    for _ in range(3):
        assert (await read(intuit, upstream)).status == 200
        clock.now += 10
    with pytest.raises(RateLimited) as refused:  # the queue would wait 30 s, over 10
        await read(intuit, upstream)
    assert refused.value.reason == "window"
    assert refused.value.retry_after == pytest.approx(30.0)
    assert intuit.sandbox.count(realm=REALM) == 3
    other = await read(intuit, upstream, realm=OTHER_REALM, auth_realm=OTHER_REALM)
    assert other.status == 200

    clock.now += 30  # the first start has left the window
    assert (await read(intuit, upstream)).status == 200
    assert intuit.sandbox.count(realm=REALM) == 4


# --- Intuit's 429 ------------------------------------------------------------------------


async def test_intuits_429_is_relayed_and_the_realm_backs_off_briefly_then_probes(
    intuit: Intuit, make: Make
) -> None:
    clock = FakeClock()
    limited = await make(intuit.url, clock=clock)
    upstream = limited.upstream
    intuit.sandbox.throttle_next(2, realm=REALM)
    answer = await read(intuit, upstream)
    assert answer.status == 429
    assert b'<Error code="3001">' in answer.body  # relayed as Intuit sent it

    clock.now += 0.5  # no Retry-After: 1 s first (issue 14, item 4)
    with pytest.raises(RateLimited) as refused:
        await read(intuit, upstream)
    assert refused.value.reason == "backoff"
    assert retry_after_header(refused.value.retry_after) == "1"
    assert intuit.sandbox.count(realm=REALM) == 1
    assert (await read(intuit, upstream, realm=OTHER_REALM, auth_realm=OTHER_REALM)).status == 200

    clock.now += 0.5
    assert (await read(intuit, upstream)).status == 429  # the probe, throttled again: 2 s
    clock.now += 1.5
    with pytest.raises(RateLimited):
        await read(intuit, upstream)
    clock.now += 0.5
    assert (await read(intuit, upstream)).status == 200
    assert limited.sample("qbproxy_upstream_throttled_total", entity="Customer") == 2
    assert limited.sample("qbproxy_upstream_throttle_avoided_total", entity="Customer") == 2
    # Intuit's 429 says Intuit is up: it does not count against the circuit.
    assert upstream.circuits.state(REALM, clock()) == "closed"


async def test_intuits_retry_after_sets_the_back_off(raw_upstream: Serve, make: Make) -> None:
    async def throttled(request: web.Request) -> web.Response:
        return web.Response(status=429, body=b"<Fault/>", headers={"Retry-After": "7"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", throttled)
    clock = FakeClock()
    limited = await make(await raw_upstream(app), clock=clock)
    upstream = limited.upstream
    path = f"/v3/company/{REALM}/preferences"
    assert (await upstream.fetch("GET", path, "", {}, realm=REALM)).status == 429
    clock.now += 2
    with pytest.raises(RateLimited) as refused:
        await upstream.fetch("GET", path, "", {}, realm=REALM)
    assert refused.value.retry_after == pytest.approx(5.0)
    clock.now += 5
    assert (await upstream.fetch("GET", path, "", {}, realm=REALM)).status == 429


# --- the circuit -------------------------------------------------------------------------


async def test_repeated_5xx_open_the_circuit_and_a_probe_closes_it(
    intuit: Intuit, make: Make
) -> None:
    clock = FakeClock()
    limited = await make(
        intuit.url,
        clock=clock,
        circuit_failures=3,
        circuit_open_seconds=30,
        circuit_first_open_seconds=30,
    )
    upstream = limited.upstream
    intuit.sandbox.fail_next(3, status=503, realm=REALM)
    for _ in range(3):
        assert (await read(intuit, upstream)).status == 503  # relayed, not raised
    with pytest.raises(CircuitOpen) as fast:
        await read(intuit, upstream)
    assert isinstance(fast.value, UpstreamUnavailable)  # handlers already map this
    assert fast.value.retry_after == pytest.approx(30.0)
    assert intuit.sandbox.count(realm=REALM) == 3  # failed fast, not sent
    assert limited.sample("qbproxy_upstream_circuits", state="open") == 1
    assert (await read(intuit, upstream, realm=OTHER_REALM, auth_realm=OTHER_REALM)).status == 200

    clock.now += 30
    assert limited.sample("qbproxy_upstream_circuits", state="half_open") == 1
    assert (await read(intuit, upstream)).status == 200  # the probe
    assert upstream.circuits.state(REALM, clock()) == "closed"
    assert limited.sample("qbproxy_upstream_circuits", state="open") == 0
    assert limited.sample("qbproxy_upstream_circuits", state="half_open") == 0


async def test_one_probe_at_a_time(intuit: Intuit, make: Make) -> None:
    clock = FakeClock()
    limited = await make(
        intuit.url,
        clock=clock,
        circuit_failures=1,
        circuit_open_seconds=30,
        circuit_first_open_seconds=30,
    )
    upstream = limited.upstream
    intuit.sandbox.fail_next(1, status=500, realm=REALM)
    assert (await read(intuit, upstream)).status == 500
    clock.now += 30
    gate = intuit.sandbox.pause(stage="before", times=1, realm=REALM)
    probe = asyncio.create_task(read(intuit, upstream))
    await gate.wait_arrived()
    with pytest.raises(CircuitOpen):  # the probe is in flight: the rest fail fast
        await read(intuit, upstream)
    gate.release()
    assert (await probe).status == 200
    assert (await read(intuit, upstream)).status == 200
    assert intuit.sandbox.count(realm=REALM) == 3


async def test_a_failed_probe_reopens_for_another_cool_down(intuit: Intuit, make: Make) -> None:
    clock = FakeClock()
    limited = await make(
        intuit.url,
        clock=clock,
        circuit_failures=1,
        circuit_open_seconds=30,
        circuit_first_open_seconds=30,
    )
    upstream = limited.upstream
    intuit.sandbox.fail_next(2, status=502, realm=REALM)
    assert (await read(intuit, upstream)).status == 502
    clock.now += 30
    assert (await read(intuit, upstream)).status == 502  # the probe
    clock.now += 10
    with pytest.raises(CircuitOpen) as fast:
        await read(intuit, upstream)
    assert fast.value.retry_after == pytest.approx(20.0)  # a new cool-down from the probe
    assert intuit.sandbox.count(realm=REALM) == 2


async def test_connection_errors_open_the_circuit(make: Make) -> None:
    limited = await make("http://127.0.0.1:9", circuit_failures=2)  # discard port
    upstream = limited.upstream
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable) as failed:
            await upstream.fetch("GET", f"/v3/company/{REALM}/preferences", "", {}, realm=REALM)
        assert not isinstance(failed.value, CircuitOpen)
    with pytest.raises(CircuitOpen):
        await upstream.fetch("GET", f"/v3/company/{REALM}/preferences", "", {}, realm=REALM)
    assert upstream.limiter.inflight(REALM) == 0


async def test_a_timeout_counts_against_the_circuit(intuit: Intuit, make: Make) -> None:
    limited = await make(intuit.url, circuit_failures=1, timeout_seconds=0.2)
    gate = intuit.sandbox.hang(realm=REALM)
    with pytest.raises(UpstreamTimeout):
        await read(intuit, limited.upstream)
    gate.release()
    with pytest.raises(CircuitOpen):
        await read(intuit, limited.upstream)


async def test_a_body_cut_mid_stream_counts_against_the_circuit(intuit: Intuit, make: Make) -> None:
    limited = await make(intuit.url, circuit_failures=1)
    intuit.sandbox.kill_mid_stream_next(1, realm=REALM)
    with pytest.raises(UpstreamUnavailable):
        await read(intuit, limited.upstream)
    with pytest.raises(CircuitOpen):
        await read(intuit, limited.upstream)


async def test_4xx_answers_keep_the_circuit_closed(intuit: Intuit, make: Make) -> None:
    limited = await make(intuit.url, circuit_failures=2)
    upstream = limited.upstream
    for _ in range(3):
        answer = await upstream.fetch(
            "GET", f"/v3/company/{REALM}/customer/1", "", {"Authorization": "Bearer nope"}
        )
        assert answer.status == 401
        answer = await upstream.fetch(
            "GET",
            f"/v3/company/{REALM}/customer/1",
            "",
            {"Authorization": "Bearer nope"},
            realm=REALM,
        )
        assert answer.status == 401
    assert upstream.circuits.state(REALM, time.monotonic()) == "closed"


# --- forward: the slot is held until the body is relayed ---------------------------------


def forwarding_app(upstream: Upstream) -> web.Application:
    """A minimal proxy around `forward`, mapping the limiter's refusals as handlers should."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await upstream.forward(
                request,
                max_body_bytes=1 << 20,
                extra_headers={"X-Cache": "BYPASS"},
                entity="Customer",
                realm=request.match_info["realm"],
            )
        except RateLimited as exc:
            return web.Response(
                status=429,
                body=b"throttled",
                headers={"Retry-After": retry_after_header(exc.retry_after)},
            )
        except CircuitOpen:
            return web.Response(status=503)

    app = web.Application()
    app.router.add_route("*", "/v3/company/{realm}/{tail:.*}", handle)
    return app


async def test_forward_holds_the_realm_to_its_limits(
    intuit: Intuit, make: Make, raw_upstream: Serve
) -> None:
    intuit.sandbox.max_concurrency_per_realm = 1
    limited = await make(intuit.url, max_concurrency_per_realm=1)
    upstream = limited.upstream
    base = await raw_upstream(forwarding_app(upstream))
    url = f"{base}/v3/company/{REALM}/customer/1"
    gate = intuit.sandbox.pause(stage="before", times=1, realm=REALM)

    async def get() -> int:
        async with upstream.session.get(url, headers=intuit.auth()) as response:
            await response.read()
            return response.status

    first = asyncio.create_task(get())
    await gate.wait_arrived()
    second = asyncio.create_task(get())
    await until(lambda: upstream.limiter.waiting(REALM) == 1)
    gate.release()
    assert [await first, await second] == [200, 200]

    intuit.sandbox.throttle_next(1, realm=REALM)
    assert await get() == 429  # Intuit's, relayed
    async with upstream.session.get(url, headers=intuit.auth()) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1"
        assert await response.read() == b"throttled"  # the proxy's own
    assert intuit.sandbox.count(realm=REALM) == 3


# --- through the whole proxy -------------------------------------------------------------


async def test_proxy_answers_its_own_429_while_the_realm_backs_off(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    running = await proxy_for(intuit.url)
    path = f"/v3/company/{REALM}/customer/1"
    intuit.sandbox.throttle_next(1, realm=REALM)
    status, _, body = await running.get(path, headers=intuit.auth())
    assert status == 429
    assert b'<Error code="3001">' in body

    status, headers, body = await running.get(path, headers=intuit.auth())
    assert status == 429
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert headers["Content-Type"].startswith("application/xml")
    assert headers["X-Cache"] == "BYPASS"
    assert b'<Error code="3001">' in body
    assert b"ThrottleExceeded" in body
    assert intuit.sandbox.count(realm=REALM) == 1  # Intuit was not asked again

    status, _, body = await running.get(
        f"/v3/company/{OTHER_REALM}/customer/1", headers=intuit.auth(OTHER_REALM)
    )
    assert status == 200
    assert orjson.loads(body)["Customer"]["Id"] == "1"

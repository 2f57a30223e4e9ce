"""`qbproxy serve` on SIGTERM: stop accepting at once, let the request in flight finish
within server.shutdown_timeout_seconds, close the pool and upstream session, exit 0.

The proxy runs as a real subprocess (as in production and `make demo`); the fake Intuit
is served from the test's own event loop and holds the in-flight request at a gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from fake_intuit.faults import CallKind

from tests.integration.conftest import REALM, Intuit

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BASE = f"/v3/company/{REALM}"
FORWARD: tuple[str, CallKind] = (f"{BASE}/companyinfo/{REALM}", "read")  # Upstream.forward
TABLE_LOAD: tuple[str, CallKind] = (
    f"{BASE}/query?query={quote('SELECT * FROM Customer')}",
    "query",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Serving:
    proc: asyncio.subprocess.Process
    port: int
    session: aiohttp.ClientSession
    stderr: asyncio.Task[bytes]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def log(self) -> str:
        """Everything the process wrote to stderr (once it has exited)."""
        async with asyncio.timeout(5):
            return (await self.stderr).decode(errors="replace")


@contextlib.asynccontextmanager
async def serve(intuit: Intuit, dsn: str, shutdown_timeout: float) -> AsyncIterator[Serving]:
    """`python -m qbproxy serve` against the fake Intuit, ready; killed on the way out."""
    port, admin_port = free_port(), free_port()
    env = {
        **os.environ,
        "QBPROXY_UPSTREAM_BASE_URL": intuit.url,
        "QBPROXY_DATABASE_DSN": dsn,
        "QBPROXY_SERVER_HOST": "127.0.0.1",
        "QBPROXY_SERVER_PORT": str(port),
        "QBPROXY_ADMIN_HOST": "127.0.0.1",
        "QBPROXY_ADMIN_PORT": str(admin_port),
        "QBPROXY_SERVER_SHUTDOWN_TIMEOUT_SECONDS": str(shutdown_timeout),
        "QBPROXY_LOG_LEVEL": "INFO",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qbproxy",
        "serve",
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    stderr = asyncio.create_task(proc.stderr.read())  # drained all along: the pipe never fills
    try:
        async with aiohttp.ClientSession() as session:
            async with asyncio.timeout(20):
                while not await _ready(session, f"http://127.0.0.1:{admin_port}/readyz"):
                    assert proc.returncode is None, f"qbproxy serve exited: {proc.returncode}"
                    await asyncio.sleep(0.1)
            yield Serving(proc, port, session, stderr)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if not stderr.done():
            stderr.cancel()
        await asyncio.gather(stderr, return_exceptions=True)


async def _ready(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def get(serving: Serving, intuit: Intuit, path: str) -> tuple[int, bytes]:
    async with serving.session.get(serving.url(path), headers=intuit.auth()) as response:
        return response.status, await response.read()


@pytest.mark.parametrize(("path", "kind"), [FORWARD, TABLE_LOAD], ids=["forward", "table-load"])
async def test_sigterm_drains_the_request_in_flight_and_exits_0(
    intuit: Intuit, pg_dsn: str, path: str, kind: CallKind
) -> None:
    bound = 5.0
    gate = intuit.sandbox.pause(kind=kind, realm=REALM)
    try:
        async with serve(intuit, pg_dsn, shutdown_timeout=bound) as serving:
            in_flight = asyncio.create_task(get(serving, intuit, path))
            await gate.wait_arrived(within_s=10)  # the proxy is waiting on Intuit
            serving.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()

            # The listener closes at once, while the request is still held at the gate.
            async with asyncio.timeout(2):
                while not await refused(serving.port):  # noqa: ASYNC110 - polled, no event
                    await asyncio.sleep(0.02)
            assert not in_flight.done()

            gate.release()
            async with asyncio.timeout(bound):
                status, body = await in_flight
            assert status == 200
            assert orjson.loads(body)  # whole, not cut short by the shutdown

            async with asyncio.timeout(bound + 5):
                code = await serving.proc.wait()
            assert code == 0
            assert time.monotonic() - signalled < bound + 5
            log = await serving.log()
        assert "shutting down" in log
        assert "Traceback" not in log, log
    finally:
        gate.release()


async def test_sigterm_cuts_a_request_held_past_the_shutdown_timeout(
    intuit: Intuit, pg_dsn: str
) -> None:
    """The table load (a task of its own, shielded from its caller) is the path with the
    most to tear down: the loader's task, its lease, the pool and the upstream session."""
    path, kind = TABLE_LOAD
    bound = 0.5
    gate = intuit.sandbox.pause(kind=kind, realm=REALM)
    try:
        async with serve(intuit, pg_dsn, shutdown_timeout=bound) as serving:
            in_flight = asyncio.create_task(get(serving, intuit, path))
            await gate.wait_arrived(within_s=10)
            serving.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            # Intuit never answers: the proxy gives up on it after the shutdown timeout (aiohttp
            # waits up to the timeout for the handler, then again after cancelling it).
            async with asyncio.timeout(2 * bound + 5):
                code = await serving.proc.wait()
            assert code == 0
            assert time.monotonic() - signalled < 2 * bound + 5
            async with asyncio.timeout(2):
                with pytest.raises(aiohttp.ClientError):
                    await in_flight
            log = await serving.log()
        assert "Traceback" not in log, log
        assert f"GET /v3/company/{REALM}/query cancelled" in log  # still an access line
    finally:
        gate.release()

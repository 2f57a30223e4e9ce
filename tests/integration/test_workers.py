"""`qbproxy serve` with server.workers = 2: workers share the port, metrics add up across
them on the one admin port, a write through either worker is seen by every later read
whichever worker answers it, and SIGTERM stops the lot cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import orjson
import pytest

from tests.integration.conftest import REALM, Intuit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(intuit: Intuit, pg_dsn: str) -> AsyncIterator[tuple[str, str]]:
    port, admin = free_port(), free_port()
    env = {
        **os.environ,
        "QBPROXY_UPSTREAM_BASE_URL": intuit.url,
        "QBPROXY_DATABASE_DSN": pg_dsn,
        "QBPROXY_SERVER_PORT": str(port),
        "QBPROXY_ADMIN_PORT": str(admin),
        "QBPROXY_SERVER_WORKERS": "2",
        "QBPROXY_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "qbproxy", "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    base, admin_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}"
    try:
        async with asyncio.timeout(30), aiohttp.ClientSession() as session:
            while True:
                try:
                    # Ready means the workers accept on the proxy port.
                    async with session.get(f"{admin_url}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        yield base, admin_url
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
        assert proc.stderr is not None
        assert b"Traceback" not in await proc.stderr.read()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_two_workers(intuit: Intuit, served: tuple[str, str]) -> None:
    base, admin = served
    auth = intuit.auth()
    text = "SELECT * FROM Customer MAXRESULTS 1000"
    url = f"{base}/v3/company/{REALM}/query?query={quote(text)}"
    customer = next(c for c in intuit.sandbox.entities(REALM, "Customer") if c.get("Active"))
    async with aiohttp.ClientSession() as session:

        async def names() -> list[str]:
            async with session.get(url, headers=auth) as response:
                assert response.status == 200
                doc = orjson.loads(await response.read())
            return [c["DisplayName"] for c in doc["QueryResponse"]["Customer"]]

        # Many connections so that both workers answer, and both keep the page in memory.
        for _ in range(3):
            await asyncio.gather(*(names() for _ in range(20)))
        body = {
            "Id": customer["Id"],
            "SyncToken": customer["SyncToken"],
            "sparse": True,
            "DisplayName": customer["DisplayName"] + " Two",
        }
        async with session.post(
            f"{base}/v3/company/{REALM}/customer",
            data=orjson.dumps(body),
            headers={**auth, "Content-Type": "application/json"},
        ) as response:
            assert response.status == 200
        for seen in await asyncio.gather(*(names() for _ in range(20))):
            assert customer["DisplayName"] + " Two" in seen
            assert customer["DisplayName"] not in seen
        async with session.get(f"{admin}/metrics") as response:
            metrics = await response.text()
    served_queries = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("qbproxy_requests_total{") and 'route="query"' in line
    )
    assert served_queries == 80  # every worker's requests, added up on the admin port
    assert "qbproxy_cache_hit_ratio{" in metrics

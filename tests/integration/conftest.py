"""The fake Intuit and the proxy, each served over real HTTP on loopback.

`proxy_for(sandbox_url)` builds a proxy against a real Postgres (pg_dsn) and waits until
it has applied its migrations; tests talk to it with a real aiohttp client.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fake_intuit import SANDBOX_KEY, Sandbox, SandboxConfig, create_app
from prometheus_client import CollectorRegistry

from qbproxy.app import build_app
from qbproxy.config import Settings, load_config
from qbproxy.services import PROXY, Proxy

REALM = "9130350000000001"
OTHER_REALM = "9130350000000002"


def new_invoice(customer_id: str, amount: float = 150.0) -> dict[str, Any]:
    """An Invoice create body the fake Intuit accepts: one service line."""
    return {
        "CustomerRef": {"value": customer_id},
        "Line": [
            {
                "Amount": amount,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}},
            }
        ],
    }


@dataclasses.dataclass
class Intuit:
    """The fake Intuit as a test sees it: its URL and its control surface."""

    server: TestServer
    sandbox: Sandbox

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def auth(self, realm: str = REALM) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sandbox.token_for(realm)}"}


@dataclasses.dataclass
class Running:
    """A proxy under test: base URL, its shared state and a client session."""

    server: TestServer
    proxy: Proxy
    session: aiohttp.ClientSession
    registry: CollectorRegistry

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def get(self, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        async with self.session.get(self.url(path), **kwargs) as response:
            return response.status, dict(response.headers), await response.read()

    async def post(self, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        async with self.session.post(self.url(path), **kwargs) as response:
            return response.status, dict(response.headers), await response.read()


@pytest.fixture
async def intuit() -> AsyncIterator[Intuit]:
    app = create_app(SandboxConfig(realms=(REALM, OTHER_REALM), seed=7))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Intuit(server, app[SANDBOX_KEY])
    finally:
        await server.close()


ProxyFactory = Callable[..., Awaitable[Running]]


@pytest.fixture
async def proxy_for(pg_dsn: str) -> AsyncIterator[ProxyFactory]:
    """Start proxies (several may share one Postgres) with config overrides as env vars."""
    started: list[Running] = []

    async def start(upstream_url: str, **env: str) -> Running:
        settings = settings_for(upstream_url, pg_dsn, **env)
        registry = CollectorRegistry()
        server = TestServer(build_app(settings, registry), host="127.0.0.1")
        await server.start_server()
        proxy = server.app[PROXY]
        session = aiohttp.ClientSession(auto_decompress=True)
        running = Running(server, proxy, session, registry)
        started.append(running)
        await wait_ready(proxy)
        return running

    yield start
    for running in reversed(started):
        await running.session.close()
        await running.server.close()


@pytest.fixture
async def proxy(intuit: Intuit, proxy_for: ProxyFactory) -> Running:
    return await proxy_for(intuit.url)


def settings_for(upstream_url: str, dsn: str, **env: str) -> Settings:
    environ = {
        "QBPROXY_UPSTREAM_BASE_URL": upstream_url,
        "QBPROXY_DATABASE_DSN": dsn,
        **{f"QBPROXY_{k.upper()}": v for k, v in env.items()},
    }
    return load_config("", environ)


async def wait_ready(proxy: Proxy) -> None:
    async with asyncio.timeout(10):
        await proxy.migrated.wait()


@pytest.fixture
async def raw_upstream() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    """Serve a hand-made upstream app (for behaviours the fake Intuit has no reason to have)."""
    servers: list[TestServer] = []

    async def serve(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield serve
    for server in servers:
        await server.close()

"""The admin listener: /metrics (Prometheus), /healthz (alive), /readyz (cache usable).

A separate port, loopback by default: it is for operators (design.md, promise 4).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder

from qbproxy.db.cache_stats import CacheState, read_cache_state
from qbproxy.errors import StoreUnavailable
from qbproxy.services import Proxy

log = logging.getLogger("qbproxy.admin")

# A scrape waits this long for the cache-state gauges, then goes without them: Prometheus
# scrapes every 15 s by default with a 10 s timeout, and the other metrics must not wait.
# /readyz pings Postgres within the same budget (Kubernetes probes time out after 1 s).
CACHE_STATE_TIMEOUT_SECONDS = 1.0

ADMIN_PROXY = web.AppKey("admin_proxy", Proxy)
REGISTRY = web.AppKey("registry", CollectorRegistry)


def build_admin_app(proxy: Proxy, registry: CollectorRegistry) -> web.Application:
    app = web.Application()
    app[ADMIN_PROXY] = proxy
    app[REGISTRY] = registry
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: Postgres answers and the migrations have applied.

    Circuits are reported, not judged: an open circuit is one realm's trouble with Intuit,
    and the instance still serves every other realm (and that one's cache).
    """
    proxy = request.app[ADMIN_PROXY]
    checks: dict[str, str] = {"migrations": "applied" if proxy.migrated.is_set() else "pending"}
    try:
        async with asyncio.timeout(CACHE_STATE_TIMEOUT_SECONDS):
            await proxy.pool.ping()
        checks["postgres"] = "ok"
    except (StoreUnavailable, TimeoutError):
        checks["postgres"] = "unreachable"
    ready = checks == {"migrations": "applied", "postgres": "ok"}
    registry = request.app[REGISTRY]
    circuits = {
        state: int(registry.get_sample_value("qbproxy_upstream_circuits", {"state": state}) or 0)
        for state in ("open", "half_open")
    }
    return _json(
        {"status": "ready" if ready else "not ready", "checks": checks, "circuits": circuits},
        200 if ready else 503,
    )


async def metrics(request: web.Request) -> web.Response:
    """The registry, plus the cache-state gauges when Postgres answers in time."""
    state = await _cache_state(request.app[ADMIN_PROXY])
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encode(_Scrape(request.app[REGISTRY], state))
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


class _Scrape:
    """One scrape's collector: the shared registry and this scrape's own Postgres figures."""

    def __init__(self, registry: CollectorRegistry, state: CacheState | None) -> None:
        self._registry = registry
        self._state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        if self._state is not None:
            yield from self._state.families()


async def _cache_state(proxy: Proxy) -> CacheState | None:
    if not proxy.migrated.is_set():
        return None
    try:
        async with asyncio.timeout(CACHE_STATE_TIMEOUT_SECONDS), proxy.pool.connection() as conn:
            return await read_cache_state(conn, proxy.windows)
    except (StoreUnavailable, TimeoutError) as exc:
        log.debug("cache-state gauges left out of this scrape: %s", exc)
        return None


def _json(doc: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")

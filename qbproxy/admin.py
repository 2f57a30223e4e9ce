"""The admin listener: /metrics (Prometheus), /healthz (alive), /readyz (cache usable).

A separate port, loopback by default: it is for operators (design.md, promise 4).
"""

from __future__ import annotations

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from qbproxy.errors import StoreUnavailable
from qbproxy.state import Proxy

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
    """Ready: Postgres answers and the migrations have applied."""
    proxy = request.app[ADMIN_PROXY]
    checks: dict[str, str] = {"migrations": "applied" if proxy.migrated.is_set() else "pending"}
    try:
        await proxy.store.ping()
        checks["postgres"] = "ok"
    except StoreUnavailable:
        checks["postgres"] = "unreachable"
    ready = checks == {"migrations": "applied", "postgres": "ok"}
    return _json(
        {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def _json(doc: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")

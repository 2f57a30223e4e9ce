"""/_sandbox/*: the control surface over HTTP, for a benchmark driving a fake Intuit that
runs in another process (in-process tests use the `Sandbox` object directly)."""

from __future__ import annotations

from typing import Any, cast, get_args

import orjson
from aiohttp import web

from fake_intuit.errors import WriteError
from fake_intuit.faults import CallKind
from fake_intuit.state import SANDBOX_KEY

SETTABLE = (
    "latency_ms",
    "latency_jitter_ms",
    "max_concurrency_per_realm",
    "max_requests_per_minute_per_realm",
    "webhook_url",
    "verifier_token",
    "webhook_format",
)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json")


async def calls(request: web.Request) -> web.Response:
    """Call counts, filtered by ?kind=&realm=&entity=, and split by kind."""
    sb = request.app[SANDBOX_KEY]
    realm, entity = request.query.get("realm"), request.query.get("entity")
    kind = cast("CallKind | None", request.query.get("kind"))
    by_kind = {k: sb.count(k, realm, entity) for k in get_args(CallKind) if kind in (None, k)}
    return _json({"count": sum(by_kind.values()), "by_kind": by_kind})


async def reset(request: web.Request) -> web.Response:
    request.app[SANDBOX_KEY].reset_calls()
    return _json({"ok": True})


async def settings(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    changes = await request.json(loads=orjson.loads)
    unknown = set(changes) - set(SETTABLE)
    if unknown:
        return _json({"error": f"not settable: {sorted(unknown)}"}, 400)
    for key, value in changes.items():
        setattr(sb, key, value)
    return _json({key: getattr(sb, key) for key in SETTABLE})


async def mutate(request: web.Request) -> web.Response:
    """{"realm","entity","id","changes"}: an out-of-band edit, as in the QBO web UI."""
    sb = request.app[SANDBOX_KEY]
    body = await request.json(loads=orjson.loads)
    try:
        doc = sb.mutate_out_of_band(body["realm"], body["entity"], body["id"], body["changes"])
    except (KeyError, WriteError) as exc:
        return _json({"error": repr(exc)}, 400)
    return _json(doc)


async def history(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    q = request.query
    key = (q.get("realm", ""), q.get("entity", ""), q.get("id", ""))
    return _json(sb.history.get(key, []))


async def tokens(request: web.Request) -> web.Response:
    return _json(request.app[SANDBOX_KEY].tokens)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/_sandbox/calls", calls)
    app.router.add_post("/_sandbox/reset", reset)
    app.router.add_post("/_sandbox/settings", settings)
    app.router.add_post("/_sandbox/mutate", mutate)
    app.router.add_get("/_sandbox/history", history)
    app.router.add_get("/_sandbox/tokens", tokens)

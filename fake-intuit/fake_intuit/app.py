"""The fake Intuit's aiohttp application: one pipeline for every /v3 request (log, latency,
auth, rate limits, injected faults, gates, answer) and `create_app`."""

from __future__ import annotations

import time
import zlib
from collections.abc import AsyncIterator

from aiohttp import web

from fake_intuit import control
from fake_intuit.config import SandboxConfig
from fake_intuit.envelopes import (
    WWW_AUTHENTICATE,
    Reply,
    auth_fault,
    dumps,
    fault,
    headers,
    server_fault,
    throttle_xml,
)
from fake_intuit.faults import Call
from fake_intuit.routes import Request, classify, dispatch, query_text
from fake_intuit.state import SANDBOX_KEY, Sandbox


async def handle(request: web.Request) -> web.StreamResponse:
    sb = request.app[SANDBOX_KEY]
    realm = request.match_info["realm"]
    parts = tuple(p for p in request.match_info["tail"].split("/") if p)
    raw = _decoded(await request.read(), request.headers.get("Content-Encoding"))
    if raw is None:
        # A body that cannot be decoded (a corrupt gzip stream): Intuit's 400, not a crash.
        body = fault("2020", "Request has invalid or unsupported property", "body", "")
        return web.Response(status=400, body=dumps(body), headers=headers("application/json"))
    req = Request(
        request.method,
        parts,
        request.query,
        raw,
        realm,
        request.headers.get("Authorization", ""),
    )
    text = query_text(req) if parts[:1] == ("query",) else None
    kind, entity = classify(request.method, parts, text)
    call = Call(
        request.method,
        request.path,
        request.query_string,
        realm,
        kind,
        entity,
        text,
        time.monotonic_ns(),
    )
    sb.record(call)
    status = 499  # recorded if the client goes away before an answer
    try:
        reply, kill = await _answer(sb, req, call)
        status = reply.status
        return await _send(request, reply, kill)
    finally:
        call.status, call.finished_ns = status, time.monotonic_ns()


async def _answer(sb: Sandbox, req: Request, call: Call) -> tuple[Reply, bool]:
    now = sb.now()
    denied = _auth(sb, req.realm, req.authorization)
    if denied:
        reply = Reply(denied, dumps(auth_fault(denied, int(now * 1000))))
        if denied == 401:
            reply.headers["Www-Authenticate"] = WWW_AUTHENTICATE
        return reply, False
    throttled = Reply(429, throttle_xml(sb.clock.body_time(now)), "application/xml")
    if not sb.admit(req.realm):
        return throttled, False
    sb.inflight[req.realm] += 1
    try:
        await sb.delay()  # inside the in-flight count: slow answers use up concurrency
        rule = sb.faults.take(call)
        if rule is not None and rule.action == "throttle":
            return throttled, False
        if rule is not None and rule.action == "fail":
            return Reply(
                rule.status, dumps(server_fault(rule.status, sb.clock.body_time(now)))
            ), False
        await sb.faults.pass_gates(call, "before")
        replay_key = _replay_key(req, call)
        if replay_key in sb.idempotent:  # a repeated requestid gets the original answer
            status, body = sb.idempotent[replay_key]
            reply = Reply(status, body)
        else:
            reply = await dispatch(sb, req)
            if replay_key is not None and reply.stream is None:
                sb.idempotent[replay_key] = (reply.status, reply.body)
        await sb.faults.pass_gates(call, "after")
        return reply, rule is not None and rule.action == "kill"
    finally:
        sb.inflight[req.realm] -= 1


def _auth(sb: Sandbox, realm: str, authorization: str) -> int:
    """0 when the bearer token is accepted for the realm; 401 for no or an unknown token;
    403 for a token valid only for other realms, or an unknown realm (qbo-api.md)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return 401
    token = token.strip()
    if realm in sb.realms and token in sb.tokens.get(realm, ()):
        return 0
    known = any(token in tokens for tokens in sb.tokens.values())
    return 403 if known else 401


def _replay_key(req: Request, call: Call) -> tuple[str, str] | None:
    requestid = req.params.get("requestid")
    if requestid and call.kind in ("write", "batch"):
        return (req.realm, requestid)
    return None


async def _send(request: web.Request, reply: Reply, kill: bool) -> web.StreamResponse:
    hdrs = headers(reply.content_type) | reply.headers
    if reply.stream is None and not kill:
        return web.Response(status=reply.status, body=reply.body, headers=hdrs)
    response = web.StreamResponse(status=reply.status, headers=hdrs)
    chunks: AsyncIterator[bytes] | None = reply.stream
    if reply.stream is None:
        response.content_length = len(reply.body)
    else:
        response.enable_chunked_encoding()
    await response.prepare(request)
    if kill:
        first = reply.body[: len(reply.body) // 2] if chunks is None else await anext(chunks)
        await response.write(first[: max(1, len(first) // 2)])
        if request.transport is not None:
            request.transport.close()  # the client sees a truncated body
        return response
    if chunks is not None:
        async for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[SANDBOX_KEY].aclose()


def _decoded(raw: bytes, encoding: str | None) -> bytes | None:
    """The body per its Content-Encoding (gzip, deflate, identity); None if undecodable."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return raw
    if name not in ("gzip", "x-gzip", "deflate"):
        return None
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in name else zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, 16 * 1024 * 1024)
    except zlib.error:
        return None
    return out if inflater.eof and not inflater.unused_data else None


def create_app(config: SandboxConfig | None = None) -> web.Application:
    """An aiohttp application serving a freshly seeded fake Intuit; state in app[SANDBOX_KEY]."""
    # Bodies are decoded here (`_decoded`), so a corrupt one is a 400, as at Intuit.
    app = web.Application(client_max_size=16 * 1024 * 1024, handler_args={"auto_decompress": False})
    app[SANDBOX_KEY] = Sandbox(config or SandboxConfig())
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_route("*", "/v3/company/{realm}/{tail:.*}", handle)
    control.add_routes(app)
    return app

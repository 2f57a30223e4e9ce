"""Forwarding untouched: method, path, raw query string, body and headers go up as sent;
status, headers and body come back as Intuit sent them, streamed, with X-Cache: BYPASS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web

from tests.integration.conftest import REALM, ProxyFactory

Serve = Callable[[web.Application], Awaitable[str]]


def echo_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        doc = {
            "method": request.method,
            "path": request.path,
            "query_string": request.rel_url.raw_query_string,
            "headers": {str(k): v for k, v in request.headers.items()},
            "body": body.decode("latin-1"),
        }
        return web.Response(
            status=int(request.headers.get("X-Status", "200")),
            body=orjson.dumps(doc),
            headers={
                "Content-Type": "application/json;charset=utf-8",
                "intuit_tid": "1-abc-def",
                "Retry-After": "7",
                "X-Upstream-Only": "kept",
            },
        )

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def test_get_is_forwarded_with_raw_query_string_and_auth(
    raw_upstream: Serve, proxy_for: ProxyFactory
) -> None:
    running = await proxy_for(await raw_upstream(echo_app()))
    # node-quickbooks sends CDC times with an unencoded '+hh:mm' (qbo-api.md).
    query = "entities=Customer,Invoice&changedSince=2026-01-01T00:00:00+07:00&minorversion=75"
    status, headers, body = await running.get(
        f"/v3/company/{REALM}/cdc?{query}",
        headers={"Authorization": "Bearer tok-1", "Accept": "application/json"},
    )
    seen = orjson.loads(body)
    assert status == 200
    assert seen["method"] == "GET"
    assert seen["path"] == f"/v3/company/{REALM}/cdc"
    assert seen["query_string"] == query
    assert seen["headers"]["Authorization"] == "Bearer tok-1"
    assert seen["headers"]["Accept"] == "application/json"
    assert headers["X-Cache"] == "BYPASS"
    assert headers["intuit_tid"] == "1-abc-def"
    assert headers["Retry-After"] == "7"
    assert headers["X-Upstream-Only"] == "kept"
    assert headers["Content-Type"] == "application/json;charset=utf-8"


async def test_post_body_and_content_type_are_forwarded(
    raw_upstream: Serve, proxy_for: ProxyFactory
) -> None:
    running = await proxy_for(await raw_upstream(echo_app()))
    payload = b'{"Name": "Widget", "Type": "Service"}'
    status, headers, body = await running.post(
        f"/v3/company/{REALM}/item?minorversion=75",
        data=payload,
        headers={"Content-Type": "application/json", "Authorization": "Bearer t"},
    )
    seen = orjson.loads(body)
    assert status == 200
    assert seen["method"] == "POST"
    assert seen["body"].encode("latin-1") == payload
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["query_string"] == "minorversion=75"
    assert headers["X-Cache"] == "BYPASS"


async def test_error_status_is_relayed_unchanged(
    raw_upstream: Serve, proxy_for: ProxyFactory
) -> None:
    running = await proxy_for(await raw_upstream(echo_app()))
    status, headers, _ = await running.get(
        f"/v3/company/{REALM}/budget/{REALM}", headers={"X-Status": "401"}
    )
    assert status == 401
    assert headers["X-Cache"] == "BYPASS"


async def test_hop_by_hop_headers_are_not_forwarded(
    raw_upstream: Serve, proxy_for: ProxyFactory
) -> None:
    running = await proxy_for(await raw_upstream(echo_app()))
    _, _, body = await running.get(
        f"/v3/company/{REALM}/preferences",
        headers={"Proxy-Authorization": "secret", "TE": "trailers", "X-Custom": "yes"},
    )
    seen = orjson.loads(body)["headers"]
    assert "Proxy-Authorization" not in seen
    assert "TE" not in seen
    assert seen["X-Custom"] == "yes"


async def test_large_response_streams_before_upstream_finishes(
    raw_upstream: Serve, proxy_for: ProxyFactory
) -> None:
    """The first megabyte reaches the client while the upstream still holds the rest."""
    release = asyncio.Event()
    chunk = b"x" * (1024 * 1024)

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        await response.write(chunk)
        await release.wait()
        for _ in range(4):
            await response.write(chunk)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", big)
    running = await proxy_for(await raw_upstream(app))
    async with running.session.get(running.url(f"/v3/company/{REALM}/download/1")) as response:
        assert response.headers["X-Cache"] == "BYPASS"
        first = await asyncio.wait_for(response.content.readexactly(len(chunk)), 10)
        assert first == chunk
        assert not release.is_set()
        release.set()
        rest = await response.read()
    assert len(rest) == 4 * len(chunk)


async def test_request_body_streams_up(raw_upstream: Serve, proxy_for: ProxyFactory) -> None:
    """An upload larger than any buffer arrives whole (sent chunked, never held entire)."""
    running = await proxy_for(await raw_upstream(echo_app()))

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(8):
            yield bytes([65 + i]) * 256 * 1024

    async with running.session.post(
        running.url(f"/v3/company/{REALM}/upload"), data=chunks()
    ) as response:
        seen = orjson.loads(await response.read())
    assert len(seen["body"]) == 8 * 256 * 1024
    assert seen["body"].startswith("A" * 1000)
    assert seen["body"].endswith("H" * 1000)


async def test_body_over_limit_is_a_413_fault(raw_upstream: Serve, proxy_for: ProxyFactory) -> None:
    running = await proxy_for(await raw_upstream(echo_app()), server_max_body_bytes="1000")
    status, headers, body = await running.post(
        f"/v3/company/{REALM}/item", data=b"y" * 5000, headers={"Content-Type": "application/json"}
    )
    assert status == 413
    assert orjson.loads(body)["Fault"]["Error"][0]["Message"] == "Request Entity Too Large"
    assert headers["X-Cache"] == "BYPASS"


async def test_path_outside_v3_is_a_404_fault(raw_upstream: Serve, proxy_for: ProxyFactory) -> None:
    running = await proxy_for(await raw_upstream(echo_app()))
    status, headers, body = await running.get("/admin/secrets")
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert orjson.loads(body)["Fault"]["Error"][0]["code"] == "10000"


async def test_unreachable_upstream_is_a_502_fault_and_proxy_keeps_serving(
    proxy_for: ProxyFactory, raw_upstream: Serve
) -> None:
    running = await proxy_for("http://127.0.0.1:9")  # discard port: nothing listens
    status, headers, body = await running.get(f"/v3/company/{REALM}/budget/{REALM}")
    assert status == 502
    assert headers["X-Cache"] == "BYPASS"
    assert orjson.loads(body)["Fault"]["Error"][0]["Message"] == "Bad Gateway"
    status, _, _ = await running.get(f"/v3/company/{REALM}/preferences")
    assert status == 502


async def test_upstream_timeout_is_a_504_fault(
    raw_upstream: Serve, proxy_for: ProxyFactory
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    app = web.Application()
    app.router.add_get("/{tail:.*}", slow)
    running = await proxy_for(await raw_upstream(app), upstream_timeout_seconds="0.3")
    status, _headers, body = await running.get(f"/v3/company/{REALM}/preferences")
    assert status == 504
    assert orjson.loads(body)["Fault"]["Error"][0]["Message"] == "Gateway Timeout"

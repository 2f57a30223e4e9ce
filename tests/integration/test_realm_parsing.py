"""One realm parser (qbproxy/core/routing.py, `is_realm`): a path whose "realm" is 40
digits, or digits of another script, names no realm. It is forwarded for Intuit to refuse,
and never held to a realm's limits nor learned as a trusted token's realm."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import asyncpg
import pytest
from aiohttp import web

from tests.integration.conftest import REALM, ProxyFactory

Serve = Callable[[web.Application], Awaitable[str]]
TOKEN = {"Authorization": "Bearer a-token-intuit-would-accept"}


def _always_ok(calls: list[str]) -> web.Application:
    """An upstream that answers 200 to anything: were the path's realm taken for one, the
    caller's token would be learned as trusted for it."""

    async def ok(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response({"CompanyInfo": {"Id": "1"}, "time": "2026-01-01T00:00:00Z"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    return app


@pytest.mark.parametrize(
    ("realm", "is_a_realm"),
    [
        ("1" * 40, False),
        ("١٢٣٤٥٦٧٨٩", False),  # Arabic-Indic digits: str.isdigit() says yes
        ("123456789" + "٠", False),
        (REALM, True),  # the control: a realm is limited and learned
    ],
)
async def test_only_ascii_digit_realms_are_limited_and_trusted(
    raw_upstream: Serve, proxy_for: ProxyFactory, pg_dsn: str, realm: str, is_a_realm: bool
) -> None:
    calls: list[str] = []
    running = await proxy_for(
        await raw_upstream(_always_ok(calls)),
        upstream_max_requests_per_minute_per_realm="2",
        upstream_requests_per_minute_margin="0",
        upstream_max_queue_seconds="0",
    )
    path = f"/v3/company/{quote(realm)}/companyinfo/1"  # forwarded: not by realm

    statuses = [(await running.get(path, headers=TOKEN))[0] for _ in range(4)]

    if is_a_realm:
        assert statuses == [200, 200, 429, 429]  # the proxy's own 429 past the window
        assert len(calls) == 2
    else:
        assert statuses == [200] * 4
        assert len(calls) == 4
    assert await running.proxy.tokens.trusted(realm, TOKEN["Authorization"]) is is_a_realm
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetchval(
            "SELECT count(*) FROM qbo_token_trust WHERE realm_id = $1", realm
        )
    finally:
        await conn.close()
    assert rows == (1 if is_a_realm else 0)

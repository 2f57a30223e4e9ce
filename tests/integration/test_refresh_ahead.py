"""Refresh-ahead (qbproxy/sync/ahead.py): a table in use is refreshed in the background before its
TTL runs out, with the last trusted caller's token, so a busy realm's reads stay hits across
TTL boundaries and nobody waits on a refresh; a realm left alone expires; nothing is asked
for a realm without a trusted token. Short TTLs stand in for five minutes; the fake Intuit
counts the calls."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import REALM, Intuit, ProxyFactory, Running
from tests.integration.test_cdc import (
    EVERYTHING,
    TABLES,
    direct,
    metric,
    upstream_calls,
    via,
    warm,
)

TTL = 3.0
AHEAD = 1.0  # refresh when 1 s of freshness is left; the tick is 0.25 s
BUSY = 2.5 * TTL  # how long the tests keep a realm busy
# A table is refreshed each TTL - AHEAD seconds while in use: one CDC call for the realm.
MOST_REFRESHES = int(BUSY / (TTL - AHEAD)) + 1


async def ahead_proxy(proxy_for: ProxyFactory, intuit: Intuit, **env: str) -> Running:
    return await proxy_for(
        intuit.url,
        cache_ttl_seconds=str(TTL),
        sync_refresh_ahead_seconds=str(AHEAD),
        **env,
    )


async def ask_all(proxy: Running, intuit: Intuit, seconds: float) -> list[str]:
    """Query every table every 0.1 s for `seconds`; the X-Cache of each answer."""
    caches: list[str] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        for entity in TABLES:
            caches.append((await via(proxy, intuit, EVERYTHING[entity]))[0])
        await asyncio.sleep(0.1)
    return caches


async def test_a_busy_realm_stays_hits_across_ttl_boundaries(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    proxy = await ahead_proxy(proxy_for, intuit)
    await warm(proxy, intuit)
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    intuit.sandbox.mutate_out_of_band(REALM, "Customer", customer["Id"], {"DisplayName": "Ahead"})
    intuit.sandbox.reset_calls()

    caches = await ask_all(proxy, intuit, BUSY)

    assert set(caches) == {"HIT"}, caches  # no request found a table expired, none waited
    calls = upstream_calls(intuit)
    # One CDC call per TTL - AHEAD for the realm's three tables; never a whole reload.
    assert calls["query"] == calls["read"] == 0
    assert 2 <= calls["cdc"] <= MOST_REFRESHES, calls
    assert metric(proxy, "qbproxy_refresh_ahead_total", outcome="refreshed") >= 2 * len(TABLES)
    # The edit made in QBO meanwhile is served, from cache.
    cache, page = await via(proxy, intuit, EVERYTHING["Customer"])
    assert cache == "HIT"
    assert page == await direct(intuit, EVERYTHING["Customer"])


async def test_a_realm_left_alone_expires_after_at_most_one_more_refresh(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    proxy = await ahead_proxy(proxy_for, intuit)
    await warm(proxy, intuit)
    intuit.sandbox.reset_calls()

    await asyncio.sleep(3 * TTL)

    # In use for one TTL after the last question: at most the one refresh that began then.
    assert intuit.sandbox.count(kind="cdc") <= 1
    assert proxy.proxy.demand.in_use(proxy.proxy.clock()) == {}
    assert proxy.proxy.demand.token(REALM) is None  # the token is not kept either
    cache, _ = await via(proxy, intuit, EVERYTHING["Invoice"])
    assert cache == "MISS"


async def test_nothing_is_refreshed_without_a_trusted_token(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    # Intuit's acceptance vouches for a token for 1 s only: by the time the tables are due,
    # the token the realm was last used with is no longer trusted.
    proxy = await ahead_proxy(proxy_for, intuit, cache_token_trust_seconds="1")
    await warm(proxy, intuit)
    intuit.sandbox.reset_calls()

    await asyncio.sleep(TTL)

    assert intuit.sandbox.count() == 0
    assert metric(proxy, "qbproxy_refresh_ahead_total", outcome="no_token") >= 1
    assert proxy.proxy.demand.token(REALM) is None


async def test_a_refused_token_is_dropped_after_one_call(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    proxy = await ahead_proxy(proxy_for, intuit)
    await warm(proxy, intuit)
    old = intuit.auth()
    intuit.sandbox.tokens[REALM] = ("a-new-token",)  # the app's old token was revoked
    intuit.sandbox.reset_calls()

    await asyncio.sleep(TTL)

    assert intuit.sandbox.count(kind="cdc") == 1  # the one attempt, answered 401
    assert metric(proxy, "qbproxy_refresh_ahead_total", outcome="failed") == 1
    assert proxy.proxy.demand.token(REALM) is None
    # Intuit refused it: the old token gets no cached answer either.
    status, headers, _ = await proxy.get(
        f"/v3/company/{REALM}/query?query=select%20*%20from%20Invoice", headers=old
    )
    assert (status, headers["X-Cache"]) == (401, "MISS")


async def test_instances_sharing_postgres_refresh_a_realm_once_per_ttl(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    first = await ahead_proxy(proxy_for, intuit)
    second = await ahead_proxy(proxy_for, intuit)
    await warm(first, intuit)
    for entity in TABLES:  # the second instance is in use too, on the tables the first loaded
        assert (await via(second, intuit, EVERYTHING[entity]))[0] == "HIT"
    intuit.sandbox.reset_calls()

    caches = await asyncio.gather(ask_all(first, intuit, BUSY), ask_all(second, intuit, BUSY))

    assert set(caches[0]) | set(caches[1]) == {"HIT"}
    assert upstream_calls(intuit)["query"] == 0
    # Two instances, one refresh per TTL: the lease and the freshness check in Postgres.
    assert 2 <= intuit.sandbox.count(kind="cdc") <= MOST_REFRESHES

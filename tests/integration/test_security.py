"""No leaks (design.md, promise 4): realms never mix, cached data goes only to tokens Intuit
accepted, tokens and query literals never reach the logs, and bad input is never a 500."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import OTHER_REALM, REALM, Intuit, ProxyFactory, Running

TEXT = "SELECT * FROM Customer WHERE Active IN (true, false) MAXRESULTS 1000"


async def query(
    proxy: Running, realm: str, auth: dict[str, str], text: str = TEXT
) -> tuple[int, str, bytes]:
    status, headers, body = await proxy.get(
        f"/v3/company/{realm}/query?query={quote(text)}", headers=auth
    )
    return status, headers["X-Cache"], body


async def test_realm_b_never_gets_realm_a_rows(intuit: Intuit, proxy: Running) -> None:
    a_ids = {c["Id"] for c in intuit.sandbox.entities(REALM, "Customer")}
    await query(proxy, REALM, intuit.auth(REALM))  # realm A's table is complete
    # A's token on B's path: Intuit refuses, and the proxy serves nothing of A.
    status, cache, body = await query(proxy, OTHER_REALM, intuit.auth(REALM))
    assert (status, cache) == (403, "MISS")
    # B's own token, asking by A's ids: only B's rows can come back.
    ids = ",".join(f"'{i}'" for i in sorted(a_ids)[:20])
    text = f"SELECT * FROM Customer WHERE Id IN ({ids})"
    status, _, body = await query(proxy, OTHER_REALM, intuit.auth(OTHER_REALM), text)
    assert status == 200
    b_docs = {c["Id"]: c for c in intuit.sandbox.entities(OTHER_REALM, "Customer")}
    for customer in orjson.loads(body)["QueryResponse"].get("Customer", []):
        assert customer == b_docs[customer["Id"]]


async def test_forged_or_expired_token_never_gets_a_hit(intuit: Intuit, proxy: Running) -> None:
    good = intuit.auth()
    await query(proxy, REALM, good)
    assert (await query(proxy, REALM, good))[1] == "HIT"
    for auth in ({"Authorization": "Bearer forged"}, {}, {"Authorization": "Basic eDp5"}):
        status, cache, body = await query(proxy, REALM, auth)
        assert (status, cache) == (401, "MISS")
        assert b"QueryResponse" not in body
    # The token expires at Intuit: the next forwarded request learns it, trust goes at once.
    token = intuit.sandbox.token_for(REALM)
    intuit.sandbox.tokens = {REALM: ("a-new-token",)}
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    status, _, _ = await proxy.get(
        f"/v3/company/{REALM}/customer/{customer['Id']}?include=x", headers=good
    )
    assert status == 401
    status, cache, _ = await query(proxy, REALM, {"Authorization": f"Bearer {token}"})
    assert (status, cache) == (401, "MISS")


async def test_untrusted_writes_cannot_empty_the_cache(intuit: Intuit, proxy: Running) -> None:
    await query(proxy, REALM, intuit.auth())
    for _ in range(3):
        status, _, _ = await proxy.post(
            f"/v3/company/{REALM}/customer",
            data=b'{"DisplayName": "x"}',
            headers={"Authorization": "Bearer forged", "Content-Type": "application/json"},
        )
        assert status == 401
    assert (await query(proxy, REALM, intuit.auth()))[1] == "HIT"


async def test_tokens_and_query_literals_never_reach_the_logs(
    intuit: Intuit, proxy: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    token = intuit.sandbox.token_for(REALM)
    secret = "Zebra-Secret-42"
    auth = intuit.auth()
    text = f"SELECT * FROM Customer WHERE DisplayName = '{secret}'"
    await query(proxy, REALM, auth, text)
    await query(proxy, REALM, auth, text)
    await query(proxy, REALM, auth, f"SELECT * FROM Customer WHERE Notes = '{secret}'")
    await query(proxy, REALM, {"Authorization": f"Bearer {token}x"}, text)
    await proxy.post(
        f"/v3/company/{REALM}/query",
        data=text.encode(),
        headers={**auth, "Content-Type": "application/text"},
    )
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    await proxy.get(f"/v3/company/{REALM}/customer/{customer['Id']}", headers=auth)
    await proxy.post(
        f"/v3/company/{REALM}/batch",
        data=orjson.dumps({"BatchItemRequest": [{"bId": "1", "Query": text}]}),
        headers={**auth, "Content-Type": "application/json"},
    )
    await proxy.get(f"/v3/company/{REALM}/companyinfo/{REALM}?q={secret}", headers=auth)
    # The proxy's own loggers; `qbproxy serve` turns aiohttp's access log off (the test
    # servers here keep theirs, and the fake Intuit is not the proxy).
    logged = "\n".join(
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("qbproxy") and not r.name.startswith("fake_intuit")
    )
    assert "[CACHE" in logged  # the access lines are there
    assert token not in logged
    assert secret not in logged
    assert "Bearer" not in logged


async def test_concurrent_request_limit_is_a_503_fault(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    proxy = await proxy_for(intuit.url, server_max_connections="2")
    gate = intuit.sandbox.hang()
    held = [
        asyncio.create_task(proxy.get(f"/v3/company/{REALM}/preferences", headers=intuit.auth()))
        for _ in range(2)
    ]
    await gate.wait_arrived()
    while len(gate.calls) < 2:  # noqa: ASYNC110 - the gate signals each arrival, not a count
        await asyncio.sleep(0.01)
    status, _, body = await proxy.get(f"/v3/company/{REALM}/preferences")
    assert status == 503
    assert orjson.loads(body)["Fault"]["Error"][0]["Message"] == "Service Unavailable"
    gate.release()
    assert [s for s, _, _ in await asyncio.gather(*held)] == [200, 200]


PATHS = st.one_of(
    st.sampled_from(
        [
            f"/v3/company/{REALM}/query",
            f"/v3/company/{REALM}/customer/1",
            f"/v3/company/{REALM}/invoice",
            f"/v3/company/{REALM}/batch",
            f"/v3/company/{REALM}/payment/abc",
            "/v3/company/x/query",
            "/v3/",
            "/",
        ]
    ),
    st.text(alphabet="/abcdefv3%.~-_0123456789", max_size=40).map(lambda p: "/" + p),
)
QUERIES = st.text(alphabet="=&?%+ abcdqueryopminrsv'\"()*,<>0123456789", max_size=60)
BODIES = st.binary(max_size=200) | st.text(max_size=200).map(str.encode)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
    path=PATHS,
    query_string=QUERIES,
    body=BODIES,
    content_type=st.sampled_from(["application/json", "application/text", "text/plain", ""]),
    auth=st.sampled_from(["", "Bearer forged", "Bearer token-9130350000000001", "Basic x"]),
)
async def test_fuzzed_requests_never_get_a_500_or_a_traceback(
    intuit: Intuit,
    proxy: Running,
    method: str,
    path: str,
    query_string: str,
    body: bytes,
    content_type: str,
    auth: str,
) -> None:
    headers = {k: v for k, v in (("Authorization", auth), ("Content-Type", content_type)) if v}
    url = proxy.url(path) + ("?" + quote(query_string, safe="=&") if query_string else "")
    async with proxy.session.request(
        method, url, data=body if method != "GET" else None, headers=headers
    ) as response:
        text = await response.read()
    assert response.status != 500
    assert b"Traceback" not in text


async def test_oversized_header_is_a_431_fault(intuit: Intuit, proxy_for: ProxyFactory) -> None:
    proxy = await proxy_for(intuit.url, server_max_header_bytes="1024")
    status, headers, body = await proxy.get(
        f"/v3/company/{REALM}/preferences", headers={"X-Big": "x" * 2000, **intuit.auth()}
    )
    assert status == 431
    assert headers["Content-Type"].startswith("application/json")
    assert orjson.loads(body)["Fault"]["Error"][0]["Message"] == "Request Header Fields Too Large"
    status, _, _ = await proxy.get(f"/v3/company/{REALM}/preferences", headers=intuit.auth())
    assert status == 200


async def test_expired_token_trust_rows_are_dropped_at_start(
    intuit: Intuit, proxy_for: ProxyFactory, pg_dsn: str
) -> None:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "INSERT INTO qbo_token_trust VALUES ($1, $2, now() - interval '1 day'), "
            "($1, $3, now())",
            REALM,
            b"old-fingerprint",
            b"new-fingerprint",
        )
        await proxy_for(intuit.url)
        kept = await conn.fetch("SELECT fingerprint FROM qbo_token_trust ORDER BY fingerprint")
    finally:
        await conn.close()
    assert [bytes(r["fingerprint"]) for r in kept] == [b"new-fingerprint"]


async def test_a_running_instance_keeps_dropping_expired_token_trust_rows(
    intuit: Intuit, proxy: Running, pg_dsn: str
) -> None:
    import asyncpg

    from qbproxy.app import prune_tokens

    pruning = asyncio.create_task(prune_tokens(proxy.proxy, every=0.05))
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(
            "INSERT INTO qbo_token_trust VALUES ($1, $2, now() - interval '1 day')",
            REALM,
            b"expired-while-running",
        )
        left = 1
        for _ in range(100):  # up to 5 s
            await asyncio.sleep(0.05)
            left = await conn.fetchval("SELECT count(*) FROM qbo_token_trust")
            if left == 0:
                break
    finally:
        pruning.cancel()
        await conn.close()
    assert left == 0

"""Hostile callers and Intuit's faults against a running proxy over real sockets (issue 14):
callers that leave, forged tokens, slow bodies, an Intuit that drops, fails or throttles and
then recovers, malformed and fuzzed requests. Each test is bounded in time; none asserts a
latency, only outcomes (a recovery "within 5 s" has a 5 s deadline, not a measurement)."""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.integration.conftest import REALM, Intuit, ProxyFactory, Running

Serve = Callable[[web.Application], Awaitable[str]]
BASE = f"/v3/company/{REALM}"
GOOD = {"Authorization": "Bearer good"}
JSON = {"Content-Type": "application/json"}
TEXT = "SELECT * FROM Customer MAXRESULTS 1000"


class Scripted:
    """A hand-made Intuit whose behaviour a test switches: "ok", "500", "503", "429",
    "429-retry-after", "drop". It accepts only `Bearer good` (401 otherwise, after
    `delay`, as Intuit takes its time even for a 401)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 0.0
        self.calls = 0
        self.seen: list[tuple[dict[str, str], bytes]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = await request.read()
        self.seen.append(({str(k): v for k, v in request.headers.items()}, body))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        if self.mode in ("500", "503"):
            fault = {"Fault": {"Error": [{"Message": "x", "code": "10000"}]}}
            return web.json_response(fault, status=int(self.mode))
        if self.mode.startswith("429"):
            headers = {"Retry-After": "1"} if self.mode == "429-retry-after" else {}
            return web.Response(status=429, body=b"<Fault/>", headers=headers)
        if request.headers.get("Authorization") != GOOD["Authorization"]:
            return web.json_response({"fault": {"error": []}}, status=401)
        if request.method == "POST":
            doc = {"Customer": {"Id": "1", "SyncToken": str(self.calls)}, "time": "t"}
            return web.json_response(doc)
        return web.json_response({"CompanyInfo": {"Id": REALM}, "time": "t"})


async def started(
    raw_upstream: Serve, proxy_for: ProxyFactory, **env: str
) -> tuple[Scripted, Running]:
    intuit = Scripted()
    proxy = await proxy_for(await raw_upstream(intuit.app()), **env)
    status, _, _ = await proxy.get(f"{BASE}/companyinfo/{REALM}", headers=GOOD)
    assert status == 200  # Intuit vouched for the good token
    return intuit, proxy


async def trusted_write(proxy: Running) -> int:
    body = orjson.dumps({"Id": "1", "SyncToken": "0", "sparse": True, "Notes": "n"})
    status, _, _ = await proxy.post(f"{BASE}/customer", data=body, headers={**GOOD, **JSON})
    return status


async def impatient(proxy: Running, path: str, headers: dict[str, str], seconds: float) -> None:
    """A caller that gives up (closes its socket) after `seconds`."""
    timeout = aiohttp.ClientTimeout(total=seconds)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            async with session.get(proxy.url(path), headers=headers) as response:
                await response.read()
        except TimeoutError:
            pass


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.exc_info is not None and not r.name.startswith("fake_intuit")
    ]


# --- item 1: callers that leave never open a circuit ----------------------------------------


async def test_callers_that_leave_do_not_open_the_circuit(
    raw_upstream: Serve, proxy_for: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    intuit, proxy = await started(raw_upstream, proxy_for)
    intuit.delay = 0.3
    path = f"{BASE}/companyinfo/{REALM}"
    forged = {"Authorization": "Bearer bogus"}
    async with asyncio.timeout(30):
        await asyncio.gather(*(impatient(proxy, path, forged, 0.05) for _ in range(10)))
        await asyncio.gather(*(impatient(proxy, path, GOOD, 0.1) for _ in range(20)))
        await asyncio.sleep(0.5)  # the abandoned calls finish at Intuit
        assert proxy.proxy.upstream.circuits.state(REALM, time.monotonic()) == "closed"
        intuit.delay = 0.0
        assert await trusted_write(proxy) == 200
    assert tracebacks(caplog) == []


# --- items 2 and 4: Intuit's faults and recovery -------------------------------------------


@pytest.mark.parametrize("fault", ["drop", "500", "503", "429", "429-retry-after"])
async def test_a_trusted_write_succeeds_within_5s_of_intuits_recovery(
    raw_upstream: Serve, proxy_for: ProxyFactory, fault: str
) -> None:
    intuit, proxy = await started(raw_upstream, proxy_for)
    intuit.mode = fault
    async with asyncio.timeout(20):
        outage_ends = time.monotonic() + 3
        while time.monotonic() < outage_ends:  # clients keep trying through the outage
            assert await trusted_write(proxy) != 200
            await asyncio.sleep(0.1)
        intuit.mode = "ok"
        recovered = time.monotonic()
        while await trusted_write(proxy) != 200:
            assert time.monotonic() - recovered < 5, f"still refused 5 s after recovery ({fault})"
            await asyncio.sleep(0.1)


async def test_refused_writes_purge_nothing_and_cached_reads_stay_hits(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    proxy = await proxy_for(intuit.url, upstream_circuit_failures="2")
    auth = intuit.auth()
    query = f"{BASE}/query?query={quote(TEXT)}"
    await proxy.get(query, headers=auth)
    assert (await proxy.get(query, headers=auth))[1]["X-Cache"] == "HIT"
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    update = {"Id": customer["Id"], "SyncToken": customer["SyncToken"], "sparse": True}
    # Intuit fails: two forwarded calls open the realm's circuit.
    intuit.sandbox.fail_next(2, status=503, realm=REALM)
    for _ in range(2):
        assert (await proxy.get(f"{BASE}/preferences", headers=auth))[0] == 503
    for _ in range(5):
        status, headers, _ = await proxy.post(
            f"{BASE}/customer", data=orjson.dumps(update), headers={**auth, **JSON}
        )
        assert (status, headers["X-Cache"]) == (503, "BYPASS")  # refused: never sent
        assert (await proxy.get(query, headers=auth))[1]["X-Cache"] == "HIT"
    # The proxy's own 429 (the realm backing off after Intuit's) purges nothing either.
    await asyncio.sleep(1.1)  # the circuit's first open period
    intuit.sandbox.throttle_next(1, realm=REALM)
    assert (await proxy.get(f"{BASE}/preferences", headers=auth))[0] == 429
    status, _, _ = await proxy.post(
        f"{BASE}/customer", data=orjson.dumps(update), headers={**auth, **JSON}
    )
    assert status == 429
    assert (await proxy.get(query, headers=auth))[1]["X-Cache"] == "HIT"
    writes = [c for c in intuit.sandbox.calls if c.kind == "write"]
    assert writes == []


# --- item 3: forged tokens cannot starve trusted callers ------------------------------------


async def test_forged_tokens_cannot_starve_trusted_callers(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    proxy = await proxy_for(intuit.url)
    auth = intuit.auth()
    query = f"{BASE}/query?query={quote(TEXT)}"
    await proxy.get(query, headers=auth)
    intuit.sandbox.latency_ms = 100
    forged = [
        proxy.get(f"{BASE}/customer/{n % 50 + 1}", headers={"Authorization": f"Bearer forged{n}"})
        for n in range(400)
    ]
    customer = intuit.sandbox.entities(REALM, "Customer")[0]
    update = {"Id": customer["Id"], "SyncToken": customer["SyncToken"], "sparse": True}

    async def trusted() -> list[tuple[int, str]]:
        await asyncio.sleep(0.05)  # the forged flood is under way
        out = []
        for _ in range(3):
            status, headers, _ = await proxy.get(query, headers=auth)
            out.append((status, headers["X-Cache"]))
        status, headers, _ = await proxy.get(f"{BASE}/preferences", headers=auth)
        out.append((status, "uncached"))
        status, _, _ = await proxy.post(
            f"{BASE}/customer", data=orjson.dumps(update), headers={**auth, **JSON}
        )
        out.append((status, "write"))
        return out

    async with asyncio.timeout(60):
        results = await asyncio.gather(trusted(), *forged)
    assert results[0] == [(200, "HIT")] * 3 + [(200, "uncached"), (200, "write")]
    assert {status for status, _, _ in results[1:]} <= {401, 429}
    assert proxy.proxy.upstream.circuits.state(REALM, time.monotonic()) == "closed"


# --- item 5: slow bodies ---------------------------------------------------------------------


async def test_slow_bodies_hold_no_slot_and_get_a_408(
    intuit: Intuit, proxy_for: ProxyFactory
) -> None:
    proxy = await proxy_for(intuit.url, server_max_connections="4", server_body_timeout_seconds="1")
    host, port = proxy.server.host, proxy.server.port
    head = (
        f"POST {BASE}/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/text\r\n"
        "Content-Length: 1000\r\n\r\nS"
    ).encode()
    slow = []
    async with asyncio.timeout(20):
        for _ in range(40):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(head)
            slow.append((reader, writer))
        for _ in range(5):  # normal callers are served meanwhile
            status, _, _ = await proxy.get(f"{BASE}/preferences", headers=intuit.auth())
            assert status == 200
        for reader, writer in slow:
            answer = await reader.read()
            assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
            assert b'"Fault"' in answer
            writer.close()


# --- items 9, 10, 12: bodies, ids, headers, logs ---------------------------------------------


def echo_app(seen: list[tuple[dict[str, str], bytes]]) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        seen.append(({str(k): v for k, v in request.headers.items()}, await request.read()))
        return web.json_response({"ok": True})

    # Bodies as they arrive, not decompressed by the echo server itself.
    app = web.Application(handler_args={"auto_decompress": False})
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def test_bodies_are_forwarded_byte_for_byte_with_their_encoding(
    raw_upstream: Serve, proxy_for: ProxyFactory
) -> None:
    seen: list[tuple[dict[str, str], bytes]] = []
    proxy = await proxy_for(await raw_upstream(echo_app(seen)))
    packed = gzip.compress(b'{"DisplayName": "' + b"x" * 500 + b'"}')
    headers = {**JSON, "Content-Encoding": "gzip", "Connection": "keep-alive, X-Secret"}
    status, _, _ = await proxy.post(
        f"{BASE}/item", data=packed, headers={**headers, "X-Secret": "s", "X-Kept": "k"}
    )
    assert status == 200
    sent, body = seen[-1]
    assert body == packed
    assert sent["Content-Encoding"] == "gzip"
    assert int(sent["Content-Length"]) == len(packed)
    assert "X-Secret" not in sent  # named in Connection: hop-by-hop
    assert sent["X-Kept"] == "k"


async def test_gzip_query_bodies_are_read_and_bad_ones_are_a_400(
    intuit: Intuit, proxy: Running
) -> None:
    auth = {**intuit.auth(), "Content-Type": "application/text", "Content-Encoding": "gzip"}
    for _ in range(2):
        status, headers, body = await proxy.post(
            f"{BASE}/query", data=gzip.compress(TEXT.encode()), headers=auth
        )
        assert status == 200
        assert orjson.loads(body)["QueryResponse"]["Customer"]
    assert headers["X-Cache"] == "HIT"
    status, headers, body = await proxy.post(
        f"{BASE}/query", data=b"\x1f\x8bnot gzip", headers=auth
    )
    assert status == 400
    assert orjson.loads(body)["Fault"]["Error"][0]["code"]


async def test_a_json_content_type_on_a_post_query_is_forwarded(
    intuit: Intuit, proxy: Running
) -> None:
    auth = intuit.auth()
    headers = {**auth, "Content-Type": "application/text"}
    await proxy.post(f"{BASE}/query", data=TEXT.encode(), headers=headers)
    _, headers, _ = await proxy.post(f"{BASE}/query", data=TEXT.encode(), headers={**auth, **JSON})
    assert headers["X-Cache"] == "BYPASS"  # qbo-api.md names application/text only


async def test_huge_and_long_ids_are_forwarded_never_a_500(intuit: Intuit, proxy: Running) -> None:
    auth = intuit.auth()
    await proxy.get(f"{BASE}/query?query={quote(TEXT)}", headers=auth)
    for id_ in ("9" * 8000, "1" * 26, "1" * 19):
        status, headers, _ = await proxy.get(f"{BASE}/customer/{id_}", headers=auth)
        assert status < 500
        assert headers["X-Cache"] == "BYPASS" or status in (400, 404)
        text = f"SELECT * FROM Customer WHERE Id = '{id_}'"
        status, _, _ = await proxy.get(f"{BASE}/query?query={quote(text)}", headers=auth)
        assert status < 500
    assert proxy.registry.get_sample_value("qbproxy_store_errors_total") == 0


async def test_malformed_requests_and_leaving_clients_log_no_traceback(
    intuit: Intuit, proxy: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    host, port = proxy.server.host, proxy.server.port
    async with asyncio.timeout(20):
        for raw in (b"GARBAGE\r\n\r\n", b"GET /v3/ HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(raw)
            assert b" 400 " in (await reader.read()).split(b"\r\n")[0]
            writer.close()
        # A client that leaves mid-body.
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            f"POST {BASE}/invoice HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode()
        )
        await writer.drain()
        writer.close()
        await asyncio.sleep(0.2)
        # ANSI escapes in a decoded path reach the log escaped.
        await proxy.get(f"{BASE}/x%1b%5b31mred", headers=intuit.auth())
    warnings = [r for r in caplog.records if r.getMessage().startswith("malformed request")]
    assert len(warnings) == 2
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert tracebacks(caplog) == []
    logged = [r.getMessage() for r in caplog.records if r.name == "qbproxy.access"]
    assert any("\\x1b[31mred" in line for line in logged)
    assert not any("\x1b" in line for line in logged)


# --- the fuzz run ----------------------------------------------------------------------------


def fuzzed(rng: random.Random, token: str) -> tuple[str, str, dict[str, str], bytes | None]:
    realm = rng.choice([REALM, REALM, "1" * 33, "٣٣", "0", "9130350000000002"])
    segment = rng.choice(
        ["query", "customer", "invoice", "payment", "batch", "preferences", "cdc", "x\x1b"]
    )
    path = f"/v3/company/{realm}/{segment}"
    if rng.random() < 0.5:
        path += "/" + rng.choice(["1", "9" * rng.randint(1, 8000), "abc", "1/send", "-1", "%00"])
    texts = [
        TEXT,
        "SELECT COUNT(*) FROM Invoice WHERE Balance > '0'",
        f"SELECT * FROM Customer WHERE Id = '{'7' * rng.randint(1, 40)}'",
        "SELECT * FROM Payment WHERE TxnDate > '2026-01-0" + rng.choice("1x'") + "'",
        "select * from customer where DisplayName like '%" + rng.choice("a%_'\\") + "%'",
        "".join(
            rng.choice("SELECT *FROMWHERE'()=<>,0123456789") for _ in range(rng.randint(0, 80))
        ),
    ]
    text = rng.choice(texts)
    query_string = rng.choice(
        [
            "",
            f"query={quote(text)}",
            "minorversion=75",
            "query=a&query=b",
            "operation=delete",
            "%zz",
        ]
    )
    if query_string:
        path += "?" + query_string
    method = rng.choice(["GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD"])
    headers = {
        "Authorization": rng.choice([f"Bearer {token}", "Bearer forged", "", "Basic eA=="]),
        "Content-Type": rng.choice(["application/text", "application/json", "text/plain", ""]),
    }
    body: bytes | None = None
    if method in ("POST", "PUT"):
        raw = rng.choice(
            [
                text.encode(),
                b'{"Id": "' + b"9" * rng.randint(1, 30) + b'", "SyncToken": "0", "sparse": true}',
                b'{"BatchItemRequest": [{"bId": "1", "Query": "' + text.encode() + b'"}]}',
                bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64))),
            ]
        )
        encoding = rng.choice(["", "", "gzip", "gzip-broken", "deflate", "br"])
        if encoding == "gzip":
            raw = gzip.compress(raw)
        elif encoding == "gzip-broken":
            raw, encoding = gzip.compress(raw)[:-5], "gzip"
        if encoding:
            headers["Content-Encoding"] = encoding
        body = raw
    return method, path, {k: v for k, v in headers.items() if v}, body


async def test_fuzzed_requests_get_no_proxy_made_5xx_and_log_no_traceback(
    intuit: Intuit, proxy: Running, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(14)
    token = intuit.sandbox.token_for(REALM)
    requests = [fuzzed(rng, token) for _ in range(2500)]
    made_5xx: list[str] = []
    queue: asyncio.Queue[tuple[str, str, dict[str, str], bytes | None]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            method, path, headers, body = queue.get_nowait()
            async with proxy.session.request(
                method, proxy.url("/") + path.lstrip("/"), headers=headers, data=body
            ) as response:
                await response.read()
                if response.status >= 500:
                    made_5xx.append(f"{method} {path[:80]} -> {response.status}")

    async with asyncio.timeout(60):
        await asyncio.gather(*(worker() for _ in range(16)))
    assert made_5xx == []
    assert tracebacks(caplog) == []

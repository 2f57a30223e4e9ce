"""`make demo`: the fake Intuit, `qbproxy serve` (embedded Postgres unless
QBPROXY_DATABASE_DSN is set) and a few requests through it, showing what the cache served."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web
from fake_intuit import SANDBOX_KEY, SandboxConfig, create_app

REALM = "9130350000000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(
    session: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise SystemExit(f"qbproxy serve exited with {proc.returncode}")
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("qbproxy did not become ready within 60 s")


async def main() -> int:
    intuit = create_app(SandboxConfig(realms=(REALM,), latency_ms=250))
    sandbox = intuit[SANDBOX_KEY]
    runner = web.AppRunner(intuit, access_log=None)
    await runner.setup()
    intuit_port, proxy_port, admin_port = free_port(), free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", intuit_port).start()
    env = {
        **os.environ,
        "QBPROXY_UPSTREAM_BASE_URL": f"http://127.0.0.1:{intuit_port}",
        "QBPROXY_SERVER_PORT": str(proxy_port),
        "QBPROXY_ADMIN_PORT": str(admin_port),
        "QBPROXY_LOG_LEVEL": os.environ.get("QBPROXY_LOG_LEVEL", "WARNING"),
    }
    print(f"fake Intuit on :{intuit_port} (250 ms a call); starting qbproxy serve on :{proxy_port}")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "qbproxy", "serve", env=env)
    base = f"http://127.0.0.1:{proxy_port}/v3/company/{REALM}"
    auth = {"Authorization": f"Bearer {sandbox.token_for(REALM)}"}
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, f"http://127.0.0.1:{admin_port}/readyz", proc)
            customer = sandbox.entities(REALM, "Customer")[0]
            steps = [
                ("GET", "SELECT * FROM Customer MAXRESULTS 5"),
                ("GET", "SELECT * FROM Customer WHERE Balance > '0' ORDERBY Balance DESC"),
                ("POST", "select count(*) from customer"),
                ("READ", f"customer/{customer['Id']}"),
                ("GET", "SELECT * FROM Invoice WHERE Balance > '0' MAXRESULTS 10"),
                ("GET", f"SELECT * FROM Invoice WHERE CustomerRef = '{customer['Id']}'"),
                ("WRITE", "customer (sparse update of DisplayName)"),
                ("GET", "SELECT * FROM Customer MAXRESULTS 5"),
            ]
            print(f"\n{'request':<72} {'X-Cache':<8} {'ms':>7}  Intuit calls")
            for kind, what in steps:
                sandbox.reset_calls()
                started = time.perf_counter()
                if kind == "READ":
                    request = session.get(f"{base}/{what}", headers=auth)
                elif kind == "WRITE":
                    current = sandbox.get(REALM, "Customer", customer["Id"])
                    assert current is not None
                    body = {
                        "Id": customer["Id"],
                        "SyncToken": current["SyncToken"],
                        "sparse": True,
                        "DisplayName": current["DisplayName"] + " (renamed)",
                    }
                    request = session.post(
                        f"{base}/customer",
                        data=orjson.dumps(body),
                        headers={**auth, "Content-Type": "application/json"},
                    )
                elif kind == "POST":
                    request = session.post(
                        f"{base}/query",
                        data=what.encode(),
                        headers={**auth, "Content-Type": "application/text"},
                    )
                else:
                    request = session.get(f"{base}/query?query={quote(what)}", headers=auth)
                async with request as response:
                    await response.read()
                    cache = response.headers.get("X-Cache", "-")
                ms = (time.perf_counter() - started) * 1000
                print(f"{kind + ' ' + what:<72.72} {cache:<8} {ms:7.1f}  {len(sandbox.calls)}")
            async with session.get(f"http://127.0.0.1:{admin_port}/metrics") as response:
                metrics = await response.text()
        saved = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("qbproxy_upstream_calls_saved_total")
        )
        print(f"\nanswers served from cache instead of Intuit: {saved:.0f}")
        print(f"metrics: http://127.0.0.1:{admin_port}/metrics (while running)")
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
        await runner.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

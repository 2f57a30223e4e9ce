"""Tiny runs of the chat and assistant benchmarks (direct, and `qbproxy serve` with CDC and
with whole reloads), so the harness cannot rot, and a deliberately stale cache that the
stale checkers must catch (a checker that cannot fail is worthless).

qbproxy gets a fresh database on $QBPROXY_TEST_DSN's server when set, else its embedded
Postgres, as `python -m bench` does. Figures are not judged here, only truths no
timing can move: the cache saves upstream calls and serves nothing stale, and after a
write's purge the CDC variant refreshes by CDC where the other reloads whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from yarl import URL

from bench.assistant import generate as generate_assistant
from bench.chat import ChatOptions, run_assistant, run_chat
from bench.common import fake_intuit, free_port
from bench.replay import Replayer
from bench.report import chat_markdown, contender_report
from bench.report_assistant import markdown as assistant_markdown
from bench.staleness import stale_reports
from bench.trace import CREATED, TraceParams
from bench.trace import load as load_trace

pytestmark = pytest.mark.slow


async def test_chat_harness_smoke(tmp_path: Path) -> None:
    lines: list[str] = []
    options = ChatOptions(
        trace=TraceParams(
            realms=2,
            sessions=2,
            seed=5,
            write_share=0.2,
            customers_per_realm=20,
            invoices_per_realm=40,
            payments_per_realm=15,
        ),
        save_trace=tmp_path / "trace.json",
        latency_ms=5,
        latency_jitter_ms=0,
        time_scale=0.0005,
        cache_ttl_seconds=300,
        contenders=("direct", "qbproxy", "qbproxy-reload"),
        out_dir=tmp_path / "results",
        dsn=os.environ.get("QBPROXY_TEST_DSN") or None,
        progress=False,
    )
    report = await run_chat(options, log=lines.append)

    assert report["mode"] == "chat"
    assert report["machine"]["nproc"]
    assert report["trace"]["sessions"] == 2
    assert report["trace"]["realms"] == 2
    direct, proxy, reload = report["contenders"]
    assert (direct["name"], proxy["name"], reload["name"]) == (
        "direct",
        "qbproxy",
        "qbproxy-reload",
    )
    for c in (direct, proxy, reload):
        assert c["available"], c
        assert c["requests"] >= report["trace"]["questions"]
        assert c["read_errors"] == 0
        assert c["errors"] == 0
        assert c["failed_writes"] == 0
        assert c["latency_ms"]["reads"]["n"] == c["reads"]
        assert c["documents_checked"] > 0
        assert set(c["upstream_calls"]) >= {"total", "query", "read", "write", "cdc"}
        assert sum(c["upstream_breakdown"].values()) == c["upstream_calls"]["total"]
        assert c["upstream_breakdown"]["cdc"] == c["upstream_calls"]["cdc"]
        assert set(c["throttled"]) == {"seen_by_app", "failed_after_retries", "by_intuit"}
    # Direct: every request is an upstream call, and the stale-read check finds nothing.
    assert (
        direct["upstream_calls"]["total"] == direct["requests"] + direct["throttled"]["seen_by_app"]
    )
    assert direct["stale_reads"] == 0
    assert direct["upstream_breakdown"]["table_load_pages"] == 0
    assert direct["upstream_breakdown"]["cdc"] == 0
    assert (proxy["notes"]["cdc"], reload["notes"]["cdc"]) == (True, False)
    # qbproxy, both ways: fewer upstream calls, answers from cache, nothing stale after writes.
    for c in (proxy, reload):
        assert c["upstream_calls"]["total"] < direct["upstream_calls"]["total"]
        assert c["reduction_vs_direct"] > 0
        assert c["cache"].get("hit", 0) > 0
        assert c["latency_ms"]["hit"]["n"] > 0
        assert c["stale_reads"] == 0, c["stale_examples"]
        assert c["writes"] > 0
        assert c["upstream_breakdown"]["table_load_pages"] > 0
    # The trace writes (write_share) and then reads the purged tables, loaded whole before: the
    # CDC variant refreshes them by CDC, the other reloads them whole and never calls CDC.
    assert proxy["upstream_breakdown"]["cdc"] > 0
    assert reload["upstream_breakdown"]["cdc"] == 0
    assert (
        reload["upstream_breakdown"]["table_load_pages"]
        > proxy["upstream_breakdown"]["table_load_pages"]
    )
    versus = report["cdc_vs_reload"]
    assert (versus["cdc"]["name"], versus["reload"]["name"]) == ("qbproxy", "qbproxy-reload")
    assert versus["cdc"]["calls"] == proxy["upstream_calls"]["total"]
    assert versus["reload"]["calls"] == reload["upstream_calls"]["total"]
    assert versus["calls_saved"] == versus["reload"]["calls"] - versus["cdc"]["calls"]

    written = orjson.loads((tmp_path / "results" / "chat.json").read_bytes())
    assert [c["name"] for c in written["contenders"]] == ["direct", "qbproxy", "qbproxy-reload"]
    assert "_latencies" not in written["contenders"][0]
    assert written["cdc_vs_reload"] == versus
    table = chat_markdown(report)
    assert "| qbproxy |" in table
    assert "| qbproxy-reload |" in table
    assert "stale reads" in table
    assert "| CDC calls |" in table
    assert (
        f"| qbproxy | {proxy['upstream_breakdown']['writes']} | "
        f"{proxy['upstream_breakdown']['table_load_pages']} | "
        f"{proxy['upstream_breakdown']['cdc']} |"
    ) in table
    assert "CDC against whole reloads: qbproxy made" in table
    assert (tmp_path / "results" / "chat.md").read_text().strip() == table.strip()
    assert (tmp_path / "trace.json").is_file()


# -- the assistant replay ------------------------------------------------------------------------
ASSISTANT = TraceParams(
    realms=2,
    sessions=2,
    seed=5,
    write_share=0.3,
    customers_per_realm=20,
    invoices_per_realm=40,
    payments_per_realm=15,
)


async def test_assistant_harness_smoke(tmp_path: Path) -> None:
    options = ChatOptions(
        trace=ASSISTANT,
        save_trace=tmp_path / "assistant-trace.json",
        latency_ms=5,
        latency_jitter_ms=0,
        time_scale=0.0005,
        cache_ttl_seconds=300,
        contenders=("direct", "qbproxy"),
        out_dir=tmp_path / "results",
        dsn=os.environ.get("QBPROXY_TEST_DSN") or None,
        progress=False,
    )
    report = await run_assistant(options, log=lambda _line: None)

    assert report["mode"] == "assistant"
    assert report["trace"]["kind"] == "assistant"
    direct, proxy = report["contenders"]
    for c in (direct, proxy):
        assert c["available"], c
        assert c["read_errors"] == 0
        assert c["errors"] == 0
        assert c["failed_writes"] == 0  # the trace's writes are valid: the fake applies them
        assert c["writes"] > 0
        assert c["reports"]["checked"] == c["reports"]["read"] > 0
        assert c["reports"]["unmatched"] == 0, c["reports"]["examples"]
        assert c["documents_checked"] > 0
        meter = c["metering"]
        assert meter["core_writes"] == c["upstream_calls"]["write"]
        assert meter["coreplus"] + meter["cdc_unsure"] + meter["core_writes"] + meter[
            "unsuccessful"
        ] == sum(c["upstream_calls"][k] for k in ("query", "read", "report", "write", "cdc"))
        assert sum(c["upstream_breakdown"].values()) == c["upstream_calls"]["total"]
    # Direct: every request reaches Intuit, nothing is stale, no trace query is a load page.
    assert direct["upstream_calls"]["total"] == direct["requests"]
    assert direct["metering"]["coreplus"] == direct["reads"]
    assert direct["stale_reads"] == 0
    assert direct["upstream_breakdown"]["table_load_pages"] == 0
    assert proxy["stale_reads"] == 0, (proxy["stale_examples"], proxy["reports"]["examples"])
    assert "reduction_vs_direct" in proxy

    written = orjson.loads((tmp_path / "results" / "assistant.json").read_bytes())
    assert [c["name"] for c in written["contenders"]] == ["direct", "qbproxy"]
    table = assistant_markdown(report)
    assert "| direct |" in table
    assert "| qbproxy |" in table
    assert "CorePlus-metered" in table
    assert "stale reports (unmatched)" in table
    assert "| reports |" in table
    assert (tmp_path / "results" / "assistant.md").read_text().strip() == table.strip()
    assert load_trace(tmp_path / "assistant-trace.json").kind == "assistant"


@contextlib.asynccontextmanager
async def frozen_cache(upstream: str) -> AsyncIterator[str]:
    """A deliberately stale cache: every GET answered 200 once is served forever (writes are
    forwarded and purge nothing). The checkers must catch it."""
    cache: dict[str, tuple[bytes, str]] = {}
    session = aiohttp.ClientSession()

    async def handle(request: web.Request) -> web.Response:
        key = request.raw_path
        if request.method == "GET" and key in cache:
            body, kind = cache[key]
            return web.Response(body=body, headers={"Content-Type": kind, "X-Cache": "HIT"})
        headers = {
            k: v for k, v in request.headers.items() if k in ("Authorization", "Content-Type")
        }
        data = await request.read()
        url = URL(upstream + key, encoded=True)
        async with session.request(request.method, url, data=data or None, headers=headers) as up:
            body, kind, status = await up.read(), up.headers.get("Content-Type", ""), up.status
        if request.method == "GET" and status == 200:
            cache[key] = (body, kind)
        return web.Response(
            status=status, body=body, headers={"Content-Type": kind, "X-Cache": "MISS"}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await session.close()


async def test_the_stale_checkers_catch_a_cache_that_never_forgets() -> None:
    """Replay the assistant trace through `frozen_cache`, warmed with every read and report
    the trace makes: after each write the follow-up reads get the old answers, and both the
    entity check (SyncTokens) and the report check (the fake's journal) must say so."""
    trace = generate_assistant(dataclasses.replace(ASSISTANT, realms=1, write_share=0.5))
    async with fake_intuit(trace.company.sandbox_config()) as intuit:
        journal = intuit.sandbox.start_journal()
        tokens = {realm: intuit.sandbox.token_for(realm) for realm in trace.company.realms}
        async with frozen_cache(intuit.url) as url, aiohttp.ClientSession() as http:
            for session in trace.sessions:
                auth = {"Authorization": f"Bearer {tokens[session.realm]}"}
                for call in (c for q in session.questions for s in q.steps for c in s):
                    if call.op in ("read", "report") and CREATED not in call.path:
                        async with http.get(URL(url + call.path, encoded=True), headers=auth) as r:
                            assert r.status == 200, call.path
            replay = await Replayer(trace, url, tokens, time_scale=0, cache_header="X-Cache").run()
        clock = intuit.sandbox.clock
        offset = replay.wall_minus_monotonic_ns
        checked = stale_reports(replay, journal, lambda ns: clock.at((ns + offset) / 1e9).date())
        result = contender_report("frozen", replay, intuit.sandbox, reports=checked)
    assert result["writes"] > 0
    assert checked.checked > 0
    assert checked.stale > 0, checked
    assert checked.unmatched == 0  # an old answer matches an old state: stale, not unmatched
    assert result["entity_stale_reads"] > 0
    assert result["stale_reads"] == result["entity_stale_reads"] + checked.stale

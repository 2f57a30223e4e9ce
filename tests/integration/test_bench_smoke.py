"""A tiny run of the chat benchmark (direct, and `qbproxy serve` with CDC and with whole
reloads), so the harness cannot rot.

qbproxy gets a fresh database on $QBPROXY_TEST_DSN's server when set, else its embedded
Postgres, as `python -m bench` does. Figures are not judged here, only truths no
timing can move: the cache saves upstream calls and serves nothing stale, and after a
write's purge the CDC variant refreshes by CDC where the other reloads whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from bench.chat import ChatOptions, run_chat
from bench.report import chat_markdown
from bench.trace import TraceParams

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

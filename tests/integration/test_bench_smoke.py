"""A tiny run of the chat benchmark (direct and `qbproxy serve`), so the harness cannot rot.

qbproxy gets a fresh database on $QBPROXY_TEST_DSN's server when set, else its embedded
Postgres, as `python -m bench` does. Figures are not judged here, only truths no
timing can move: the cache saves upstream calls and serves nothing stale.
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
        contenders=("direct", "qbproxy"),
        out_dir=tmp_path / "results",
        dsn=os.environ.get("QBPROXY_TEST_DSN") or None,
        progress=False,
    )
    report = await run_chat(options, log=lines.append)

    assert report["mode"] == "chat"
    assert report["machine"]["nproc"]
    assert report["trace"]["sessions"] == 2
    assert report["trace"]["realms"] == 2
    direct, proxy = report["contenders"]
    assert (direct["name"], proxy["name"]) == ("direct", "qbproxy")
    for c in (direct, proxy):
        assert c["available"], c
        assert c["requests"] >= report["trace"]["questions"]
        assert c["read_errors"] == 0
        assert c["errors"] == 0
        assert c["failed_writes"] == 0
        assert c["latency_ms"]["reads"]["n"] == c["reads"]
        assert c["documents_checked"] > 0
        assert set(c["upstream_calls"]) >= {"total", "query", "read", "write"}
        assert set(c["throttled"]) == {"seen_by_app", "failed_after_retries", "by_intuit"}
    # Direct: every request is an upstream call, and the stale-read check finds nothing.
    assert (
        direct["upstream_calls"]["total"] == direct["requests"] + direct["throttled"]["seen_by_app"]
    )
    assert direct["stale_reads"] == 0
    # qbproxy: fewer upstream calls, answers from cache, nothing stale after writes.
    assert proxy["upstream_calls"]["total"] < direct["upstream_calls"]["total"]
    assert proxy["reduction_vs_direct"] > 0
    assert proxy["cache"].get("hit", 0) > 0
    assert proxy["latency_ms"]["hit"]["n"] > 0
    assert proxy["stale_reads"] == 0, proxy["stale_examples"]
    assert proxy["writes"] > 0

    written = orjson.loads((tmp_path / "results" / "chat.json").read_bytes())
    assert [c["name"] for c in written["contenders"]] == ["direct", "qbproxy"]
    assert "_latencies" not in written["contenders"][0]
    table = chat_markdown(report)
    assert "| qbproxy |" in table
    assert "stale reads" in table
    assert (tmp_path / "results" / "chat.md").read_text().strip() == table.strip()
    assert (tmp_path / "trace.json").is_file()

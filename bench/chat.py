"""`python -m bench chat` and `python -m bench assistant`: one trace, replayed against each
contender in turn, each in front of its own freshly seeded fake Intuit (same seed, same
data), then one report. The two modes differ only in the trace and in what is judged: the
assistant run also keeps the fake's write journal and checks every report read against it."""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from yarl import URL

from bench import report as rep
from bench import trace as tr
from bench.common import fake_intuit, machine, optional, rss_mb
from bench.contenders import CACHE_HEADER, NAMES, ProxySettings, Unavailable, start
from bench.replay import Replayer
from bench.staleness import Memo, stale_reports

INTUIT_RPM = 500  # Intuit's requests a minute per realm (qbo-api.md "Limits")
INTUIT_CONCURRENCY = 10


@dataclass(slots=True)
class ChatOptions:
    trace: tr.TraceParams = field(default_factory=tr.TraceParams)
    trace_file: Path | None = None  # replay this trace instead of generating one
    save_trace: Path | None = None
    latency_ms: float = 300.0
    latency_jitter_ms: float = 100.0
    time_scale: float = 0.1
    # Cache validity for both caches; None: 300 s x time_scale (so a compressed run sees
    # the expiries an uncompressed one would). Token trust and refresh-ahead scale alike.
    cache_ttl_seconds: float | None = None
    contenders: Sequence[str] = NAMES
    out_dir: Path | None = Path("bench/results")
    dsn: str | None = None
    qbproxy_workers: int | None = None
    qbproxy_env: dict[str, str] = field(default_factory=dict)
    progress: bool = True
    command: str = ""

    @property
    def ttl(self) -> float:
        if self.cache_ttl_seconds is not None:
            return self.cache_ttl_seconds
        return max(1.0, 300.0 * self.time_scale)

    @property
    def intuit_rpm(self) -> int:
        """Intuit's per-minute limit over the compressed clock: 500 per trace minute."""
        return max(1, math.ceil(INTUIT_RPM / self.time_scale)) if self.time_scale > 0 else 10**9


def _progress(
    total: int, name: str, enabled: bool
) -> tuple[Callable[[], None], Callable[[], None]]:
    tqdm = optional("tqdm") if enabled else None
    if tqdm is None:
        if enabled:
            print(f"  {name}: replaying {total} requests ...", file=sys.stderr, flush=True)
        return (lambda: None), (lambda: None)
    bar = tqdm.tqdm(total=total, desc=f"{name:<8}", unit="req", file=sys.stderr, leave=True)
    return (lambda: bar.update(1)), bar.close


def app_queries(trace: tr.Trace) -> frozenset[str]:
    """The query texts the trace itself sends (as the fake logs them, decoded)."""
    out = set()
    for call in trace.calls():
        if call.op != "query":
            continue
        if call.body is not None:
            out.add(call.body)
        else:
            text = URL(call.path, encoded=True).query.get("query")
            if text is not None:
                out.add(text)
    return frozenset(out)


async def run_contender(
    name: str,
    trace: tr.Trace,
    options: ChatOptions,
    log: Callable[[str], None],
    memo: Memo | None = None,
) -> dict[str, Any]:
    config = trace.company.sandbox_config(
        latency_ms=options.latency_ms,
        latency_jitter_ms=options.latency_jitter_ms,
        max_requests_per_minute_per_realm=options.intuit_rpm,
        max_concurrency_per_realm=INTUIT_CONCURRENCY,
    )
    ttl = options.ttl
    proxy = ProxySettings(
        dsn=options.dsn,
        workers=options.qbproxy_workers,
        ttl_seconds=ttl,
        token_trust_seconds=ttl,
        refresh_ahead_seconds=ttl / 10,
        max_requests_per_minute_per_realm=options.intuit_rpm,
        max_concurrency_per_realm=INTUIT_CONCURRENCY,
        extra_env=options.qbproxy_env,
    )
    async with fake_intuit(config) as intuit:
        journal = intuit.sandbox.start_journal() if trace.kind == "assistant" else None
        try:
            async with start(name, intuit.url, proxy=proxy, cache_valid_seconds=ttl) as running:
                tick, close = _progress(trace.http_requests(), name, options.progress)
                tokens = {realm: intuit.sandbox.token_for(realm) for realm in trace.company.realms}
                try:
                    replay = await Replayer(
                        trace,
                        running.url,
                        tokens,
                        time_scale=options.time_scale,
                        cache_header=CACHE_HEADER[name],
                        on_exchange=tick,
                    ).run()
                finally:
                    close()
                notes = dict(running.notes)
                if running.pid is not None:
                    notes["rss_mb_after"] = rss_mb(running.pid)
        except Unavailable as exc:
            log(f"  {name}: unavailable: {exc}")
            return {"name": name, "available": False, "reason": str(exc).splitlines()[0]}
        checked = None
        if journal is not None:
            clock = intuit.sandbox.clock
            offset = replay.wall_minus_monotonic_ns
            checked = stale_reports(
                replay, journal, lambda ns: clock.at((ns + offset) / 1e9).date(), memo
            )
        return rep.contender_report(
            name,
            replay,
            intuit.sandbox,
            notes,
            app_queries=app_queries(trace),
            reports=checked,
        )


async def run_chat(options: ChatOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the chat comparison; returns the report (also written under out_dir when set)."""
    return await run_mode("chat", options, log)


async def run_assistant(options: ChatOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the assistant comparison (bench/assistant.py's trace); returns the report (also
    written under out_dir as assistant.json and assistant.md when set)."""
    return await run_mode("assistant", options, log)


async def run_mode(mode: str, options: ChatOptions, log: Callable[[str], None]) -> dict[str, Any]:
    for name in options.contenders:
        if name not in NAMES:
            raise ValueError(f"unknown contender {name!r}; choose from {', '.join(NAMES)}")
    if options.trace_file is not None:
        trace = tr.load(options.trace_file)
        if trace.kind != mode:
            raise ValueError(f"{options.trace_file} holds a {trace.kind} trace, not a {mode} one")
        log(f"replaying trace {options.trace_file}")
    elif mode == "assistant":
        from bench.assistant import generate

        trace = generate(options.trace)
    else:
        trace = tr.generate(options.trace)
    if options.save_trace is not None:
        tr.save(trace, options.save_trace)
        log(f"trace saved to {options.save_trace}")
    summary = trace.summary()
    log(
        f"{mode} trace: {summary['sessions']} sessions, {summary['questions']} questions, "
        f"{summary['http_requests']} requests over {summary['realms']} realms; "
        f"contenders: {', '.join(options.contenders)}"
    )
    results = []
    memo: Memo = {}
    for name in options.contenders:
        results.append(await run_contender(name, trace, options, log, memo))
    rep.add_reductions(results)
    report: dict[str, Any] = {
        "mode": mode,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": options.command,
        "machine": machine(),
        "params": {
            **asdict(trace.params),
            "latency_ms": options.latency_ms,
            "latency_jitter_ms": options.latency_jitter_ms,
            "time_scale": options.time_scale,
            "cache_ttl_seconds": options.ttl,
            "intuit_requests_per_minute_per_realm": options.intuit_rpm,
            "intuit_concurrency_per_realm": INTUIT_CONCURRENCY,
            "trace_file": str(options.trace_file) if options.trace_file else None,
        },
        "trace": summary,
        "contenders": results,
    }
    report["cdc_vs_reload"] = rep.cdc_vs_reload(results)
    if mode == "assistant":
        from bench import report_assistant as ra

        report["floor"] = ra.floor(results, trace)
        report["targets"] = ra.targets(results)
        _write(report, options, "assistant", ra.markdown)
        return report
    report["floor"] = rep.floor(results, len(trace.company.realms))
    report["targets"] = rep.chat_targets(results)
    if options.out_dir is not None:
        out = options.out_dir
        out.mkdir(parents=True, exist_ok=True)
        (out / "chat.json").write_bytes(
            orjson.dumps(rep.public(report), option=orjson.OPT_INDENT_2)
        )
        (out / "chat.md").write_text(rep.chat_markdown(report) + "\n")
        chart = rep.chat_chart(report, out / "chat-latency.png")
        report["files"] = [str(out / "chat.json"), str(out / "chat.md")] + (
            [str(chart)] if chart else []
        )
    return report


def _write(
    report: dict[str, Any],
    options: ChatOptions,
    stem: str,
    markdown: Callable[[dict[str, Any]], str],
) -> None:
    if options.out_dir is None:
        return
    out = options.out_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_bytes(orjson.dumps(rep.public(report), option=orjson.OPT_INDENT_2))
    (out / f"{stem}.md").write_text(markdown(report) + "\n")
    report["files"] = [str(out / f"{stem}.json"), str(out / f"{stem}.md")]

"""What a replay (chat or assistant) showed, per contender: upstream calls from the fake
Intuit's own log (CorePlus-metered ones apart), latency by hit and miss, throughput, 429s and
stale reads checked against the fake's history (reports against its journal); then a
markdown table, a JSON file and (with matplotlib) a latency chart."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fake_intuit import Sandbox

from bench.common import optional, summarize
from bench.contenders import QBPROXY_CDC, cache_class
from bench.replay import Exchange, Replay
from bench.staleness import ReportCheck

_LOAD_PAGE = re.compile(r"\bSTARTPOSITION\s+\d+\s+MAXRESULTS\s+1000\b", re.IGNORECASE)
_NEVER = 2**63  # a version no completed write accounts for
History = Mapping[tuple[str, str, str], list[tuple[int, str | None]]]


# -- stale reads ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Stale:
    realm: str
    entity: str
    id: str
    returned: str
    expected: str | None
    kind: str
    cache: str
    after_write_ms: float


def _token(value: str | None) -> int:
    return int(value) if value is not None and value.isdigit() else -1


def stale_reads(replay: Replay, history: History) -> tuple[int, int, int, list[Stale]]:
    """(stale reads, stale documents, documents checked, examples).

    A document version in the fake's history was written at instant s; the write that made
    it is the app's write in that realm in flight at s (sent before s, answered after). It
    *completed* when the app had that answer. A read that began after a version's write
    completed must return that version or a newer one (SyncTokens only grow); anything
    older is a stale read. Versions no completed write accounts for (a write whose answer
    never arrived) bind nobody.
    """
    writes: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for ex in replay.exchanges:
        if ex.kind == "write":
            writes[ex.realm].append((ex.start_ns, ex.end_ns))
    # key -> [(completed_ns, written_ns, token)] for documents the replay wrote
    versions: dict[tuple[str, str, str], list[tuple[int, int, str | None]]] = {}
    for key, entries in history.items():
        later = [(s, t) for s, t in entries if s > replay.start_ns]
        if not later:
            continue
        rows: list[tuple[int, int, str | None]] = []
        for stamp, token in entries:
            if stamp <= replay.start_ns:
                rows.append((0, stamp, token))  # seeded before the replay began
                continue
            done = [end for start, end in writes[key[0]] if start <= stamp <= end]
            rows.append((max(done) if done else _NEVER, stamp, token))
        versions[key] = rows
    stale_reads_n = stale_docs = checked = 0
    examples: list[Stale] = []
    for ex in replay.exchanges:
        if ex.kind == "write" or not ex.docs:
            continue
        bad = False
        for entity, id_, token in ex.docs:
            checked += 1
            known = versions.get((ex.realm, entity, id_))
            if known is None:
                continue
            bound = [r for r in known if r[0] < ex.start_ns]
            if not bound:
                continue
            completed, _, expected = max(bound, key=lambda r: r[1])
            if expected is None or _token(token) < _token(expected):
                bad = True
                stale_docs += 1
                if len(examples) < 5:
                    examples.append(
                        Stale(
                            ex.realm,
                            entity,
                            id_,
                            token,
                            expected,
                            ex.kind,
                            ex.cache,
                            round((ex.start_ns - completed) / 1e6, 1),
                        )
                    )
        stale_reads_n += bad
    return stale_reads_n, stale_docs, checked, examples


# Purposes of upstream calls, in the order the report lists them.
PURPOSES = ("writes", "table_load_pages", "cdc", "queries", "entity_reads", "reports", "other")
# Intuit's App Partner Program meters data-out "CorePlus" calls: reads (CompanyInfo and
# Preferences are reads in the fake's log), queries, reports; only successful ones count
# (qbo-api.md "Metering"). Writes are "Core" (not metered); whether CDC is: unsure.
METERED_KINDS = frozenset({"read", "query", "report"})


def metering(sandbox: Sandbox) -> dict[str, int]:
    """Upstream calls as Intuit would bill them: CorePlus (successful reads, queries,
    reports), CDC apart (metering unsure), Core writes (batch counted with them)."""
    out = {"coreplus": 0, "cdc_unsure": 0, "core_writes": 0, "unsuccessful": 0}
    for call in sandbox.calls:
        if call.status is None or not 200 <= call.status < 300:
            out["unsuccessful"] += 1
        elif call.kind in METERED_KINDS:
            out["coreplus"] += 1
        elif call.kind == "cdc":
            out["cdc_unsure"] += 1
        elif call.kind in ("write", "batch"):
            out["core_writes"] += 1
    return out


def upstream_breakdown(
    sandbox: Sandbox, app_queries: Collection[str] = frozenset()
) -> dict[str, int]:
    """What reached the fake Intuit, by purpose (every key of PURPOSES): a proxy's whole-table
    load pages (`... STARTPOSITION n MAXRESULTS 1000` that the trace itself does not send:
    `app_queries` are the query texts it does) apart from other queries, and its CDC calls
    apart from both."""
    out: Counter[str] = Counter()
    for call in sandbox.calls:
        if (
            call.kind == "query"
            and call.query
            and call.query not in app_queries
            and _LOAD_PAGE.search(call.query)
        ):
            out["table_load_pages"] += 1
        elif call.kind == "query":
            out["queries"] += 1
        elif call.kind == "read":
            out["entity_reads"] += 1
        elif call.kind == "write":
            out["writes"] += 1
        elif call.kind == "cdc":
            out["cdc"] += 1
        elif call.kind == "report":
            out["reports"] += 1
        else:
            out["other"] += 1
    return {purpose: out[purpose] for purpose in PURPOSES}


# -- per contender ------------------------------------------------------------------------------
def contender_report(
    name: str,
    replay: Replay,
    sandbox: Sandbox,
    notes: Mapping[str, object] | None = None,
    *,
    app_queries: Collection[str] = frozenset(),
    reports: ReportCheck | None = None,
) -> dict[str, Any]:
    """One contender's figures; `reports` adds the report staleness check (assistant)."""
    reads = [e for e in replay.exchanges if e.kind != "write" and e.status != 0]
    writes = [e for e in replay.exchanges if e.kind == "write"]
    by_class: dict[str, list[Exchange]] = defaultdict(list)
    for e in reads:
        by_class[cache_class(name, e.cache)].append(e)
    seconds = max(1e-9, (replay.end_ns - replay.start_ns) / 1e9)
    stale_n, stale_docs, checked, examples = stale_reads(replay, sandbox.history)
    throttled_by_intuit = sum(1 for c in sandbox.calls if c.status == 429)
    out = {
        "name": name,
        "available": True,
        "notes": dict(notes or {}),
        "requests": len(replay.exchanges),
        "reads": len(reads),
        "writes": len(writes),
        "failed_writes": sum(1 for e in writes if e.status != 200),
        "skipped_writes": replay.skipped_writes,
        "errors": sum(1 for e in replay.exchanges if e.status == 0 or e.status >= 500),
        "read_errors": sum(1 for e in reads if e.status != 200),
        "upstream_calls": {
            "total": sandbox.count(),
            "query": sandbox.count("query"),
            "read": sandbox.count("read"),
            "write": sandbox.count("write"),
            "cdc": sandbox.count("cdc"),
            "report": sandbox.count("report"),
            "other": sandbox.count("other") + sandbox.count("batch"),
        },
        "metering": metering(sandbox),
        "upstream_breakdown": upstream_breakdown(sandbox, app_queries),
        "cache": {k: len(v) for k, v in sorted(by_class.items())},
        "hit_ratio": round(len(by_class["hit"]) / len(reads), 4) if reads else None,
        "latency_ms": {
            "reads": summarize([e.ms for e in reads]),
            "hit": summarize([e.ms for e in by_class["hit"]]),
            "miss": summarize([e.ms for e in by_class["miss"]]),
            "bypass": summarize([e.ms for e in by_class["bypass"]]),
            "writes": summarize([e.ms for e in writes]),
        },
        "question_ms": summarize([(q.end_ns - q.start_ns) / 1e6 for q in replay.questions]),
        "question_lag_ms": summarize(
            [max(0.0, (q.start_ns - q.scheduled_ns) / 1e6) for q in replay.questions]
        ),
        "duration_s": round(seconds, 2),
        "throughput_rps": round(len(replay.exchanges) / seconds, 1),
        "throttled": {
            "seen_by_app": sum(e.throttled + (e.status == 429) for e in replay.exchanges),
            "failed_after_retries": sum(1 for e in replay.exchanges if e.status == 429),
            "by_intuit": throttled_by_intuit,
        },
        "stale_reads": stale_n,
        "stale_documents": stale_docs,
        "documents_checked": checked,
        "stale_examples": [_stale(e) for e in examples],
        "_latencies": sorted(e.ms for e in reads),
    }
    if reports is not None:
        out["entity_stale_reads"] = stale_n
        out["stale_reads"] = stale_n + reports.stale
        out["reports"] = {
            "read": sum(1 for e in reads if e.kind == "report"),
            "checked": reports.checked,
            "stale": reports.stale,
            "unmatched": reports.unmatched,
            "examples": reports.examples,
        }
        out["skipped_reads"] = replay.skipped_reads
    return out


def _stale(s: Stale) -> dict[str, Any]:
    return {
        "realm": s.realm,
        "entity": s.entity,
        "id": s.id,
        "returned_sync_token": s.returned,
        "expected_at_least": s.expected,
        "kind": s.kind,
        "cache": s.cache,
        "read_began_ms_after_write": s.after_write_ms,
    }


def floor(contenders: Sequence[dict[str, Any]], realms: int) -> dict[str, Any] | None:
    """The fewest upstream calls a cache can get away with on this trace: every write goes
    to Intuit, and each realm's Customer, Invoice and Payment data must be fetched once."""
    direct = next((c for c in contenders if c["name"] == "direct" and c["available"]), None)
    if direct is None:
        return None
    calls = direct["writes"] + 3 * realms
    total = direct["upstream_calls"]["total"]
    return {
        "writes": direct["writes"],
        "first_loads": 3 * realms,
        "calls": calls,
        "best_reduction": round(1 - calls / total, 4) if total else None,
    }


def add_reductions(contenders: Sequence[dict[str, Any]]) -> None:
    direct = next((c for c in contenders if c["name"] == "direct" and c["available"]), None)
    for c in contenders:
        if not c["available"]:
            continue
        if direct is None:
            c["reduction_vs_direct"] = None
            continue
        base = direct["upstream_calls"]["total"]
        c["reduction_vs_direct"] = (
            round(1 - c["upstream_calls"]["total"] / base, 4) if base else None
        )
        reads_base = base - direct["upstream_calls"]["write"]
        reads_now = c["upstream_calls"]["total"] - c["upstream_calls"]["write"]
        c["read_call_reduction_vs_direct"] = (
            round(1 - reads_now / reads_base, 4) if reads_base else None
        )


def cdc_vs_reload(contenders: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """qbproxy refreshing by CDC against qbproxy reloading whole (`sync.cdc` off), when both
    ran: upstream calls in all and those that refreshed tables (CDC calls and load pages)."""
    by = {c["name"]: c for c in contenders if c["available"]}
    with_cdc = next((by[n] for n in QBPROXY_CDC if QBPROXY_CDC[n] and n in by), None)
    reload = next((by[n] for n in QBPROXY_CDC if not QBPROXY_CDC[n] and n in by), None)
    if with_cdc is None or reload is None:
        return None

    def side(c: Mapping[str, Any]) -> dict[str, Any]:
        purposes = c["upstream_breakdown"]
        return {
            "name": c["name"],
            "calls": c["upstream_calls"]["total"],
            "cdc": purposes["cdc"],
            "table_load_pages": purposes["table_load_pages"],
            "refresh_calls": purposes["cdc"] + purposes["table_load_pages"],
        }

    ours, theirs = side(with_cdc), side(reload)
    return {
        "cdc": ours,
        "reload": theirs,
        "calls_saved": theirs["calls"] - ours["calls"],
        "reduction": (round(1 - ours["calls"] / theirs["calls"], 4) if theirs["calls"] else None),
    }


# -- targets ------------------------------------------------------------------------------------
def call_targets(
    contenders: Sequence[dict[str, Any]], fewer: float
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """qbproxy's contender (None: not run) and its upstream-call targets, shared by every
    replay: at least `fewer` (a fraction) fewer calls than direct, fewer than nginx."""
    by = {c["name"]: c for c in contenders if c["available"]}
    q = by.get("qbproxy")
    if q is None:
        return None, []
    out = []
    reduction = q.get("reduction_vs_direct")
    if reduction is not None:
        out.append(
            {
                "target": f"at least {fewer:.0%} fewer upstream calls than direct",
                "value": f"{reduction:.1%}",
                "met": reduction >= fewer,
            }
        )
    if "nginx" in by:
        ours, theirs = q["upstream_calls"]["total"], by["nginx"]["upstream_calls"]["total"]
        out.append(
            {
                "target": "fewer upstream calls than nginx proxy_cache",
                "value": f"{ours} vs {theirs}",
                "met": ours < theirs,
            }
        )
    return q, out


def chat_targets(contenders: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """design.md's chat-replay targets, judged for qbproxy."""
    q, out = call_targets(contenders, 0.95)
    if q is None:
        return []
    out.append(
        {"target": "zero stale reads", "value": str(q["stale_reads"]), "met": q["stale_reads"] == 0}
    )
    hit = q["latency_ms"]["hit"]
    if hit.get("n"):
        out.append(
            {
                "target": "cached answer p50 under 2 ms",
                "value": f"{hit['p50']:.2f} ms",
                "met": hit["p50"] < 2,
            }
        )
        out.append(
            {
                "target": "cached answer p99 under 10 ms",
                "value": f"{hit['p99']:.2f} ms",
                "met": hit["p99"] < 10,
            }
        )
    return out


# -- rendering ----------------------------------------------------------------------------------
def _ms(stats: Mapping[str, Any], *keys: str) -> str:
    if not stats.get("n"):
        return "-"
    return " / ".join(_num(stats[k]) for k in keys)


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def chat_markdown(report: Mapping[str, Any]) -> str:
    p, s = report["params"], report["trace"]
    lines = [
        f"### Chat replay: {s['sessions']} sessions, {s['questions']} questions "
        f"({s['write_questions']} writing), {s['http_requests']} requests, {s['realms']} realms",
        "",
        f"Intuit latency {p['latency_ms']:g} ms (±{p['latency_jitter_ms']:g}), "
        f"time scale {p['time_scale']:g}, cache validity {p['cache_ttl_seconds']:g} s, "
        f"seed {p['seed']}.",
        "",
        "| contender | upstream calls | vs direct | reads from cache | hit p50 / p95 / p99 ms "
        "| miss p50 / p95 / p99 ms | all reads p50 / p99 ms | question p50 / p95 ms | req/s "
        "| 429s (app / Intuit) | stale reads | failed writes |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in report["contenders"]:
        if not c["available"]:
            lines.append(f"| {c['name']} | unavailable: {c['reason']} |" + " |" * 10)
            continue
        lat = c["latency_ms"]
        reduction = c.get("reduction_vs_direct")
        hits = c["hit_ratio"]
        lines.append(
            "| "
            + " | ".join(
                [
                    c["name"],
                    f"{c['upstream_calls']['total']} ({c['upstream_calls']['write']} writes)",
                    "-" if reduction is None or c["name"] == "direct" else f"{-reduction:+.1%}",
                    "-" if c["name"] == "direct" or hits is None else f"{hits:.1%}",
                    _ms(lat["hit"], "p50", "p95", "p99"),
                    _ms(lat["miss"], "p50", "p95", "p99"),
                    _ms(lat["reads"], "p50", "p99"),
                    _ms(c["question_ms"], "p50", "p95"),
                    f"{c['throughput_rps']:.1f}",
                    f"{c['throttled']['seen_by_app']} / {c['throttled']['by_intuit']}",
                    f"{c['stale_reads']} of {c['reads']}",
                    f"{c['failed_writes']} of {c['writes']}",
                ]
            )
            + " |"
        )
    best = report.get("floor")
    if best and best["best_reduction"] is not None:
        lines += [
            "",
            f"Lower bound for any cache on this trace: {best['writes']} writes + "
            f"{best['first_loads']} first loads (3 tables x {s['realms']} realms) = "
            f"{best['calls']} upstream calls, at best {best['best_reduction']:.1%} fewer "
            "than direct.",
        ]
    lines += _purposes_markdown(report["contenders"])
    versus = report.get("cdc_vs_reload")
    if versus:
        ours, theirs = versus["cdc"], versus["reload"]
        saved = versus["calls_saved"]
        share = "" if versus["reduction"] is None else f", {abs(versus['reduction']):.1%}"
        lines += [
            "",
            f"CDC against whole reloads: {ours['name']} made {ours['calls']} upstream calls "
            f"with CDC, {theirs['name']} {theirs['calls']} with whole reloads "
            f"({abs(saved)} {'fewer' if saved >= 0 else 'more'} with CDC{share}); tables "
            f"were loaded or refreshed by {ours['cdc']} CDC calls + "
            f"{ours['table_load_pages']} load pages against {theirs['table_load_pages']} "
            "load pages.",
        ]
    targets = report.get("targets") or []
    if targets:
        lines += ["", "Targets (design.md), qbproxy:"]
        for t in targets:
            lines.append(f"- {'met' if t['met'] else 'MISSED'}: {t['target']} ({t['value']})")
    return "\n".join(lines)


_PURPOSE_HEADINGS = {
    "writes": "writes",
    "table_load_pages": "table-load pages",
    "cdc": "CDC calls",
    "queries": "queries",
    "entity_reads": "entity reads",
    "reports": "reports",
    "other": "other",
}


def _purposes_markdown(contenders: Sequence[Mapping[str, Any]]) -> list[str]:
    available = [c for c in contenders if c["available"]]
    if not available:
        return []
    lines = [
        "",
        "Upstream calls by purpose (the fake Intuit's log):",
        "",
        "| contender | " + " | ".join(_PURPOSE_HEADINGS[p] for p in PURPOSES) + " | total |",
        "|---|" + "--:|" * (len(PURPOSES) + 1),
    ]
    for c in available:
        purposes = c["upstream_breakdown"]
        counts = [str(purposes.get(p, 0)) for p in PURPOSES]
        lines.append(
            f"| {c['name']} | " + " | ".join(counts) + f" | {c['upstream_calls']['total']} |"
        )
    return lines


def public(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report without the raw latency lists kept for the chart."""
    out = dict(report)
    out["contenders"] = [
        {k: v for k, v in c.items() if not k.startswith("_")} for c in report["contenders"]
    ]
    return out


def chat_chart(report: Mapping[str, Any], path: Path) -> Path | None:
    """Read latency CDFs (log scale) and upstream calls per contender; None without matplotlib."""
    matplotlib = optional("matplotlib")
    if matplotlib is None:
        return None
    matplotlib.use("Agg")
    plt = optional("matplotlib.pyplot")
    available = [c for c in report["contenders"] if c["available"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=(2, 1))
    colors = {
        "direct": "tab:gray",
        "nginx": "tab:green",
        "qbproxy": "tab:blue",
        "qbproxy-reload": "tab:purple",
    }
    for c in available:
        values = c.get("_latencies") or []
        if values:
            ys = [(i + 1) / len(values) for i in range(len(values))]
            left.plot(values, ys, label=c["name"], color=colors.get(c["name"]))
    left.set_xscale("log")
    left.set_xlabel("read latency seen by the app (ms, log scale)")
    left.set_ylabel("share of reads at or below")
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    names = [c["name"] for c in available]
    calls = [c["upstream_calls"]["total"] for c in available]
    bars = right.bar(names, calls, color=[colors.get(n, "tab:orange") for n in names])
    right.bar_label(bars)
    right.set_title("calls reaching Intuit")
    fig.suptitle("Chat replay: " + ", ".join(f"{k}={v}" for k, v in _short(report).items()))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _short(report: Mapping[str, Any]) -> dict[str, Any]:
    p = report["params"]
    return {
        "sessions": report["trace"]["sessions"],
        "realms": report["trace"]["realms"],
        "latency_ms": p["latency_ms"],
        "write_share": p["write_share"],
    }

"""The assistant replay's report: upstream calls and CorePlus-metered calls against direct,
stale reads of entities and of reports, hit latency; its lower bound and design.md's targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from yarl import URL

from bench import report as rep
from bench.trace import WRITE_OPS, Trace

IGNORED_PARAMS = frozenset({"minorversion", "format"})


def report_key(path: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A report request without what cannot change its answer (minorversion, format)."""
    url = URL(path, encoded=True)
    params = sorted((k, v) for k, v in url.query.items() if k not in IGNORED_PARAMS)
    return url.path.rsplit("/", 1)[-1], tuple(params)


def floor(contenders: Sequence[dict[str, Any]], trace: Trace) -> dict[str, Any] | None:
    """The fewest upstream calls under issue 13's report rule (a report is fetched from
    Intuit, and every accepted write purges the realm's reports) with one call per table:
    every write; each realm's entity tables, CompanyInfo and Preferences once; each
    distinct report (minorversion and format aside) once per stretch between the realm's
    writes, in the trace's own order. Not a bound for a cache that batches its loads, keeps
    reports across writes that cannot change them, or computes reports itself."""
    direct = next((c for c in contenders if c["name"] == "direct" and c["available"]), None)
    if direct is None:
        return None
    tables: set[tuple[str, str]] = set()
    reports: set[tuple[str, int, Any]] = set()
    events = []
    for session in trace.sessions:
        for question in session.questions:
            for n, step in enumerate(question.steps):
                events.append((question.at, n, session.realm, step))
    writes_seen: dict[str, int] = {}
    for _, _, realm, step in sorted(events, key=lambda e: (e[0], e[1])):
        for call in step:
            if call.op == "report":
                reports.add((realm, writes_seen.get(realm, 0), report_key(call.path)))
            elif call.op in ("read", "query"):
                entity = call.entity or _entity_of(call)
                if entity:
                    tables.add((realm, entity.lower()))
        if any(c.op in WRITE_OPS for c in step):
            writes_seen[realm] = writes_seen.get(realm, 0) + 1
    calls = direct["writes"] + len(tables) + len(reports)
    total = direct["upstream_calls"]["total"]
    return {
        "writes": direct["writes"],
        "tables": len(tables),
        "reports": len(reports),
        "calls": calls,
        "best_reduction": round(1 - calls / total, 4) if total else None,
    }


def _entity_of(call: Any) -> str | None:
    text = call.body or URL(call.path, encoded=True).query.get("query") or ""
    words = text.replace(",", " ").split()
    lowered = [w.lower() for w in words]
    if "from" in lowered:
        i = lowered.index("from")
        return words[i + 1] if i + 1 < len(words) else None
    return None


def targets(contenders: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """design.md's assistant-replay targets, judged for qbproxy."""
    q, out = rep.call_targets(contenders, 0.90)
    if q is None:
        return []
    reports = q["reports"]
    out.append(
        {
            "target": "zero stale reads, reports included (and no report matching no state)",
            "value": f"{q['entity_stale_reads']} entity, {reports['stale']} report, "
            f"{reports['unmatched']} unmatched",
            "met": q["stale_reads"] == 0 and reports["unmatched"] == 0,
        }
    )
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{-value:+.1%}"


def markdown(report: Mapping[str, Any]) -> str:
    p, s = report["params"], report["trace"]
    direct = next(
        (c for c in report["contenders"] if c["name"] == "direct" and c["available"]), None
    )
    metered_base = direct["metering"]["coreplus"] if direct else None
    lines = [
        f"### Assistant replay: {s['sessions']} sessions, {s['questions']} questions "
        f"({s['write_questions']} writing), {s['http_requests']} requests, {s['realms']} realms",
        "",
        f"Intuit latency {p['latency_ms']:g} ms (±{p['latency_jitter_ms']:g}), "
        f"time scale {p['time_scale']:g}, cache validity {p['cache_ttl_seconds']:g} s, "
        f"seed {p['seed']}.",
        "",
        "| contender | upstream calls | vs direct | CorePlus-metered | vs direct "
        "| CDC (metering unsure) | writes (Core) | reads from cache | hit p50 / p95 / p99 ms "
        "| miss p50 / p95 / p99 ms | stale entity reads | stale reports (unmatched) "
        "| failed writes |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in report["contenders"]:
        if not c["available"]:
            lines.append(f"| {c['name']} | unavailable: {c['reason']} |" + " |" * 11)
            continue
        lat, meter, reports = c["latency_ms"], c["metering"], c["reports"]
        metered_cut = (
            1 - meter["coreplus"] / metered_base if metered_base and c is not direct else None
        )
        hits = c["hit_ratio"]
        row = [
            c["name"],
            str(c["upstream_calls"]["total"]),
            "-" if c is direct else _pct(c.get("reduction_vs_direct")),
            str(meter["coreplus"]),
            _pct(metered_cut),
            str(meter["cdc_unsure"]),
            str(meter["core_writes"]),
            "-" if c is direct or hits is None else f"{hits:.1%}",
            rep._ms(lat["hit"], "p50", "p95", "p99"),
            rep._ms(lat["miss"], "p50", "p95", "p99"),
            f"{c['entity_stale_reads']} of {c['reads'] - reports['read']}",
            f"{reports['stale']} ({reports['unmatched']}) of {reports['checked']}",
            f"{c['failed_writes']} of {c['writes']}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    best = report.get("floor")
    if best and best["best_reduction"] is not None:
        lines += [
            "",
            f"Lower bound if every write purges its realm's reports and each table costs a "
            f"call: {best['writes']} writes + {best['tables']} realm tables loaded once + "
            f"{best['reports']} distinct reports per stretch between writes = {best['calls']} "
            f"upstream calls, at best {best['best_reduction']:.1%} fewer than direct.",
        ]
    lines += rep._purposes_markdown(report["contenders"])
    examples = [
        (c["name"], e)
        for c in report["contenders"]
        if c["available"]
        for e in c["reports"]["examples"]
    ]
    if examples:
        lines += ["", "Report answers judged stale or unmatched (first few):"]
        for name, e in examples[:8]:
            lines.append(
                f"- {name}: {e['verdict']} {e['report']} (X-Cache {e['cache'] or '-'}, "
                f"read began {e['read_began_ms_after_write']} ms after the write it lacks)"
            )
    targets_ = report.get("targets") or []
    if targets_:
        lines += ["", "Targets (design.md), qbproxy:"]
        for t in targets_:
            lines.append(f"- {'met' if t['met'] else 'MISSED'}: {t['target']} ({t['value']})")
    return "\n".join(lines)

"""`python -m bench memory`: the in-process answer memory (qbproxy/core/memory.py) under
load: what a purge costs the event loop with 1M answers held, and whether RSS stays within
`cache.memory_bytes` plus a constant, for many small answers and for distinct huge keys.

Each scenario runs in a fresh interpreter (so RSS is its own) and prints one JSON line.
Figures are for reading, never asserted (speed lives here, not in timed tests).
"""

from __future__ import annotations

import gc
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qbproxy.core.memory import SWEEP_STEP, Memory

MiB = 1024 * 1024
ENTITIES = ("Customer", "Invoice", "Payment")


@dataclass(frozen=True, slots=True)
class MemoryOptions:
    answers: int = 1_000_000
    realms: int = 1000
    huge_keys: int = 2000
    huge_key_chars: int = 90_000
    huge_budget: int = 1 * MiB
    out_dir: Path = Path("bench/results")
    command: str = "python -m bench memory"


def rss() -> int:
    """Resident set size of this process, bytes (Linux /proc; else the peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _small_key(realm: str, entity: str, i: int) -> tuple[str, str, str]:
    return (realm, entity, f"SELECT * FROM {entity} WHERE Id = '{i}' ORDERBY Id ASC")


def _fill(memory: Memory, answers: int, tables: list[tuple[str, str]]) -> None:
    for i in range(answers):
        realm, entity = tables[i % len(tables)]
        # Fresh strings per answer, as requests make them (nothing shared by accident).
        memory.keep(_small_key(str(int(realm)), entity, i), 1, b'{"totalCount":%d}' % i)


def small_answers(answers: int, realms: int) -> dict[str, Any]:
    """1M small answers spread over realms x 3 tables, budget large enough to hold them all:
    RSS against what memory counts, then purges of single tables (about answers / tables
    each), then a purge of one table holding half the answers."""
    tables = [(str(9130350000000000 + r), e) for r in range(realms) for e in ENTITIES]
    spread = _spread(answers, tables)
    gc.collect()
    return spread | _one_big_table(answers, tables)


def _spread(answers: int, tables: list[tuple[str, str]]) -> dict[str, Any]:
    memory = Memory(answers * 2000)
    gc.collect()
    base = rss()
    start = time.perf_counter()
    _fill(memory, answers, tables)
    fill_s = _ms_since(start) / 1000
    gc.collect()
    grown = rss() - base
    held, entries = memory.bytes_held, memory.entries
    purge_ms = []
    for n, (realm, entity) in enumerate(tables[:200]):
        start = time.perf_counter()
        memory.purged(realm, entity, n + 2)
        purge_ms.append(_ms_since(start))
    return {
        "answers": entries,
        "tables": len(tables),
        "fill_seconds": round(fill_s, 2),
        "rss_growth_bytes": grown,
        "counted_bytes": held,
        "rss_per_answer": round(grown / entries, 1),
        "counted_per_answer": round(held / entries, 1),
        "rss_over_counted": round(grown / held, 3),
        "purge_one_table_ms_p50": round(statistics.median(purge_ms), 4),
        "purge_one_table_ms_max": round(max(purge_ms), 4),
        "answers_per_table": round(entries / len(tables)),
        "freed_by_200_purges": entries - memory.entries,
    }


def _one_big_table(answers: int, tables: list[tuple[str, str]]) -> dict[str, Any]:
    """The hostile shape: one table holding half of all answers."""
    memory = Memory(answers * 2000)
    realm, entity = tables[0]
    _fill(memory, answers // 2, [(realm, entity)])
    _fill(memory, answers - answers // 2, tables[1:])
    before = memory.entries
    start = time.perf_counter()
    memory.purged(realm, entity, 2)
    purge_ms = _ms_since(start)
    pending, freed_at_purge = memory.pending, before - memory.entries
    keep_ms = []
    for i in range(1, 101):
        key = _small_key(tables[3][0], "Customer", -i)
        start = time.perf_counter()
        memory.keep(key, 1, b"{}")
        keep_ms.append(_ms_since(start))
    return {
        "big_table_answers": answers // 2,
        "big_table_purge_ms": round(purge_ms, 4),
        "big_table_freed_at_purge": freed_at_purge,
        "big_table_pending_after_purge": pending,
        "keep_after_big_purge_ms_p50": round(statistics.median(keep_ms), 4),
        "keep_after_big_purge_ms_max": round(max(keep_ms), 4),
        "sweep_step": SWEEP_STEP,
    }


def huge_keys(keys: int, chars: int, budget: int) -> dict[str, Any]:
    """Distinct COUNT(*) queries with huge literals (issue 14, item 6), budget 1 MiB."""
    memory = Memory(budget)
    gc.collect()
    base = rss()
    peak = 0
    for i in range(keys):
        literal = f"{i:08d}" + "x" * (chars - 8)
        text = f"SELECT COUNT(*) FROM Customer WHERE DisplayName = '{literal}'"
        memory.keep(("9130350000000001", "Customer", text), 1, b'{"totalCount":0}')
        if i % 100 == 99:
            peak = max(peak, rss() - base)
    gc.collect()
    return {
        "keys": keys,
        "key_chars": chars,
        "budget_bytes": budget,
        "entries_held": memory.entries,
        "counted_bytes": memory.bytes_held,
        "rss_growth_bytes": rss() - base,
        "rss_growth_peak_bytes": peak,
    }


def _child(argv: list[str]) -> None:
    scenario, *numbers = argv
    values = [int(v) for v in numbers]
    result = small_answers(*values) if scenario == "small" else huge_keys(*values)
    print(json.dumps(result))


def _run(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_memory(options: MemoryOptions) -> dict[str, Any]:
    small = _run(["small", str(options.answers), str(options.realms)])
    huge = _run(
        ["huge", str(options.huge_keys), str(options.huge_key_chars), str(options.huge_budget)]
    )
    report = {"command": options.command, "small": small, "huge": huge}
    options.out_dir.mkdir(parents=True, exist_ok=True)
    path = options.out_dir / "memory.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    report["files"] = [str(path)]
    return report


def markdown(report: dict[str, Any]) -> str:
    s, h = report["small"], report["huge"]
    mib = MiB
    return "\n".join(
        [
            f"`{report['command']}`",
            "",
            "| measurement | value |",
            "|---|--:|",
            f"| small answers held | {s['answers']:,} in {s['tables']:,} tables |",
            f"| RSS growth / counted (`bytes_held`) | {s['rss_growth_bytes'] / mib:.1f} MiB"
            f" / {s['counted_bytes'] / mib:.1f} MiB ({s['rss_over_counted']:.2f}x) |",
            f"| per answer: RSS / counted | {s['rss_per_answer']:.0f} B"
            f" / {s['counted_per_answer']:.0f} B |",
            f"| purge of one table (~{s['answers_per_table']} answers), p50 / max"
            f" | {s['purge_one_table_ms_p50']:.3f} / {s['purge_one_table_ms_max']:.3f} ms |",
            f"| purge of one table holding {s['big_table_answers']:,} answers"
            f" | {s['big_table_purge_ms']:.3f} ms (freed {s['big_table_freed_at_purge']:,} at"
            f" once, {s['big_table_pending_after_purge']:,} later) |",
            f"| 100 keeps after it (each frees {s['sweep_step']:,}), p50 / max"
            f" | {s['keep_after_big_purge_ms_p50']:.3f} / {s['keep_after_big_purge_ms_max']:.3f}"
            " ms |",
            f"| distinct huge keys: {h['keys']:,} x {h['key_chars']:,} chars,"
            f" budget {h['budget_bytes'] / mib:.0f} MiB"
            f" | {h['entries_held']} held, counted {h['counted_bytes'] / mib:.2f} MiB,"
            f" RSS growth {h['rss_growth_bytes'] / mib:.1f} MiB"
            f" (peak {h['rss_growth_peak_bytes'] / mib:.1f}) |",
        ]
    )


if __name__ == "__main__":
    _child(sys.argv[1:])

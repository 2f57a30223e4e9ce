"""Shared by both benchmark modes: the in-process fake Intuit, ports, percentiles, the machine,
and the optional extras (tqdm, matplotlib), imported lazily so the harness runs without them."""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from fake_intuit import SANDBOX_KEY, Sandbox, SandboxConfig, create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class FakeIntuit:
    url: str
    sandbox: Sandbox


@contextlib.asynccontextmanager
async def fake_intuit(config: SandboxConfig) -> AsyncIterator[FakeIntuit]:
    """A fake Intuit served on loopback in this process (its history shares our clock)."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        yield FakeIntuit(f"http://127.0.0.1:{port}", app[SANDBOX_KEY])
    finally:
        await runner.cleanup()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks; `sorted_values` ascending, q in 0..100."""
    if not sorted_values:
        return float("nan")
    rank = (len(sorted_values) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summarize(values_ms: Sequence[float]) -> dict[str, float | int]:
    ordered = sorted(values_ms)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "mean": round(sum(ordered) / len(ordered), 3),
        "p50": round(percentile(ordered, 50), 3),
        "p95": round(percentile(ordered, 95), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3),
    }


def optional(module: str) -> Any:
    """An optional extra (`pip install -e '.[bench]'`), or None when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def find_binary(name: str) -> str | None:
    """`name` on PATH, or in the sbin directories a non-root PATH often lacks."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else None


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    nginx, wrk = find_binary("nginx"), find_binary("wrk")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": memory_gb,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "qbproxy_tree": _version(
            [
                "git",
                "-C",
                str(Path(__file__).resolve().parent.parent),
                "describe",
                "--always",
                "--dirty",
            ]
        ),
        "nginx": _version([nginx, "-v"]) if nginx else None,
        "wrk": _version([wrk, "-v"]) if wrk else None,
    }


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process and its descendants (a multi-worker proxy), MiB."""
    total_kb, seen, todo = 0, set(), [pid]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
        with contextlib.suppress(OSError, ValueError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
    return round(total_kb / 1024, 1) if seen and total_kb else None

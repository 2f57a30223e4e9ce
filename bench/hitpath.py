"""`python -m bench hitpath`: what a cached answer costs. Closed-loop load on warmed caches
only (a 100-entity query page and entity reads by Id), qbproxy against nginx `proxy_cache`
serving the same bytes, at several concurrencies, measured side by side in one run; and the
same page from a 1,000-row and a 100,000-row table (cost should follow the page)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from fake_intuit import SandboxConfig

from bench.common import fake_intuit, find_binary, machine, percentile, rss_mb
from bench.contenders import CACHE_HEADER, ProxySettings, Running, Unavailable, start

REALM = "9130350000000001"
READS = 100  # distinct entities cycled through by the read load
ANCHOR = dt.datetime(2025, 6, 2, 17, tzinfo=dt.UTC)
REFERENCE_CONCURRENCY = 8  # design.md's reference point


@dataclass(slots=True)
class HitpathOptions:
    concurrency: Sequence[int] = (1, 8, 32)
    duration: float = 5.0
    sizes: Sequence[int] = (1000, 100_000)
    entity: str = "Customer"  # the table sized and paged (any cached entity the fake seeds)
    client: str = "auto"  # auto | wrk | aiohttp
    contenders: Sequence[str] = ("nginx", "qbproxy")
    out_dir: Path | None = Path("bench/results")
    dsn: str | None = None
    qbproxy_workers: int | None = None
    qbproxy_env: dict[str, str] = field(default_factory=dict)
    command: str = ""


@dataclass(frozen=True, slots=True)
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int


# -- load generators ----------------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _duration_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if m is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str) -> Load:
    """wrk's summary with --latency."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if not (rps and total and p50 and p99):
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Load(
        requests=int(total.group(1)),
        seconds=_duration_ms(total.group(2)) / 1000,
        rps=float(rps.group(1)),
        p50_ms=_duration_ms(p50.group(1)),
        p99_ms=_duration_ms(p99.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in socket.groups()) if socket else 0,
    )


def wrk_script(paths: Sequence[str], headers: dict[str, str]) -> str:
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    listed = ", ".join(f'"{p}"' for p in paths)
    lines += [
        f"local paths = {{{listed}}}",
        "local i = 0",
        "request = function()",
        "  i = i + 1",
        "  return wrk.format(nil, paths[(i % #paths) + 1])",
        "end",
    ]
    return "\n".join(lines) + "\n"


def _script_file(text: str) -> Path:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(text)
    return Path(script.name)


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


async def wrk_load(
    base: str, paths: Sequence[str], headers: dict[str, str], connections: int, seconds: float
) -> Load:
    binary = find_binary("wrk")
    assert binary is not None
    script = _script_file(wrk_script(paths, headers))
    try:
        proc = await asyncio.create_subprocess_exec(
            binary,
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base + paths[0],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
    finally:
        _remove(script)
    return parse_wrk(out.decode(errors="replace"))


async def aiohttp_load(
    base: str, paths: Sequence[str], headers: dict[str, str], connections: int, seconds: float
) -> Load:
    """The fallback without wrk: `connections` closed-loop clients in this process (a Python
    client tops out at a few thousand requests a second: it may measure itself)."""
    latencies: list[float] = []
    non_2xx = errors = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        started = time.perf_counter()
        deadline = started + seconds

        async def client(k: int) -> None:
            nonlocal non_2xx, errors
            i = k
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    async with http.get(base + paths[i % len(paths)]) as response:
                        await response.read()
                        non_2xx += response.status >= 300
                except aiohttp.ClientError:
                    errors += 1
                latencies.append((time.perf_counter() - t0) * 1000)
                i += connections

        await asyncio.gather(*(client(k) for k in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return Load(
        len(latencies),
        elapsed,
        len(latencies) / elapsed,
        percentile(latencies, 50),
        percentile(latencies, 99),
        non_2xx,
        errors,
    )


# -- warming and checking -------------------------------------------------------------------------
async def _get(http: aiohttp.ClientSession, url: str, header: str | None) -> tuple[int, str, bytes]:
    async with http.get(url) as response:
        body = await response.read()
        return response.status, response.headers.get(header or "", "") if header else "", body


async def warm(
    http: aiohttp.ClientSession, running: Running, paths: Sequence[str], within: float = 900
) -> None:
    """Ask until every path is answered from cache (qbproxy's first answer for a token and
    table is a MISS that loads the table; nginx stores each URL on its first MISS)."""
    header = CACHE_HEADER[running.name]
    deadline = time.monotonic() + within
    for path in paths:
        while True:
            status, cache, body = await _get(http, running.url + path, header)
            if status != 200:
                raise RuntimeError(f"{running.name} answered {status} for {path}: {body[:300]!r}")
            if cache.upper() == "HIT":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{running.name} never answered {path} from cache")
            await asyncio.sleep(0.01)


def _same_json(a: bytes, b: bytes) -> bool:
    def norm(raw: bytes) -> Any:
        doc = orjson.loads(raw)
        if isinstance(doc, dict):
            doc.pop("time", None)
        return doc

    return bool(norm(a) == norm(b))


# -- the run ---------------------------------------------------------------------------------------
async def _phase(
    size: int,
    concurrencies: Sequence[int],
    options: HitpathOptions,
    load: Callable[..., Any],
    log: Callable[[str], None],
) -> dict[str, Any]:
    config = SandboxConfig(
        realms=(REALM,),
        seed=1,
        customers_per_realm=size if options.entity == "Customer" else 10,
        invoices_per_realm=0,
        payments_per_realm=0,
        entity_counts={} if options.entity == "Customer" else {options.entity: size},
        anchor=ANCHOR,
        max_requests_per_minute_per_realm=10**9,
        max_concurrency_per_realm=10_000,
    )
    log(f"hitpath: seeding a fake Intuit with {size:,} rows of {options.entity}")
    phase: dict[str, Any] = {"rows": size, "contenders": {}, "measurements": []}
    async with fake_intuit(config) as intuit, contextlib.AsyncExitStack() as stack:
        sandbox = intuit.sandbox
        token = sandbox.token_for(REALM)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        rows = sandbox.entities(REALM, options.entity)
        step = max(1, len(rows) // READS)
        ids = [c["Id"] for c in rows[::step][:READS]]
        base = f"/v3/company/{REALM}"
        text = f"SELECT * FROM {options.entity} STARTPOSITION 1 MAXRESULTS 100"
        page = [f"{base}/query?query={quote(text)}&minorversion=75"]
        segment = options.entity.lower()
        reads = [f"{base}/{segment}/{id_}?minorversion=75" for id_ in ids]
        proxy = ProxySettings(
            dsn=options.dsn,
            workers=options.qbproxy_workers,
            ttl_seconds=3600,
            token_trust_seconds=3600,
            refresh_ahead_seconds=60,
            max_requests_per_minute_per_realm=10**6,
            max_concurrency_per_realm=100,
            extra_env=options.qbproxy_env,
        )
        running: dict[str, Running] = {}
        timeout = aiohttp.ClientTimeout(total=900)
        http = await stack.enter_async_context(
            aiohttp.ClientSession(headers=headers, timeout=timeout)
        )
        for name in options.contenders:
            try:
                running[name] = await stack.enter_async_context(
                    start(name, intuit.url, proxy=proxy, cache_valid_seconds=3600)
                )
            except Unavailable as exc:
                log(f"hitpath: {name} unavailable: {str(exc).splitlines()[0]}")
                phase["contenders"][name] = {"available": False, "reason": str(exc)}
                continue
            began = time.monotonic()
            await warm(http, running[name], page + reads)
            log(f"hitpath: {name} warmed in {time.monotonic() - began:.1f} s")
        bodies: dict[str, tuple[bytes, bytes]] = {}
        for name, r in running.items():
            _, _, page_body = await _get(http, r.url + page[0], None)
            _, _, read_body = await _get(http, r.url + reads[0], None)
            bodies[name] = (page_body, read_body)
            phase["contenders"][name] = {
                "available": True,
                "page_bytes": len(page_body),
                "read_bytes": len(read_body),
            }
        if len(bodies) == 2:
            (a_page, a_read), (b_page, b_read) = bodies.values()
            phase["same_json"] = _same_json(a_page, b_page) and _same_json(a_read, b_read)
        for connections in concurrencies:
            for target, paths in (("page", page), ("read", reads)):
                row: dict[str, Any] = {"target": target, "connections": connections}
                for name, r in running.items():
                    result: Load = await load(r.url, paths, headers, connections, options.duration)
                    row[name] = {
                        "rps": round(result.rps, 1),
                        "p50_ms": round(result.p50_ms, 3),
                        "p99_ms": round(result.p99_ms, 3),
                        "requests": result.requests,
                        "non_2xx": result.non_2xx,
                        "errors": result.errors,
                    }
                    log(
                        f"hitpath: {size:,} rows {target:<4} c={connections:<3} {name:<7} "
                        f"{result.rps:9.0f} req/s  p50 {result.p50_ms:.2f} ms  "
                        f"p99 {result.p99_ms:.2f} ms"
                    )
                if "nginx" in row and "qbproxy" in row and row["nginx"]["rps"]:
                    row["ratio"] = round(row["qbproxy"]["rps"] / row["nginx"]["rps"], 3)
                phase["measurements"].append(row)
        for name, r in running.items():
            status, cache, _ = await _get(http, r.url + page[0], CACHE_HEADER[name])
            phase["contenders"][name]["still_hit_after_load"] = status == 200 and cache == "HIT"
            if r.pid is not None:
                phase["contenders"][name]["rss_mb"] = rss_mb(r.pid)
    return phase


def _client(choice: str) -> tuple[str, Callable[..., Any]]:
    has_wrk = find_binary("wrk") is not None
    if choice == "wrk" and not has_wrk:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (or use --client aiohttp)")
    if choice == "wrk" or (choice == "auto" and has_wrk):
        return "wrk", wrk_load
    return "aiohttp", aiohttp_load


async def run_hitpath(
    options: HitpathOptions, log: Callable[[str], None] = print
) -> dict[str, Any]:
    client, load = _client(options.client)
    log(f"hitpath: load generator {client}; {options.duration:g} s per measurement")
    phases = []
    middle = (
        REFERENCE_CONCURRENCY
        if REFERENCE_CONCURRENCY in options.concurrency
        else options.concurrency[len(options.concurrency) // 2]
    )
    for n, size in enumerate(options.sizes):
        concurrencies = list(options.concurrency) if n == 0 else [middle]
        phases.append(await _phase(size, concurrencies, options, load, log))
    result: dict[str, Any] = {
        "mode": "hitpath",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": options.command,
        "machine": machine(),
        "client": client,
        "duration_s": options.duration,
        "page_query": f"SELECT * FROM {options.entity} STARTPOSITION 1 MAXRESULTS 100",
        "phases": phases,
    }
    result["targets"] = targets(result, middle)
    if options.out_dir is not None:
        options.out_dir.mkdir(parents=True, exist_ok=True)
        json_path = options.out_dir / "hitpath.json"
        md_path = options.out_dir / "hitpath.md"
        json_path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        md_path.write_text(markdown(result) + "\n")
        result["files"] = [str(json_path), str(md_path)]
    return result


def targets(result: dict[str, Any], connections: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    phases = result["phases"]
    if not phases:
        return out
    first = phases[0]
    row = next(
        (
            m
            for m in first["measurements"]
            if m["target"] == "page" and m["connections"] == connections
        ),
        None,
    )
    if row and "qbproxy" in row:
        q = row["qbproxy"]
        if "ratio" in row:
            out.append(
                {
                    "target": f"page throughput at least 1/4 of nginx ({connections} connections)",
                    "value": f"{row['ratio']:.2f}x",
                    "met": row["ratio"] >= 0.25,
                }
            )
        out.append(
            {
                "target": f"cached page p50 under 2 ms ({connections} connections)",
                "value": f"{q['p50_ms']:.2f} ms",
                "met": q["p50_ms"] < 2,
            }
        )
        out.append(
            {
                "target": f"cached page p99 under 10 ms ({connections} connections)",
                "value": f"{q['p99_ms']:.2f} ms",
                "met": q["p99_ms"] < 10,
            }
        )
    if len(phases) > 1:
        pages = []
        for phase in phases:
            found = next(
                (
                    m
                    for m in phase["measurements"]
                    if m["target"] == "page" and m["connections"] == connections
                ),
                None,
            )
            if found and "qbproxy" in found:
                pages.append((phase["rows"], found["qbproxy"]["rps"]))
        if len(pages) > 1 and pages[0][1]:
            ratio = pages[-1][1] / pages[0][1]
            out.append(
                {
                    "target": f"page from {pages[-1][0]:,} rows costs about what it costs from "
                    f"{pages[0][0]:,} (throughput within 25%)",
                    "value": f"{ratio:.2f}x",
                    "met": ratio >= 0.75,
                }
            )
    return out


def _pair(m: dict[str, Any], name: str) -> str:
    v = m.get(name)
    return f"{v['p50_ms']:.2f} / {v['p99_ms']:.2f}" if v else "-"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"### Hit path: cached answers only, closed loop ({result['client']}, "
        f"{result['duration_s']:g} s per cell)",
        "",
        f"page: `{result['page_query']}`; read: {READS} of those rows by Id, in turn.",
        "",
        "| table rows | request | connections | nginx req/s | qbproxy req/s | qbproxy / nginx "
        "| nginx p50 / p99 ms | qbproxy p50 / p99 ms |",
        "|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    notes = []
    for phase in result["phases"]:
        for m in phase["measurements"]:
            n, q = m.get("nginx"), m.get("qbproxy")
            lines.append(
                "| "
                + " | ".join(
                    [
                        f"{phase['rows']:,}",
                        m["target"],
                        str(m["connections"]),
                        f"{n['rps']:,.0f}" if n else "-",
                        f"{q['rps']:,.0f}" if q else "-",
                        f"{m['ratio']:.2f}" if "ratio" in m else "-",
                        _pair(m, "nginx"),
                        _pair(m, "qbproxy"),
                    ]
                )
                + " |"
            )
        parts = []
        for name, c in phase["contenders"].items():
            if not c.get("available"):
                parts.append(f"{name} unavailable ({c['reason'].splitlines()[0]})")
                continue
            text = f"{name}: page {c['page_bytes'] / 1024:.1f} KiB, read {c['read_bytes']} B"
            if c.get("rss_mb"):
                text += f", RSS {c['rss_mb']:.0f} MiB"
            if c.get("still_hit_after_load") is False:
                text += ", NOT a cache hit after the load"
            parts.append(text)
        same = phase.get("same_json")
        if same is not None:
            parts.append("same JSON from both" if same else "JSON DIFFERS between them")
        notes.append(f"- {phase['rows']:,} rows: " + "; ".join(parts))
    lines += ["", *notes]
    if result.get("targets"):
        lines += ["", "Targets (design.md), qbproxy:"]
        for t in result["targets"]:
            lines.append(f"- {'met' if t['met'] else 'MISSED'}: {t['target']} ({t['value']})")
    return "\n".join(lines)

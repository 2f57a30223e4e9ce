"""The contenders, each an async context manager yielding the base URL apps would use: Intuit
direct (the fake itself), nginx `proxy_cache`, and `qbproxy serve` as a subprocess (embedded
Postgres under a private directory, or a fresh database on a given server), once refreshing
expired tables by CDC and once (`qbproxy-reload`) reloading them whole."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from bench import nginx
from bench.common import free_port

NAMES = ("direct", "nginx", "qbproxy", "qbproxy-reload")
# qbproxy's variants and their `sync.cdc`; otherwise identical, so their upstream calls show
# what CDC saves over whole reloads (README "Freshness").
QBPROXY_CDC = {"qbproxy": True, "qbproxy-reload": False}
# How each contender says whether it answered from cache, and what counts as a hit/miss.
CACHE_HEADER = {
    "direct": None,
    "nginx": "X-Cache-Status",
    "qbproxy": "X-Cache",
    "qbproxy-reload": "X-Cache",
}
HIT_VALUES = frozenset({"HIT", "STALE", "UPDATING", "REVALIDATED"})
MISS_VALUES = frozenset({"MISS", "EXPIRED"})


class Unavailable(RuntimeError):
    """A contender that cannot run here (nginx not installed, proxy failed to start)."""


@dataclass(slots=True)
class Running:
    name: str
    url: str
    pid: int | None = None
    admin_url: str | None = None
    notes: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """What the harness chooses for `qbproxy serve`; everything else is qbproxy's default."""

    dsn: str | None = None  # a server to create a fresh database on; None: embedded
    workers: int | None = None  # QBPROXY_SERVER_WORKERS; None: qbproxy's default
    ttl_seconds: float = 300.0
    token_trust_seconds: float = 300.0
    refresh_ahead_seconds: float = 30.0
    max_requests_per_minute_per_realm: int = 500
    max_concurrency_per_realm: int = 10
    log_level: str = "WARNING"  # no access log line per request (nginx runs without one)
    extra_env: Mapping[str, str] = field(default_factory=dict)


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


@contextlib.contextmanager
def fresh_database(server_dsn: str) -> Iterator[str]:
    """A new, empty database on `server_dsn`'s server, dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"qbproxy_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_dsn, name)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


async def _wait_ready(url: str, proc: asyncio.subprocess.Process, log: Path, within: float) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise Unavailable(
                    f"qbproxy serve exited with {proc.returncode}; log:\n{_tail(log)}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise Unavailable(f"qbproxy was not ready within {within:.0f} s; log:\n{_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.asynccontextmanager
async def qbproxy(
    upstream_url: str, settings: ProxySettings, name: str = "qbproxy"
) -> AsyncIterator[Running]:
    """`python -m qbproxy serve` with an empty config file, so only qbproxy's defaults and the
    variables set here apply (inherited QBPROXY_* variables are dropped). `name` picks the
    variant; its `sync.cdc` is set after `extra_env`, so the variant keeps its meaning."""
    cdc = QBPROXY_CDC[name]
    with tempfile.TemporaryDirectory(prefix="qbproxy-bench-") as tmp:
        workdir = Path(tmp)
        with contextlib.ExitStack() as stack:
            env = {k: v for k, v in os.environ.items() if not k.startswith("QBPROXY_")}
            port, admin_port = free_port(), free_port()
            env |= {
                "QBPROXY_UPSTREAM_BASE_URL": upstream_url,
                "QBPROXY_SERVER_PORT": str(port),
                "QBPROXY_ADMIN_PORT": str(admin_port),
                "QBPROXY_LOG_LEVEL": settings.log_level,
                "QBPROXY_CACHE_TTL_SECONDS": str(settings.ttl_seconds),
                "QBPROXY_CACHE_TOKEN_TRUST_SECONDS": str(settings.token_trust_seconds),
                "QBPROXY_SYNC_REFRESH_AHEAD_SECONDS": str(settings.refresh_ahead_seconds),
                "QBPROXY_UPSTREAM_MAX_REQUESTS_PER_MINUTE_PER_REALM": str(
                    settings.max_requests_per_minute_per_realm
                ),
                "QBPROXY_UPSTREAM_MAX_CONCURRENCY_PER_REALM": str(
                    settings.max_concurrency_per_realm
                ),
            }
            if settings.dsn:
                env["QBPROXY_DATABASE_DSN"] = stack.enter_context(fresh_database(settings.dsn))
            else:
                env["QBPROXY_DATABASE_DATA_DIR"] = str(workdir / "pg")
            if settings.workers is not None:
                env["QBPROXY_SERVER_WORKERS"] = str(settings.workers)
            env |= dict(settings.extra_env)
            env["QBPROXY_SYNC_CDC"] = "true" if cdc else "false"
            config = workdir / "proxy.toml"
            config.write_text("# qbproxy benchmark: defaults and QBPROXY_* variables only\n")
            log = workdir / "serve.log"
            with log.open("wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "qbproxy",
                    "serve",
                    "--config",
                    str(config),
                    env=env,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    cwd=workdir,
                )
            try:
                await _wait_ready(f"http://127.0.0.1:{admin_port}/readyz", proc, log, 180)
                notes: dict[str, object] = {
                    "database": "given server, fresh database" if settings.dsn else "embedded",
                    "workers": settings.workers if settings.workers is not None else "default",
                    "cdc": cdc,
                }
                yield Running(
                    name,
                    f"http://127.0.0.1:{port}",
                    proc.pid,
                    f"http://127.0.0.1:{admin_port}",
                    notes,
                )
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(proc.wait(), 60)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()


@contextlib.asynccontextmanager
async def start(
    name: str,
    upstream_url: str,
    *,
    proxy: ProxySettings | None = None,
    cache_valid_seconds: float = 300.0,
) -> AsyncIterator[Running]:
    """Start contender `name` in front of `upstream_url`; Unavailable if it cannot run."""
    if name == "direct":
        yield Running("direct", upstream_url)
    elif name == "nginx":
        upstream_port = urlsplit(upstream_url).port
        assert upstream_port is not None
        with tempfile.TemporaryDirectory(prefix="qbproxy-bench-nginx-") as tmp:
            try:
                async with nginx.running(
                    Path(tmp), free_port(), upstream_port, cache_valid_seconds
                ) as url:
                    yield Running("nginx", url, notes={"cache_valid_seconds": cache_valid_seconds})
            except nginx.NginxUnavailable as exc:
                raise Unavailable(str(exc)) from exc
    elif name in QBPROXY_CDC:
        async with qbproxy(upstream_url, proxy or ProxySettings(), name) as running:
            yield running
    else:
        raise ValueError(f"unknown contender {name!r}; choose from {', '.join(NAMES)}")


def cache_class(contender: str, header: str | None) -> str:
    """hit | miss | bypass from a contender's cache header (direct: every read is a miss)."""
    if contender == "direct":
        return "miss"
    value = (header or "").upper()
    if value in HIT_VALUES:
        return "hit"
    if value in MISS_VALUES:
        return "miss"
    return "bypass"

"""Assembling the proxy and admin applications and running them (aiohttp shell).

Resources live in `cleanup_ctx`: the database (embedded or given, migrated at start),
the upstream session and in-flight loads. Postgres being down never stops the proxy
from starting: it forwards (X-Cache: BYPASS) until migrations have applied.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from qbproxy.config import Settings, redact_dsn
from qbproxy.core.in_use import Demand
from qbproxy.core.memory import Memory
from qbproxy.core.trust import TokenTrust
from qbproxy.db.migrate import apply_migrations, migrations_dir
from qbproxy.db.pool import Pool
from qbproxy.db.reports import Reports
from qbproxy.db.rows import Rows
from qbproxy.db.tables import Tables
from qbproxy.db.tokens import Tokens
from qbproxy.embedded_pg import EmbeddedPostgres
from qbproxy.errors import StoreUnavailable
from qbproxy.log import quiet_aiohttp
from qbproxy.metrics import Metrics
from qbproxy.services import PROXY, Proxy, windows_of
from qbproxy.sync.ahead import RefreshAhead
from qbproxy.sync.invalidation import Invalidation
from qbproxy.sync.purge import Purger
from qbproxy.sync.refresh import Loader
from qbproxy.upstream import Upstream
from qbproxy.web import admin, handlers, webhooks

log = logging.getLogger("qbproxy.app")

_MIGRATE_RETRY_SECONDS = 2.0
_PRUNE_SECONDS = 3600.0


def build_app(settings: Settings, registry: CollectorRegistry | None = None) -> web.Application:
    metrics = Metrics(registry if registry is not None else CollectorRegistry())
    windows = windows_of(settings)
    pool = Pool(
        min_size=settings.database.pool_min_size,
        max_size=settings.database.pool_max_size,
        timeout=settings.database.statement_timeout_seconds,
        metrics=metrics,
    )
    tables, rows = Tables(pool), Rows(pool)
    upstream = Upstream(settings.upstream, metrics)
    clock = time.monotonic
    trust_seconds = settings.cache.token_trust_seconds
    tokens = Tokens(TokenTrust(trust_seconds), pool, trust_seconds, clock)
    loader = Loader(
        tables,
        rows,
        upstream,
        metrics,
        tokens,
        windows=windows,
        wait_seconds=settings.upstream.timeout_seconds,
        sync=settings.sync,
    )
    memory = Memory(settings.cache.memory_bytes)
    instance_id = f"{socket.gethostname()}:{uuid.uuid4().hex}"
    # A table asked about within one TTL is in use: a realm left alone that long gets at
    # most one more refresh ahead, then expires.
    demand = Demand(idle_seconds=windows.ttl)
    proxy = Proxy(
        settings=settings,
        windows=windows,
        metrics=metrics,
        pool=pool,
        tables=tables,
        rows=rows,
        upstream=upstream,
        loader=loader,
        tokens=tokens,
        memory=memory,
        invalidation=Invalidation(memory, instance_id, clock),
        purger=Purger(tables, pool, instance_id, memory=memory, metrics=metrics),
        demand=demand,
        ahead=RefreshAhead(demand, tables, loader, tokens, memory, metrics, clock, windows=windows),
        reports=Reports(pool),
        clock=clock,
    )
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        # The parser's own limit is looser, so the configured one is answered with a
        # QBO-shaped 431 by the handler; only absurd headers meet aiohttp's plain 400.
        handler_args={
            "max_field_size": max(4 * settings.server.max_header_bytes, 65536),
            "max_line_size": max(4 * settings.server.max_header_bytes, 65536),
            # Request bodies are forwarded byte for byte with their Content-Encoding; the
            # proxy decodes only what it parses itself (qbproxy/web/bodies.py).
            "auto_decompress": False,
            # aiohttp closes a connection that has not sent a whole request head this long
            # after it opened or after its last answer: the header timeout.
            "keepalive_timeout": settings.server.header_timeout_seconds,
        },
    )
    quiet_aiohttp()
    app[PROXY] = proxy
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_upstream)
    app.cleanup_ctx.append(_background)
    webhooks.install(app, settings.webhooks)
    app.router.add_route("*", "/{tail:.*}", handlers.handle)
    return app


async def _upstream(app: web.Application) -> AsyncIterator[None]:
    proxy = app[PROXY]
    await proxy.upstream.open()
    yield
    await proxy.loader.close()
    await proxy.upstream.close()


async def _background(app: web.Application) -> AsyncIterator[None]:
    """Work no request waits for: refresh-ahead, and pruning token trust rows."""
    proxy = app[PROXY]
    tasks = [
        asyncio.create_task(proxy.ahead.run(proxy.migrated)),
        asyncio.create_task(prune_tokens(proxy)),
    ]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def prune_tokens(proxy: Proxy, every: float = _PRUNE_SECONDS) -> None:
    """Drop token trust rows too old to vouch for anyone, so the table does not grow with
    every token ever seen by a long-running instance (start-up prunes too)."""
    await proxy.migrated.wait()
    while True:
        await asyncio.sleep(every)
        try:
            await proxy.tokens.prune()
        except StoreUnavailable as exc:
            log.debug("token trust not pruned this time: %s", exc)


async def _database(app: web.Application) -> AsyncIterator[None]:
    proxy = app[PROXY]
    settings = proxy.settings.database
    migrations_dir()  # a missing migrations directory fails start-up, not a background task
    embedded = None
    dsn = settings.dsn
    if not dsn:
        embedded = EmbeddedPostgres(Path(settings.data_dir))
        dsn = await asyncio.to_thread(embedded.start)
    log.info("cache database: %s", redact_dsn(dsn))
    proxy.dsn = dsn
    await proxy.pool.open(dsn)
    migrating = asyncio.create_task(_migrate_then_listen(proxy, dsn))
    yield
    migrating.cancel()
    await asyncio.gather(migrating, return_exceptions=True)
    await proxy.invalidation.close()
    await proxy.pool.close()
    if embedded is not None:
        await asyncio.to_thread(embedded.stop)


async def _migrate_then_listen(proxy: Proxy, dsn: str) -> None:
    while True:
        try:
            applied = await asyncio.to_thread(apply_migrations, dsn)
        except StoreUnavailable as exc:
            log.warning("migrations not applied yet, cache bypassed: %s", exc)
            await asyncio.sleep(_MIGRATE_RETRY_SECONDS)
            continue
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        try:
            await proxy.tokens.share_key()
        except StoreUnavailable as exc:
            log.warning("token key not shared yet: %s", exc)
            await asyncio.sleep(_MIGRATE_RETRY_SECONDS)
            continue
        proxy.migrated.set()
        # Listening starts once the schema exists; it runs until shutdown cancels it.
        await proxy.invalidation.run(dsn)
        return


async def serve(settings: Settings) -> None:
    """Run the proxy and admin listeners until cancelled (SIGINT/SIGTERM)."""
    registry = CollectorRegistry()
    proxy_app = build_app(settings, registry)
    admin_app = admin.build_admin_app(proxy_app[PROXY], registry)
    runners = [web.AppRunner(proxy_app, access_log=None), web.AppRunner(admin_app, access_log=None)]
    for runner in runners:
        await runner.setup()
    try:
        await web.TCPSite(
            runners[0],
            settings.server.host,
            settings.server.port,
            shutdown_timeout=settings.server.shutdown_timeout_seconds,
            backlog=1024,
        ).start()
        await web.TCPSite(runners[1], settings.admin.host, settings.admin.port).start()
        log.info(
            "qbproxy serving on http://%s:%d (admin http://%s:%d) -> %s",
            settings.server.host,
            settings.server.port,
            settings.admin.host,
            settings.admin.port,
            settings.upstream.base_url,
        )
        await wait_for_stop()
        # Stop accepting, let in-flight requests finish within shutdown_timeout, then close
        # the pool and upstream session (runner.cleanup does all three, in that order).
        log.info("shutting down")
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def wait_for_stop() -> None:
    """Return on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()

"""`server.workers` > 1: a parent that owns the database (embedded Postgres, migrations)
and the admin listener, and N worker processes sharing the proxy port (SO_REUSEPORT).

Each worker is a whole proxy with its own pool and memory mirror; purges reach every
worker's memory through the same LISTEN/NOTIFY acknowledgements as separate instances.
Metrics are aggregated across workers by prometheus_client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set before prometheus_client is imported anywhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from multiprocessing.process import BaseProcess

from qbproxy import log as qlog
from qbproxy.config import Settings

log = logging.getLogger("qbproxy.workers")

_SUPERVISE_SECONDS = 1.0
_START_SECONDS = 60.0


def worker_count(settings: Settings) -> int:
    return settings.server.workers or os.cpu_count() or 1


def prepare_metrics_dir() -> str:
    """A fresh directory for the workers' metric files; call before importing metrics."""
    path = tempfile.mkdtemp(prefix="qbproxy-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


async def serve_parent(settings: Settings, metrics_dir: str) -> None:
    from aiohttp import web
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from qbproxy.app import build_app
    from qbproxy.metrics import AggregatedHitRatio
    from qbproxy.services import PROXY
    from qbproxy.web import admin

    # The parent's own proxy app is never served: its cleanup_ctx runs the database side
    # (embedded Postgres, migrations, the pool the admin listener reads cache state with).
    parent_app = build_app(settings, CollectorRegistry())
    runner = web.AppRunner(parent_app, access_log=None)
    await runner.setup()
    proxy = parent_app[PROXY]
    aggregated = CollectorRegistry()
    collector = MultiProcessCollector(aggregated, path=metrics_dir)  # type: ignore[no-untyped-call]
    aggregated.register(AggregatedHitRatio(collector))
    admin_runner = web.AppRunner(admin.build_admin_app(proxy, aggregated), access_log=None)
    await admin_runner.setup()
    worker_settings = dataclasses.replace(
        settings, database=dataclasses.replace(settings.database, dsn=proxy.dsn)
    )
    context = multiprocessing.get_context("spawn")
    workers: list[BaseProcess] = []
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        for index in range(worker_count(settings)):
            workers.append(_start(context, worker_settings, index))
        # The admin port (and so /readyz) opens once the proxy port accepts connections.
        await _until_accepting(settings, workers)
        await web.TCPSite(admin_runner, settings.admin.host, settings.admin.port).start()
        log.info(
            "qbproxy serving on http://%s:%d with %d workers (admin http://%s:%d) -> %s",
            settings.server.host,
            settings.server.port,
            len(workers),
            settings.admin.host,
            settings.admin.port,
            settings.upstream.base_url,
        )
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), _SUPERVISE_SECONDS)
            for index, process in enumerate(workers):
                if not process.is_alive() and not stopping.is_set():
                    log.error("worker %d exited (%s); starting another", index, process.exitcode)
                    workers[index] = _start(context, worker_settings, index)
        log.info("shutting down %d workers", len(workers))
    finally:
        await asyncio.to_thread(_stop_all, workers, settings.server.shutdown_timeout_seconds)
        await admin_runner.cleanup()
        await runner.cleanup()
        shutil.rmtree(metrics_dir, ignore_errors=True)


async def _until_accepting(settings: Settings, workers: list[BaseProcess]) -> None:
    host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "") else settings.server.host
    async with asyncio.timeout(_START_SECONDS):
        while True:
            if not any(process.is_alive() for process in workers):
                raise RuntimeError("every worker exited during start-up")
            try:
                _, writer = await asyncio.open_connection(host, settings.server.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


def _start(
    context: multiprocessing.context.SpawnContext, settings: Settings, index: int
) -> BaseProcess:
    process = context.Process(
        target=worker_main, args=(settings, index), name=f"qbproxy-worker-{index}"
    )
    process.start()
    return process


def _stop_all(workers: list[BaseProcess], drain_seconds: float) -> None:
    """SIGTERM every worker (each drains its requests), then kill what is left."""
    for process in workers:
        if process.is_alive():
            process.terminate()
    for process in workers:
        process.join(drain_seconds + 5)
        if process.is_alive():
            process.kill()
            process.join(5)


def worker_main(settings: Settings, index: int) -> None:
    """A worker process: one proxy listener on the shared port, until SIGTERM."""
    qlog.setup(settings.log.level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_worker(settings, index))


async def _serve_worker(settings: Settings, index: int) -> None:
    from aiohttp import web
    from prometheus_client import CollectorRegistry

    from qbproxy.app import build_app, wait_for_stop
    from qbproxy.services import PROXY

    app = build_app(settings, CollectorRegistry())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        # Accept only once the cache is usable (the parent has migrated; this is quick),
        # so the pool's first requests are not needlessly forwarded. Postgres down: start
        # anyway after the bound, and forward until it is back.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(app[PROXY].migrated.wait(), _START_SECONDS / 2)
        await web.TCPSite(
            runner,
            settings.server.host,
            settings.server.port,
            shutdown_timeout=settings.server.shutdown_timeout_seconds,
            backlog=1024,
            reuse_port=True,
        ).start()
        log.debug("worker %d (pid %d) accepting", index, os.getpid())
        await wait_for_stop()
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def metrics_dir_for(settings: Settings) -> Iterator[str | None]:
    """The multiprocess metrics directory when workers > 1, else None."""
    if worker_count(settings) <= 1:
        yield None
        return
    path = prepare_metrics_dir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

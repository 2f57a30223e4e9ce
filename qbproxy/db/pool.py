"""The asyncpg pool, which may be down: every use raises StoreUnavailable, never a driver error.

Pooled connections never carry session state (no SET, LISTEN or advisory locks;
transactions always end), so asyncpg's reset round trip per release is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
import asyncpg.exceptions._base as asyncpg_base

from qbproxy.errors import StoreRejected, StoreUnavailable
from qbproxy.metrics import Metrics

log = logging.getLogger("qbproxy.store")


async def _keep_session(conn: asyncpg.Connection) -> None:
    return None


# SQLSTATE classes of errors caused by the values a request brought (qbo-api.md ids, query
# literals): 22 data exception (out of range, invalid text), 54 program limit exceeded
# (too many parameters, statement too complex). Postgres is fine; the request is forwarded.
_INPUT_SQLSTATE_CLASSES = frozenset({"22", "54"})


def store_error(exc: BaseException) -> StoreUnavailable | None:
    """Every asyncpg error as StoreUnavailable (transient: Postgres restarting, a connection
    lost, "cannot switch to state", a statement timeout) or StoreRejected (a data error from
    the request's values); None for an exception that is not asyncpg's."""
    if not type(exc).__module__.startswith("asyncpg"):
        return None
    text = f"postgres: {type(exc).__name__}: {exc}"
    if isinstance(exc, asyncpg_base.DataError):  # a value asyncpg could not encode
        return StoreRejected(text)
    sqlstate = getattr(exc, "sqlstate", None)
    if (
        isinstance(exc, asyncpg.PostgresError)
        and isinstance(sqlstate, str)
        and sqlstate[:2] in _INPUT_SQLSTATE_CLASSES
    ):
        return StoreRejected(text)
    return StoreUnavailable(text)


class Pool:
    def __init__(
        self, *, min_size: int, max_size: int, timeout: float, metrics: Metrics | None = None
    ) -> None:
        self._metrics = metrics
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None

    async def open(self, dsn: str) -> None:
        """Open `database.pool_min_size` connections; with Postgres unreachable, none: the
        proxy still starts (and bypasses), and the pool connects once Postgres is back."""
        try:
            self._pool = await self._create(dsn, self._min_size)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("postgres not reachable at start (%s): connecting lazily", exc)
            self._pool = await self._create(dsn, 0)

    async def _create(self, dsn: str, min_size: int) -> asyncpg.Pool:
        pool: asyncpg.Pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=self._max_size,
            command_timeout=self._timeout,
            timeout=self._timeout,
            max_inactive_connection_lifetime=60,
            reset=_keep_session,
        )
        return pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def acquire(self, operation: str = "other") -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; `operation` labels qbproxy_store_seconds."""
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        started = time.perf_counter()
        try:
            async with self._pool.acquire(timeout=self._timeout) as conn:
                yield conn
        except (OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            mapped = store_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if self._metrics is not None:
                seconds = time.perf_counter() - started
                self._metrics.store_seconds.labels(operation).observe(seconds)

    def connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled connection whose errors surface as StoreUnavailable (read-only callers)."""
        return self.acquire()

    async def ping(self) -> None:
        async with self.acquire("ping") as conn:
            await conn.fetchval("SELECT 1")

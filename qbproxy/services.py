"""What the proxy's handlers share (the services), hung off the aiohttp app under one typed
key; built by qbproxy/app.py. The configured time windows are read here, once."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from qbproxy.config import Settings
from qbproxy.core.in_use import Demand
from qbproxy.core.inactive import Rule
from qbproxy.core.memory import Memory
from qbproxy.core.policy import Windows
from qbproxy.db.pool import Pool
from qbproxy.db.reports import Reports
from qbproxy.db.rows import Rows
from qbproxy.db.tables import Tables
from qbproxy.db.tokens import Tokens
from qbproxy.metrics import Metrics
from qbproxy.sync.ahead import RefreshAhead
from qbproxy.sync.invalidation import Invalidation
from qbproxy.sync.purge import Purger
from qbproxy.sync.refresh import Loader
from qbproxy.upstream import Upstream


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def windows_of(settings: Settings) -> Windows:
    """The TTL, stale and refresh-ahead windows: the one place they are read from settings."""
    return Windows.of(
        settings.cache.ttl_seconds,
        settings.cache.max_stale_seconds,
        settings.sync.refresh_ahead_seconds,
    )


@dataclass(slots=True)
class Proxy:
    settings: Settings
    windows: Windows
    metrics: Metrics
    pool: Pool
    tables: Tables
    rows: Rows
    upstream: Upstream
    loader: Loader
    tokens: Tokens
    memory: Memory
    invalidation: Invalidation
    purger: Purger
    # Tables in use, and the token refresh-ahead may use per realm (memory only).
    demand: Demand
    ahead: RefreshAhead
    reports: Reports
    # Report calls to Intuit in flight in this process, by (realm, key): whether the
    # answer landed (single flight, qbproxy/web/reports.py).
    report_flights: dict[tuple[str, str], asyncio.Future[bool]] = field(default_factory=dict)
    # Intuit's `SELECT *` rule for inactive rows, per name list, as learned from its
    # answers (qbproxy/core/inactive.py; memory only, relearned after a restart).
    inactive_rules: dict[str, Rule] = field(default_factory=dict)
    # Monotonic seconds for trust windows; wall clock for Intuit-style `time` fields.
    clock: Callable[[], float] = field(default=time.monotonic)
    wall_clock: Callable[[], dt.datetime] = field(default=_local_now)
    # Set once migrations applied: until then the cache is bypassed, never half-used.
    migrated: asyncio.Event = field(default_factory=asyncio.Event)
    # The database actually used (the embedded one's, when database.dsn is empty).
    dsn: str = ""
    # Requests being handled by this worker (server.max_connections bounds it).
    in_flight: int = 0


PROXY = web.AppKey("proxy", Proxy)

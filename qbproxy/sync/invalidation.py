"""Purges reach every instance's memory before the write that caused them answers.

Each instance LISTENs on one dedicated connection, applies every purge notification to
its Memory, acknowledges it in `qbo_instances`, and heartbeats there every second. A
writer waits until every live instance has acknowledged its purge. An instance that
cannot heartbeat stops answering from memory on its own (fences) before writers stop
waiting for it, so no path serves memory a finished write has outdated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

from qbproxy.core.memory import Memory

log = logging.getLogger("qbproxy.invalidation")

CHANNEL = "qbproxy_purge"
HEARTBEAT_SECONDS = 1.0
# An instance whose last heartbeat is older than this stops serving from memory...
FENCE_SECONDS = 3.0
# ...and writers stop waiting for it after this (larger, so the fence always comes first).
EXCLUDE_SECONDS = 5.0
ACK_POLL_SECONDS = 0.002
ACK_WAIT_CAP_SECONDS = 10.0

REGISTER = """
INSERT INTO qbo_instances (id, heartbeat, acked_seq)
SELECT $1, now(), last_value FROM qbo_purge_seq
ON CONFLICT (id) DO UPDATE SET heartbeat = now(), acked_seq = EXCLUDED.acked_seq
"""
HEARTBEAT = """
UPDATE qbo_instances SET heartbeat = now(), acked_seq = greatest(acked_seq, $2) WHERE id = $1
"""
ACK = "UPDATE qbo_instances SET acked_seq = greatest(acked_seq, $2) WHERE id = $1"
LAGGING = """
SELECT count(*) FROM qbo_instances
WHERE id <> $1 AND acked_seq < $2 AND heartbeat > now() - make_interval(secs => $3)
"""
FORGET_DEAD = "DELETE FROM qbo_instances WHERE heartbeat < now() - interval '1 hour'"


class Invalidation:
    def __init__(self, memory: Memory, instance_id: str, clock: Callable[[], float]) -> None:
        self._memory = memory
        self.instance_id = instance_id
        self._clock = clock
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._acked = 0
        self._last_ok = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def healthy(self) -> bool:
        """Memory may answer: the channel is up and heartbeats are recent."""
        conn = self._conn
        return (
            conn is not None
            and not conn.is_closed()
            and self._clock() - self._last_ok < FENCE_SECONDS
        )

    async def run(self, dsn: str) -> None:
        """Listen, heartbeat, and reconnect for ever (cancel to stop)."""
        while True:
            try:
                await self._session(dsn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: fence, then reconnect
                log.warning("[CACHE] invalidation channel lost, memory disabled: %s", exc)
            await self._drop()
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _session(self, dsn: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
            # The moment the link drops, memory stops answering (not at the next heartbeat).
            conn.add_termination_listener(lambda _: self._memory.clear())
            # Purges committed before LISTEN began were never seen: start from nothing.
            self._memory.clear()
            await conn.execute(REGISTER, self.instance_id)
            await conn.execute(FORGET_DEAD)
            self._conn = conn
            while True:
                async with self._lock:
                    await conn.execute(HEARTBEAT, self.instance_id, self._acked)
                self._last_ok = self._clock()
                await asyncio.sleep(HEARTBEAT_SECONDS)
        finally:
            self._conn = None
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)

    async def _drop(self) -> None:
        self._conn = None
        self._memory.clear()

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        try:
            doc = orjson.loads(payload)
            realm, generations, seq = doc["realm"], doc["generations"], int(doc["seq"])
            for entity, generation in generations.items():
                self._memory.purged(realm, entity, int(generation))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("[CACHE] unreadable purge notification; clearing memory")
            self._memory.clear()
            return
        self._acked = max(self._acked, seq)
        task = asyncio.get_running_loop().create_task(self._ack())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ack(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            async with self._lock:
                await conn.execute(ACK, self.instance_id, self._acked)
        except Exception as exc:  # the heartbeat retries the ack
            log.warning("[CACHE] purge acknowledgement failed: %s", exc)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._drop()


async def wait_for_acks(
    conn_factory: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
    instance_id: str,
    seq: int,
) -> bool:
    """Wait until every other live instance acknowledged purge `seq`; False at the cap."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ACK_WAIT_CAP_SECONDS
    async with conn_factory() as conn:
        while True:
            lagging = await conn.fetchval(LAGGING, instance_id, seq, EXCLUDE_SECONDS)
            if not lagging:
                return True
            if loop.time() > deadline:
                log.error("[CACHE] %d instance(s) did not acknowledge purge %d", lagging, seq)
                return False
            await asyncio.sleep(ACK_POLL_SECONDS)

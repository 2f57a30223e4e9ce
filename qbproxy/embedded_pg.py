"""A private Postgres kept under a data directory, for machines without one (pgserver's binaries).

It listens on a unix socket only; `start()` returns a URL that asyncpg and psycopg both accept.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
import warnings
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from qbproxy.errors import StoreUnavailable

# platformdirs warns at pgserver's import when XDG_RUNTIME_DIR is unset (containers, CI) and
# falls back to /tmp/runtime-<uid>, which suits pgserver's lock and socket files.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pgserver.postgres_server import PostgresServer, get_server
    from pgserver.utils import DiskList

log = logging.getLogger("qbproxy.db")


class EmbeddedPostgres:
    """`start()` or `with EmbeddedPostgres(dir) as dsn`; several processes may share one dir.

    pgserver lists the processes using a data_dir in `<data_dir>/.handle_pids.json` and stops
    the server when the last one leaves: `stop()` stops it unless another live process holds it.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: PostgresServer | None = None
        self._dsn = ""

    def start(self) -> str:
        """Start (or join) the server and return its DSN; StoreUnavailable if it cannot run."""
        if self._server is not None:
            return self._dsn
        started = time.monotonic()
        data_dir = self.data_dir.expanduser().resolve()
        try:
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            with PostgresServer._lock:
                _forget_dead_handles(data_dir)
            server = get_server(data_dir, cleanup_mode="stop")
            info = server.get_postmaster_info()
        # pgserver fails with whatever it meets: CalledProcessError from initdb or pg_ctl,
        # TimeoutExpired, OSError, RuntimeError for an unusable socket path, bare asserts.
        except Exception as exc:
            # pgserver registers an instance before starting it; a failed one must not be reused.
            PostgresServer._instances.pop(data_dir, None)
            raise StoreUnavailable(
                f"embedded Postgres in {data_dir} did not start: {exc!r}; "
                f"its log is {data_dir / 'log'}"
            ) from exc
        server.__enter__()  # type: ignore[no-untyped-call]  # counts this process's users
        self._server = server
        # Our own URL, not pgserver's: that one leaves the path unquoted and the port to
        # $PGPORT, which would name another socket file.
        socket_dir = quote(str(info.socket_dir))
        self._dsn = f"postgresql://postgres@/postgres?host={socket_dir}&port={info.port}"
        log.info(
            "embedded Postgres ready in %s (pid %s, socket in %s, %.1f s)",
            data_dir,
            info.pid,
            info.socket_dir,
            time.monotonic() - started,
        )
        return self._dsn

    def stop(self) -> None:
        """Leave the server; it stops unless another live process still uses this data_dir."""
        server, self._server = self._server, None
        if server is None:
            return
        with PostgresServer._lock:
            others = [p for p in _forget_dead_handles(server.pgdata) if p != os.getpid()]
        server.__exit__(None, None, None)  # type: ignore[no-untyped-call]
        if server._count > 0:  # another EmbeddedPostgres in this process still uses it
            return
        # pgserver keeps the instance and its atexit hook even when other processes hold the
        # server; dropping both lets a later start() in this process register again.
        if PostgresServer._instances.get(server.pgdata) is server:
            del PostgresServer._instances[server.pgdata]
        atexit.unregister(server._cleanup)
        if others:
            log.info("embedded Postgres in %s left running for pids %s", server.pgdata, others)
        else:
            log.info("embedded Postgres in %s stopped", server.pgdata)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _forget_dead_handles(data_dir: Path) -> list[int]:
    """Drop processes that died without leaving from pgserver's list; return the live ones.

    Otherwise a crashed process stays listed and pgserver never stops the server. Call with
    pgserver's lock held.
    """
    path = data_dir / ".handle_pids.json"
    if not path.exists():
        return []
    handles = DiskList(path)
    pids = handles.get()
    alive = [pid for pid in pids if _is_alive(pid)]
    if alive != pids:
        handles.put(alive)
    return alive


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True

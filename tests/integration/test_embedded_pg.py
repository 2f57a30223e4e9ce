"""The embedded Postgres serves asyncpg and yoyo, really stops, keeps its data across restarts,
and stays up while another process still uses it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psycopg
import pytest

from qbproxy.db.migrate import apply_migrations, pending_migrations
from qbproxy.embedded_pg import EmbeddedPostgres
from qbproxy.errors import StoreUnavailable


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def _running(pid: int) -> bool:
    """False once `pid` exited, even while it waits as a zombie for a parent to reap it."""
    if not Path("/proc").is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _exits(pid: int) -> bool:
    """Whether `pid` is gone within seconds: pg_ctl returns while the postmaster finishes."""
    deadline = time.monotonic() + 10
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(autouse=True)
def _no_server_left_behind(tmp_path: Path) -> Iterator[None]:
    yield
    # A test that failed before stop() must not leave its server running.
    for pid_file in tmp_path.rglob("postmaster.pid"):
        if _running(pid := _postmaster_pid(pid_file.parent)):
            os.kill(pid, signal.SIGQUIT)


async def _select_one(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value: int = await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    return value


async def test_serves_migrates_stops_and_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    pg = EmbeddedPostgres(data_dir)
    dsn = pg.start()
    try:
        assert await _select_one(dsn) == 1
        assert apply_migrations(dsn)[0] == "0001_cache_tables"
        pid = _postmaster_pid(data_dir)
    finally:
        pg.stop()

    assert _exits(pid)
    with pytest.raises((FileNotFoundError, ConnectionRefusedError)):
        await asyncpg.connect(dsn)

    with EmbeddedPostgres(data_dir) as again:
        assert pending_migrations(again) == []


async def test_socket_path_too_long_for_the_data_dir(tmp_path: Path) -> None:
    # Unix socket paths are limited to 107 bytes; pgserver then puts the socket elsewhere.
    data_dir = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedPostgres(data_dir) as dsn:
        assert await _select_one(dsn) == 1
        assert pending_migrations(dsn)[0] == "0001_cache_tables"


def test_another_live_process_keeps_it_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    pg = EmbeddedPostgres(data_dir)
    pg.start()
    holder_code = (
        "import sys; from pathlib import Path; from qbproxy.embedded_pg import EmbeddedPostgres\n"
        "with EmbeddedPostgres(Path(sys.argv[1])):\n"
        "    print('ready', flush=True); sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder_code, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdin is not None
        assert holder.stdout is not None
        assert holder.stdout.readline() == "ready\n"
        pg.stop()
        with psycopg.connect(pg.start()) as conn:  # joins the server the holder kept
            assert conn.execute("SELECT 1").fetchone() == (1,)
        pg.stop()
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    assert not (data_dir / "postmaster.pid").exists()


def test_stop_ignores_processes_that_died_holding_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    pg = EmbeddedPostgres(data_dir)
    pg.start()
    pid = _postmaster_pid(data_dir)
    dead = _dead_pid()
    handles = data_dir / ".handle_pids.json"
    handles.write_text(json.dumps([*json.loads(handles.read_text()), dead]))

    pg.stop()

    assert _exits(pid)


def _dead_pid() -> int:
    with subprocess.Popen([sys.executable, "-c", ""]) as child:
        child.wait()
    return child.pid


def test_two_users_in_one_process_share_the_server(tmp_path: Path) -> None:
    first, second = EmbeddedPostgres(tmp_path / "pg"), EmbeddedPostgres(tmp_path / "pg")
    assert first.start() == second.start()
    pid = _postmaster_pid(tmp_path / "pg")
    first.stop()
    assert _running(pid)
    second.stop()
    assert _exits(pid)


def test_start_failure_is_store_unavailable(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    data_dir.mkdir()
    (data_dir / "PG_VERSION").write_text("7\n")  # a data dir this Postgres cannot run

    with pytest.raises(StoreUnavailable, match="did not start"):
        EmbeddedPostgres(data_dir).start()

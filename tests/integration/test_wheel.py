"""The wheel as a user gets it: built from the repository, installed with pip into a fresh
virtualenv that cannot see the source tree, it migrates an empty database and serves.

The wheel is built from a copy of the source tree without build artefacts: setuptools
builds in place through `build/`, and a wheel built where an earlier build left
`build/lib/qbproxy/migrations` would ship those files even once setup.cfg stops mapping
them, so a build in the working tree could not catch a wheel without migrations.

Slow (a wheel build, a virtualenv, a pip install); dependencies come from the package
index as configured on the machine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

import aiohttp
import orjson
import psycopg
import pytest

from qbproxy.core.catalog import ENTITIES
from tests.integration.conftest import REALM, Intuit

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
QUERY = f"/v3/company/{REALM}/query?query={quote('select * from Customer')}"
# Left out of the copy that the wheel is built from: what a fresh clone does not have.
NOT_SOURCE = {
    ".git",
    ".venv",
    "build",
    "dist",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".qbproxy-data",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _not_source(directory: str, names: list[str]) -> Iterable[str]:
    skip = {n for n in names if n in NOT_SOURCE or n.endswith(".egg-info")}
    if Path(directory) == ROOT / "bench":
        skip.add("results")
    return skip


def clean_env() -> dict[str, str]:
    """This process's environment (the pip configuration with it) minus what would point
    a child at the source tree, this virtualenv or this test's settings."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("QBPROXY_")}


def run(cmd: list[str | Path], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run `cmd` to completion; its stdout, or a failure that shows everything it wrote."""
    done = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=clean_env() if env is None else env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    return done.stdout


def build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=_not_source, symlinks=True)
    wheels = tmp / "wheels"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            wheels,
            source,
        ],
        cwd=tmp,
        timeout=300,
    )
    (wheel,) = wheels.glob("qbproxy-*.whl")
    return wheel


def install(wheel: Path, venv: Path, cwd: Path) -> None:
    """A fresh virtualenv (no system site packages) with `wheel` and its dependencies; run
    from `cwd`, an empty directory, its python finds qbproxy and its SQL files in itself."""
    run([sys.executable, "-m", "venv", venv], cwd=cwd, timeout=120)
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", wheel], cwd=cwd, timeout=300)
    for expr in ("qbproxy.__file__", "qbproxy.db.migrate.migrations_dir()"):
        where = run(
            [python, "-c", f"import qbproxy.db.migrate; print({expr})"], cwd=cwd, timeout=60
        )
        assert Path(where.strip()).resolve().is_relative_to(venv.resolve()), (expr, where)


def tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {str(r[0]) for r in rows}


@pytest.mark.timeout(600)
async def test_wheel_installs_migrates_and_serves(
    tmp_path: Path, intuit: Intuit, empty_pg_dsn: str
) -> None:
    # Blocking steps run in threads (asyncio.to_thread): the fake Intuit shares this loop.
    # 1. The wheel holds the product and its package data, nothing of the test tooling.
    wheel = await asyncio.to_thread(build_wheel, tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    shipped = {n for n in names if n.startswith("qbproxy/migrations/") and n.endswith(".sql")}
    assert shipped == {f"qbproxy/migrations/{p.name}" for p in (ROOT / "migrations").glob("*.sql")}
    assert shipped  # the repository has migrations, so an empty set above is no pass
    assert "qbproxy/py.typed" in names
    assert "qbproxy/cli.py" in names
    for foreign in ("fake_intuit/", "tests/", "bench/"):
        assert not [n for n in names if n.startswith(foreign)], foreign
    assert {n.split("/", 1)[0] for n in names} == {
        "qbproxy",
        wheel.name.split("-py")[0] + ".dist-info",
    }

    # 2. A fresh virtualenv, run from an empty directory: only the installed copy is importable.
    work = tmp_path / "cwd"
    work.mkdir()
    venv = tmp_path / "venv"
    await asyncio.to_thread(install, wheel, venv, work)
    qbproxy = venv / "bin" / "qbproxy"

    # 3. `qbproxy migrate` on an empty database, from the wheel's own SQL files.
    env = {**clean_env(), "QBPROXY_DATABASE_DSN": empty_pg_dsn, "QBPROXY_LOG_LEVEL": "INFO"}
    assert not {e.table for e in ENTITIES} & await asyncio.to_thread(tables, empty_pg_dsn)
    out = await asyncio.to_thread(run, [qbproxy, "migrate"], work, 120, env)
    assert "applied" in out, out
    assert {"qbo_table_state", *(e.table for e in ENTITIES)} <= await asyncio.to_thread(
        tables, empty_pg_dsn
    )

    # 4. `qbproxy serve` in front of the fake Intuit: a miss, then the same answer from cache.
    port, admin = free_port(), free_port()
    env |= {
        "QBPROXY_UPSTREAM_BASE_URL": intuit.url,
        "QBPROXY_SERVER_HOST": "127.0.0.1",
        "QBPROXY_SERVER_PORT": str(port),
        "QBPROXY_ADMIN_HOST": "127.0.0.1",
        "QBPROXY_ADMIN_PORT": str(admin),
    }
    proc = await asyncio.create_subprocess_exec(
        qbproxy,
        "serve",
        env=env,
        cwd=work,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    stderr = asyncio.create_task(proc.stderr.read())  # drained all along: the pipe never fills

    async def log() -> str:
        async with asyncio.timeout(5):
            return (await stderr).decode(errors="replace") if proc.returncode is not None else ""

    try:
        async with aiohttp.ClientSession() as session:
            async with asyncio.timeout(30):
                while True:
                    try:
                        async with session.get(f"http://127.0.0.1:{admin}/readyz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    assert proc.returncode is None, f"qbproxy serve exited:\n{await log()}"
                    await asyncio.sleep(0.1)

            async def customers() -> tuple[str, list[object]]:
                url = f"http://127.0.0.1:{port}{QUERY}"
                async with session.get(url, headers=intuit.auth()) as response:
                    assert response.status == 200, await response.text()
                    doc = orjson.loads(await response.read())
                    return response.headers["X-Cache"], doc["QueryResponse"]["Customer"]

            cache, first = await customers()
            assert cache == "MISS"
            assert first
            calls = intuit.sandbox.count()
            cache, second = await customers()
            assert cache == "HIT"
            assert second == first
            assert intuit.sandbox.count() == calls  # answered without asking Intuit

        # 5. SIGTERM: a clean exit, promptly.
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            code = await proc.wait()
        text = await log()
        assert code == 0, text
        assert "Traceback" not in text, text
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if not stderr.done():
            stderr.cancel()
        await asyncio.gather(stderr, return_exceptions=True)

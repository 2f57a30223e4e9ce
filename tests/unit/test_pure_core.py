"""The pure core imports no I/O: each module, alone in a fresh interpreter, pulls in none
of aiohttp, asyncpg, asyncio or prometheus_client (style.md, "Pure core, thin shell")."""

import subprocess
import sys

import pytest

PURE = [
    "qbproxy.config",
    "qbproxy.routing",
    "qbproxy.schema",
    "qbproxy.qbql",
    "qbproxy.deps",
    "qbproxy.trust",
    "qbproxy.qbo",
    "qbproxy.batch",
    "qbproxy.hot",
    "qbproxy.ratelimit",
    "qbproxy.circuit",
    "qbproxy.cdc",
    "qbproxy.webhook_events",
    "qbproxy.demand",
]
IO = ("aiohttp", "asyncpg", "asyncio", "prometheus_client", "psycopg", "socket")


@pytest.mark.parametrize("module", PURE)
def test_core_module_imports_no_io(module: str) -> None:
    probe = f"import sys; import {module}; print(','.join(m for m in {IO!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "", f"{module} imports {result.stdout.strip()}"

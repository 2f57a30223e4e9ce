"""The pure core imports no I/O: each module, alone in a fresh interpreter, pulls in none
of aiohttp, asyncpg, asyncio or prometheus_client (style.md, "Pure core, thin shell")."""

import subprocess
import sys

import pytest

PURE = [
    "qbproxy.config",
    "qbproxy.core.routing",
    "qbproxy.core.catalog",
    "qbproxy.core.qbql",
    "qbproxy.core.deps",
    "qbproxy.core.trust",
    "qbproxy.core.responses",
    "qbproxy.core.batch",
    "qbproxy.core.memory",
    "qbproxy.core.limits",
    "qbproxy.core.circuit",
    "qbproxy.core.cdc",
    "qbproxy.core.webhook_events",
    "qbproxy.core.in_use",
]
IO = ("aiohttp", "asyncpg", "asyncio", "prometheus_client", "psycopg", "socket")


@pytest.mark.parametrize("module", PURE)
def test_core_module_imports_no_io(module: str) -> None:
    probe = f"import sys; import {module}; print(','.join(m for m in {IO!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "", f"{module} imports {result.stdout.strip()}"

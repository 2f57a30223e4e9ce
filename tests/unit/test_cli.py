"""`qbproxy ...` argument handling (parsing only: the commands are tested where they live)."""

from __future__ import annotations

import socket

import pytest

import qbproxy.sandbox
from qbproxy import cli


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "8099"],
        ["--realms", "3", "--port", "8099", "--seed", "4"],
        ["3"],
        [],
    ],
)
def test_sandbox_gets_its_arguments_in_order(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    seen: list[list[str]] = []

    def sandbox_main(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    monkeypatch.setattr(qbproxy.sandbox, "main", sandbox_main)
    assert cli.main(["sandbox", *args]) == 0
    assert seen == [args]


def test_unknown_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--bogus"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_stats_against_nothing_listening_fails_naming_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert cli.main(["stats", "--admin-url", f"http://127.0.0.1:{port}"]) == 1
    assert f"cannot reach the admin endpoint http://127.0.0.1:{port}/metrics" in caplog.text

"""`qbproxy ...` argument handling (parsing only: the commands are tested where they live)."""

from __future__ import annotations

import socket

import pytest

from qbproxy import cli


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

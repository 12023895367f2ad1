"""``tollhouse run`` refuses bad options with one clear line and exit code 2, before starting."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import BIN, ROOT, free_port

pytestmark = pytest.mark.e2e


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *(str(BIN / "tollhouse"), "run", "--rules", str(ROOT / "rules")),
            *("--data", str(tmp_path / "data"), "--certs", str(tmp_path / "certs")),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )


def assert_refused(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tollhouse run: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def test_an_unknown_mode_is_refused(tmp_path):
    assert_refused(run(tmp_path, "--mode", "bogus", "--port", str(free_port())), "--mode", "bogus")


def test_an_upstream_ca_that_is_not_a_certificate_is_refused(tmp_path):
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    assert_refused(run(tmp_path, "--upstream-ca", str(garbage)), "--upstream-ca", str(garbage))
    assert_refused(run(tmp_path, "--upstream-ca", str(tmp_path)), "--upstream-ca")


def test_a_port_in_use_is_refused(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_refused(run(tmp_path, "--port", str(port)), str(port))

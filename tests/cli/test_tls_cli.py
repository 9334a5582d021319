"""``hodei`` against a ``hodei server`` that speaks TLS: real processes, certificates made here."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.certs import TlsFiles
from tests.fixtures.cli import HODEI, clean_env, hodei, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def tls_server(tmp_path: Path, tls_files: TlsFiles) -> Iterator[str]:
    """A TLS ``hodei server`` (local workers) on 127.0.0.1; yields its address."""
    env = clean_env(
        HODEI_GRPC_ADDRESS="127.0.0.1:0",
        HODEI_HTTP_ADDRESS="127.0.0.1:0",
        HODEI_DATABASE_URL=f"sqlite:///{tmp_path / 'hodei.db'}",
        **tls_files.server_env(),
    )
    log, ports = tmp_path / "server.log", tmp_path / "server.ports"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*HODEI, "server", "--ports-file", str(ports)], env=env, stderr=out
        )
    try:
        wait_for(lambda: ports.exists() or process.poll() is not None, what="server ready")
        yield f"127.0.0.1:{json.loads(ports.read_text())['grpc']}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_run_over_tls_and_the_refusals_exit_125(tls_server: str, tls_files: TlsFiles) -> None:
    ok = hodei(
        "run",
        "--",
        "sh",
        "-c",
        "echo over-tls",
        env=clean_env(HODEI_SERVER=tls_server, HODEI_TLS_CA_FILE=str(tls_files.ca.cert_file)),
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, b"over-tls\n", b"")

    plain = hodei("run", "--", "true", env=clean_env(HODEI_SERVER=tls_server))
    assert plain.returncode == 125
    assert b"speaks TLS but this client connected in plaintext" in plain.stderr
    assert b"Traceback" not in plain.stderr

    wrong_ca = clean_env(
        HODEI_SERVER=tls_server, HODEI_TLS_CA_FILE=str(tls_files.other_ca.cert_file)
    )
    wrong = hodei("run", "--", "true", env=wrong_ca)
    assert wrong.returncode == 125
    assert b"not signed by a CA this client trusts" in wrong.stderr
    assert b"Traceback" not in wrong.stderr
    listing = hodei("jobs", "list", env=wrong_ca)
    assert listing.returncode != 0 and b"not signed by a CA this client trusts" in listing.stderr

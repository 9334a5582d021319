"""``scripts/kube-emulator`` as a process: kubeconfigs appear once it serves; SIGTERM stops it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_standalone_emulator_serves_until_sigterm(tmp_path: Path) -> None:
    admin = tmp_path / "admin.yaml"
    sa = tmp_path / "sa.yaml"
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "kube-emulator"),
            "--kubeconfig",
            str(admin),
            "--serviceaccount-kubeconfig",
            f"hodei-system/hodei-control-plane={sa}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not admin.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "no kubeconfig after 30 s"
            time.sleep(0.05)
        env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": str(admin)}
        listed = subprocess.run(
            ["kubectl", "get", "ns", "-o", "name"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "namespace/kube-system" in listed.stdout.split()
        user = yaml.safe_load(sa.read_text())["contexts"][0]["context"]
        assert user["namespace"] == "hodei-system"
        env["KUBECONFIG"] = str(sa)
        denied = subprocess.run(
            ["kubectl", "get", "pods"], env=env, capture_output=True, text=True, timeout=60
        )
        assert "system:serviceaccount:hodei-system:hodei-control-plane" in denied.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert process.stderr is not None
        process.stderr.close()


def test_node_label_and_taint_flags_are_parsed_and_checked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kube_emulator.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(
        ["--kubeconfig", "k", "--node-label", "pool=gpu", "--node-taint", "gpu=yes:NoSchedule"]
    )
    assert args.node_label == [("pool", "gpu")]
    assert args.node_taint == ["gpu=yes:NoSchedule"]
    for flag, value in (("--node-label", "pool"), ("--node-taint", "gpu:Sometimes")):
        with pytest.raises(SystemExit):
            parser.parse_args(["--kubeconfig", "k", flag, value])
        assert "KEY" in capsys.readouterr().err

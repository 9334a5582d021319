"""`hodei run --profile/--secret-env` on the local provider (embedded): refused clearly, 125."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), HOME=str(tmp_path))
    return subprocess.run(
        [sys.executable, "-m", "hodei", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (
            ("--secret-env", "DB_PASSWORD=db-creds:password"),
            "secret_env (DB_PASSWORD): the local provider has no Kubernetes Secrets",
        ),
        (("--profile", "gpu"), "profile 'gpu': pod profiles are for the Kubernetes provider"),
    ],
)
def test_kubernetes_only_flags_are_refused_on_the_local_provider(
    tmp_path: Path, flags: tuple[str, ...], words: str
) -> None:
    result = _run(tmp_path, *flags, "--", "echo", "ran")
    assert result.returncode == 125, result.stderr
    assert result.stdout == ""  # the job never ran
    assert words in result.stderr


def test_a_malformed_secret_env_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(tmp_path, "--secret-env", "DB_PASSWORD=db-creds", "--", "true")
    assert result.returncode == 125
    assert "--secret-env: 'DB_PASSWORD=db-creds' is not NAME=SECRET:KEY" in result.stderr

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


@pytest.mark.parametrize(
    ("text", "field", "accepted"),
    [
        ("kind: Pod\nspec: [unclosed\n", "(file)", "one YAML Pod manifest"),
        ("apiVersion: v1\nkind: ConfigMap\n", "kind", "apiVersion: v1, kind: Pod"),
        ("apiVersion: v1\nkind: Pod\nspec:\n  nodeSelecter: {a: b}\n", "spec.nodeSelecter",
         "the fields of a Kubernetes Pod"),
        ("apiVersion: v1\nkind: Pod\nspec:\n  restartPolicy: Always\n", "spec.restartPolicy",
         "remove it"),
    ],
)  # fmt: skip
def test_hodei_server_refuses_to_start_with_a_bad_profile(
    tmp_path: Path, text: str, field: str, accepted: str
) -> None:
    templates = tmp_path / "pod-templates"
    templates.mkdir()
    (templates / "gpu.yaml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HODEI_")}
    env.update(
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "data"),
        HODEI_GRPC_ADDRESS="127.0.0.1:0",
        HODEI_HTTP_ADDRESS="127.0.0.1:0",
        HODEI_K8S_ENABLED="1",
        HODEI_LOCAL_ENABLED="0",
        HODEI_K8S_POD_TEMPLATES_DIR=str(templates),
    )
    result = subprocess.run(
        [sys.executable, "-m", "hodei", "server"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    line = next(line for line in result.stderr.splitlines() if "pod template" in line)
    assert f"pod template {templates / 'gpu.yaml'}: {field}: " in line
    assert f"accepted: {accepted}" in line

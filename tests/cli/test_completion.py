"""``hodei completion bash|zsh`` through the real CLI; the bash script driven by real bash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.cli import clean_env, hodei

pytestmark = pytest.mark.slow


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (``hodei`` first), as the shell's
    programmable completion calls the function the script registered."""
    line = " ".join(words)
    program = (
        f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
        f"COMP_CWORD={len(words) - 1}; COMP_LINE={line!r}; COMP_POINT={len(line)}; "
        '_shtab_hodei; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_bash_completes_commands_actions_and_flags(tmp_path: Path) -> None:
    made = hodei("completion", "bash", env=clean_env())
    assert made.returncode == 0, made.stderr
    script = tmp_path / "hodei.bash"
    script.write_bytes(made.stdout)
    assert {"run", "jobs", "workers", "server", "k8s", "completion"} <= set(
        complete(script, "hodei", "")
    )
    assert complete(script, "hodei", "jobs", "w") == ["wait"]
    assert complete(script, "hodei", "jobs", "list", "--sel") == ["--selector"]
    assert "--interactive" in complete(script, "hodei", "run", "--")


def test_zsh_script_and_an_unknown_shell() -> None:
    made = hodei("completion", "zsh", env=clean_env())
    assert made.returncode == 0 and made.stdout.startswith(b"#compdef hodei")
    assert b"wait" in made.stdout and b"--selector" in made.stdout
    fish = hodei("completion", "fish", env=clean_env())
    assert fish.returncode == 125 and b"invalid choice: 'fish'" in fish.stderr

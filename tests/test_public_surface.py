"""The public surface is documented: every variable the settings code reads and every
``hodei`` command appears in the README files, and the docs name no variable the code
does not read (the original's documented-but-ignored variables must not come back)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from hodei.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "src" / "hodei" / "config" / "settings.py"
DOCS = (ROOT / "README.md", ROOT / "deploy" / "kubernetes" / "README.md")
VARIABLE = re.compile(r"\bHODEI_[A-Z0-9_]*[A-Z0-9]\b")
# Prefixes written as families in prose ("HODEI_K8S_*"), not variables.
FAMILIES = {"HODEI_K8S"}


def _read_by_settings() -> set[str]:
    return set(VARIABLE.findall(SETTINGS.read_text()))


def _documented() -> set[str]:
    found: set[str] = set()
    for doc in DOCS:
        found |= set(VARIABLE.findall(doc.read_text()))
    return found - FAMILIES


def test_every_variable_read_is_documented() -> None:
    missing = _read_by_settings() - _documented()
    assert not missing, f"variables read by settings.py but not in the READMEs: {missing}"


def test_no_documented_variable_is_ignored_by_the_code() -> None:
    ignored = _documented() - _read_by_settings()
    assert not ignored, f"variables in the READMEs that settings.py never reads: {ignored}"


def _commands(parser: argparse.ArgumentParser, prefix: str = "hodei") -> set[str]:
    commands: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                leaf = f"{prefix} {name}"
                nested = _commands(sub, leaf)
                commands |= nested or {leaf}
    return commands


def test_every_command_is_in_the_readme() -> None:
    readme = ROOT.joinpath("README.md").read_text()
    usage = readme[readme.index("## Using it") :]
    commands = _commands(build_parser("k8s"))
    assert {"hodei run", "hodei server", "hodei worker", "hodei k8s verify"} <= commands
    for command in sorted(commands):
        head, _, action = command.rpartition(" ")
        # "hodei jobs list | show ID | ..." documents several actions on one line.
        assert command in usage or re.search(
            rf"^{re.escape(head)} .*\b{re.escape(action)}\b", usage, re.M
        ), f"{command!r} is not documented in README.md's usage"

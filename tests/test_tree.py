"""The repository's top level holds no stray empty files (a shell redirection gone wrong
leaves one behind): every file there is part of the project."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_empty_files_at_the_top_level() -> None:
    empty = sorted(p.name for p in ROOT.iterdir() if p.is_file() and p.stat().st_size == 0)
    assert empty == [], f"stray empty files at the top level: {empty}"

"""The commands the deployment README tells people to run, read from its code blocks."""

from __future__ import annotations

import re

from tests.deploy.manifests import README


def section(title: str) -> str:
    """The text of a ``## title`` section, its ``###`` subsections included."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def commands(title: str) -> list[str]:
    """Each command of the section's ``bash`` blocks: comments dropped, ``\\`` lines joined."""
    found: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", section(title), re.S):
        pending = ""
        for line in block.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1]
                continue
            found.append(pending + stripped)
            pending = ""
    return found


def table(title: str, header: str) -> list[list[str]]:
    """Rows of the Markdown table under ``header`` (its first cell) in a section."""
    rows: list[list[str]] = []
    in_table = False
    for line in section(title).splitlines():
        if line.startswith(f"| {header} "):
            in_table = True
            continue
        if in_table and line.startswith("|---"):
            continue
        if in_table and line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif in_table:
            break
    return rows

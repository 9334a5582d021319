"""``hodei jobs list`` through the real CLI: selectors, states in any case, pages, widths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.fixtures.cli import Server, hodei

pytestmark = pytest.mark.slow


def test_listing_selects_pages_and_fits_the_terminal(tmp_path: Path, servers: list[Server]) -> None:
    server = Server(tmp_path)
    servers.append(server)
    env = server.client_env
    long = "echo " + "a-long-argument " * 8
    assert hodei("run", "--label", "team=a", "--", "sh", "-c", "exit 4", env=env).returncode == 4
    assert hodei("run", "--label", "team=b", "--", "sh", "-c", long, env=env).returncode == 0
    assert hodei("run", "--timeout", "0.3", "--", "sleep", "30", env=env).returncode == 124

    def ids(*argv: str, **extra: str) -> list[str]:
        result = hodei("jobs", "list", *argv, env={**env, **extra})
        assert result.returncode == 0, result.stderr
        return [line.split()[0] for line in result.stdout.decode().splitlines()[1:]]

    everything = ids()
    assert len(everything) == 3
    newest, middle, oldest = everything
    assert ids("-l", "team=a") == [oldest]
    assert ids("-l", "team=a", "-l", "tier=x") == []  # every label must match
    assert ids("--state", "failed", "--state", "Timed_Out") == [newest, oldest]
    paged = hodei("jobs", "list", "--limit", "2", env=env)
    assert [line.split()[0] for line in paged.stdout.decode().splitlines()[1:]] == [newest, middle]
    assert b"the newest 2 jobs; --limit N shows more" in paged.stderr

    table = hodei("jobs", "list", env={**env, "COLUMNS": "60"}).stdout.decode().splitlines()
    assert table[0].split() == ["ID", "STATE", "EXIT", "REASON", "AGE", "COMMAND"]
    assert max(len(line) for line in table) <= 60 and table[2].endswith("…")
    assert table[1].split()[2] == "124" and table[3].split()[2] == "4"  # EXIT: hodei run's
    assert re.fullmatch(r"\d+s", table[1].split()[-3])  # relative age
    wide = hodei("jobs", "list", "-o", "wide", env={**env, "COLUMNS": "60"}).stdout.decode()
    assert wide.splitlines()[0].split()[-3:] == ["STARTED", "FINISHED", "LABELS"]
    assert long.strip() in wide  # -o wide is never cut

    listed = json.loads(hodei("jobs", "list", "-o", "json", env=env).stdout)
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", j["created_at"]) for j in listed
    )
    bad = hodei("jobs", "list", "--state", "sleeping", env=env)
    assert bad.returncode == 125 and b"--state" in bad.stderr

"""The waiting spinner (stderr, TTY only) and the command tree."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from hodei.cli.main import build_parser, main
from hodei.cli.spinner import Spinner, fit


async def test_spinner_draws_the_reason_and_erases_it_on_stop() -> None:
    stream = io.StringIO()
    spinner = Spinner(stream, enabled=True, interval=60)
    spinner.show("j-1 starting: pulling image")
    await asyncio.sleep(0)  # let the spinner draw its first frame
    assert stream.getvalue().endswith("j-1 starting: pulling image")
    spinner.stop()
    assert stream.getvalue().endswith("\r\x1b[K")
    spinner.show("again")  # stopped for good: output has begun
    await asyncio.sleep(0)
    assert "again" not in stream.getvalue()


async def test_spinner_writes_nothing_when_disabled() -> None:
    stream = io.StringIO()
    spinner = Spinner(stream, enabled=False)
    spinner.show("waiting")
    await asyncio.sleep(0)
    spinner.stop()
    assert stream.getvalue() == ""


def test_every_documented_command_parses() -> None:
    parser = build_parser("k8s")
    for argv in (
        ["run", "--", "true"],
        ["server"],
        ["jobs", "list", "-o", "json"],
        ["jobs", "show", "j-1"],
        ["jobs", "logs", "j-1", "-f"],
        ["jobs", "cancel", "j-1", "-o", "table"],
        ["workers", "list"],
        ["worker"],
        ["k8s", "verify"],
    ):
        assert callable(parser.parse_args(argv).func)


def test_version_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("hodei ")
    with pytest.raises(SystemExit) as exit_info:
        main(["jobs", "list", "-o", "yaml"])
    assert exit_info.value.code == 125  # never a code a job could have exited with


async def test_a_long_reason_is_cut_to_the_terminal_width() -> None:
    stream = io.StringIO()
    spinner = Spinner(stream, enabled=True, interval=60, columns=lambda: 30)
    spinner.show("j-1 starting: Unschedulable: 0/3 nodes are available: 3 Insufficient cpu")
    await asyncio.sleep(0)
    drawn = stream.getvalue().rpartition("\r\x1b[K")[2]
    assert drawn == "⠋ j-1 starting: Unschedulabl…"
    assert len(drawn) == 29  # the last column stays free: no wrap, no copies
    spinner.stop()


def test_fit_counts_wide_characters_as_two_cells_and_joins_lines() -> None:
    assert fit("short", 80) == "short"
    assert fit("a\nb  c", 80) == "a b c"
    assert fit("漢字漢字漢字", 8) == "漢字漢…"  # 6 cells + the ellipsis fit in 7
    assert fit("abcdef", 1) == "…"


def test_hodei_alone_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hodei") and "run" in out and "jobs" in out


def test_ports_file_is_written_whole_as_json(tmp_path: Path) -> None:
    from hodei.cli.server import write_ports

    target = tmp_path / "ports.json"
    write_ports(target, grpc=50051, http=9090)
    assert json.loads(target.read_text()) == {"grpc": 50051, "http": 9090}
    assert [p.name for p in tmp_path.iterdir()] == ["ports.json"]  # no partial file left

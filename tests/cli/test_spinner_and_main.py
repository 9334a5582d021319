"""The waiting spinner (stderr, TTY only) and the command tree."""

from __future__ import annotations

import asyncio
import io

import pytest

from hodei.cli.main import build_parser, main
from hodei.cli.spinner import Spinner


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

"""Terminal sizes and the spec fields of -i/-t/--workdir: what is accepted and what not."""

from __future__ import annotations

import pytest

from hodei.domain.jobs import JobSpec, SpecError
from hodei.domain.stdio import TerminalSize, TerminalSizeError


@pytest.mark.parametrize(("rows", "columns"), [(1, 1), (24, 80), (65535, 65535)])
def test_terminal_sizes_a_winsize_can_hold(rows: int, columns: int) -> None:
    assert TerminalSize(rows, columns) == TerminalSize(rows=rows, columns=columns)


@pytest.mark.parametrize(
    ("rows", "columns", "field"), [(0, 80, "rows"), (24, 65536, "columns"), (24, -1, "columns")]
)
def test_terminal_sizes_out_of_range_are_refused(rows: int, columns: int, field: str) -> None:
    with pytest.raises(TerminalSizeError, match=rf"tty_size\.{field}: "):
        TerminalSize(rows, columns)


def test_a_terminal_job_with_stdin_and_a_workdir_is_valid() -> None:
    spec = JobSpec(
        command=("sh",), stdin=True, tty=True, tty_size=TerminalSize(24, 80), workdir="/tmp"
    )
    assert spec.validated() is spec


def test_a_relative_workdir_is_refused() -> None:
    with pytest.raises(SpecError, match="workdir: 'src' is not an absolute path"):
        JobSpec(command=("true",), workdir="src").validated()


def test_a_size_without_a_terminal_is_refused() -> None:
    with pytest.raises(SpecError, match="tty_size: given for a job that has no terminal"):
        JobSpec(command=("true",), tty_size=TerminalSize(24, 80)).validated()

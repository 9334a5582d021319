"""The exit-code table of ``hodei run`` / ``jobs wait`` / ``jobs logs -f``, every row."""

from __future__ import annotations

import signal

import pytest

from hodei.domain import exitcodes, reasons
from hodei.domain.states import JobState


def test_the_named_codes_are_the_documented_numbers() -> None:
    assert (exitcodes.TIMED_OUT, exitcodes.HODEI_FAILURE) == (124, 125)
    assert (exitcodes.CANNOT_EXECUTE, exitcodes.COMMAND_NOT_FOUND) == (126, 127)
    assert (exitcodes.HANGUP, exitcodes.INTERRUPTED, exitcodes.TERMINATED) == (129, 130, 143)
    assert (exitcodes.OOM_KILLED, exitcodes.BROKEN_PIPE, exitcodes.CANCELLED) == (137, 141, 130)


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGHUP, 129), (signal.SIGINT, 130), (signal.SIGKILL, 137), (signal.SIGTERM, 143)],
)
def test_signal_n_is_128_plus_n(signum: signal.Signals, code: int) -> None:
    assert exitcodes.for_signal(signum) == code
    assert exitcodes.from_returncode(-signum) == code  # as subprocess reports a kill


def test_a_plain_returncode_is_kept() -> None:
    assert [exitcodes.from_returncode(rc) for rc in (0, 1, 3, 255)] == [0, 1, 3, 255]


@pytest.mark.parametrize(
    ("state", "reason", "exit_code", "expected"),
    [
        (JobState.SUCCEEDED, None, 0, 0),
        (JobState.FAILED, reasons.NON_ZERO_EXIT, 3, 3),
        (JobState.FAILED, reasons.NON_ZERO_EXIT, 255, 255),
        (JobState.FAILED, reasons.NON_ZERO_EXIT, 143, 143),  # the job itself got SIGTERM
        (JobState.FAILED, reasons.COMMAND_NOT_FOUND, 127, 127),
        (JobState.FAILED, reasons.START_ERROR, 126, 126),
        (JobState.FAILED, reasons.START_ERROR, None, 125),
        (JobState.TIMED_OUT, reasons.DEADLINE_EXCEEDED, 143, 124),
        (JobState.TIMED_OUT, reasons.DEADLINE_EXCEEDED, None, 124),
        (JobState.CANCELLED, reasons.CANCELLED, 143, 130),
        (JobState.CANCELLED, reasons.CANCELLED, None, 130),
        (JobState.FAILED, reasons.OOM_KILLED, 137, 137),
        (JobState.FAILED, reasons.OOM_KILLED, None, 137),
        *[(JobState.FAILED, reason, None, 125) for reason in sorted(reasons.PLATFORM_REASONS)],
        (JobState.FAILED, reasons.CONTAINER_EXITED, 2, 125),  # the agent's exit, not the job's
    ],
)
def test_exit_code_for_every_outcome(
    state: JobState, reason: str | None, exit_code: int | None, expected: int
) -> None:
    assert exitcodes.exit_code_for(state, reason, exit_code) == expected


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.STARTING, JobState.RUNNING])
def test_a_job_that_has_not_ended_has_no_exit_code(state: JobState) -> None:
    with pytest.raises(ValueError, match=f"state: {state.value} is not a final state"):
        exitcodes.exit_code_for(state, None, None)

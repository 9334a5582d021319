"""The one table of exit codes that ``hodei run``, ``hodei jobs wait`` and ``jobs logs -f`` use.

A script that runs a job through Hodei must be able to tell the job's own failure from
Hodei's: "the tests failed with 1" and "the cluster had no room" call for different
reactions. So the codes follow the conventions scripts already know: the job's own code
when it ran, as a local command would give it; ``timeout(1)``'s 124 for a time limit;
``docker run``'s 125 for "the platform could not run it" (and 126/127 for a command that
cannot be executed or is not found, as POSIX shells report them); ``128 + N`` for a
process ended by signal N, as POSIX shells report it (SIGINT 130, SIGTERM 143, SIGHUP
129, SIGKILL 137 — also what an OOM-killed container exits with on Kubernetes).

Everything here is pure: the CLI, the agent, the control plane and the providers ask
this module instead of spelling numbers themselves.
"""

from __future__ import annotations

import signal
from typing import Final

from hodei.domain import reasons
from hodei.domain.states import JobState

__all__ = [
    "BROKEN_PIPE",
    "CANCELLED",
    "CANNOT_EXECUTE",
    "COMMAND_NOT_FOUND",
    "HANGUP",
    "HODEI_FAILURE",
    "INTERRUPTED",
    "OOM_KILLED",
    "SIGNAL_BASE",
    "SUCCESS",
    "TERMINATED",
    "TIMED_OUT",
    "exit_code_for",
    "for_signal",
    "for_start_failure",
    "from_returncode",
]

SUCCESS: Final = 0
TIMED_OUT: Final = 124  # the job ran past its --timeout (as timeout(1))
HODEI_FAILURE: Final = 125  # Hodei could not run it: usage, auth, unreachable, unschedulable...
CANNOT_EXECUTE: Final = 126  # the command exists but cannot be executed (POSIX shells)
COMMAND_NOT_FOUND: Final = 127  # the command was not found (POSIX shells)
SIGNAL_BASE: Final = 128  # 128 + N: ended by signal N (POSIX shells)


def for_signal(signum: int) -> int:
    """``128 + signum``: what a POSIX shell reports for a process ended by that signal."""
    return SIGNAL_BASE + int(signum)


HANGUP: Final = for_signal(signal.SIGHUP)  # 129
INTERRUPTED: Final = for_signal(signal.SIGINT)  # 130
OOM_KILLED: Final = for_signal(signal.SIGKILL)  # 137: the kernel's OOM killer sends SIGKILL
BROKEN_PIPE: Final = for_signal(signal.SIGPIPE)  # 141: stdout's reader went away
TERMINATED: Final = for_signal(signal.SIGTERM)  # 143
# A job cancelled on request (``hodei jobs cancel``, Ctrl-C of the ``hodei run`` that owned
# it) reads as an interrupted command, whatever signal the agent used to stop it.
CANCELLED: Final = INTERRUPTED


def for_start_failure(kind: reasons.StartFailure) -> int:
    """What a POSIX shell reports when a command cannot start: 127 not found, 126 not
    executable; 125 when the agent itself failed (Hodei could not run it)."""
    if kind is reasons.StartFailure.COMMAND_NOT_FOUND:
        return COMMAND_NOT_FOUND
    if kind is reasons.StartFailure.NOT_EXECUTABLE:
        return CANNOT_EXECUTE
    return HODEI_FAILURE


def from_returncode(returncode: int) -> int:
    """A :mod:`subprocess` returncode as a shell reports it: ``-N`` (killed by signal N)
    becomes ``128 + N``; other values are returned unchanged."""
    return for_signal(-returncode) if returncode < 0 else returncode


def exit_code_for(state: JobState, reason: str | None, exit_code: int | None) -> int:
    """What ``hodei run`` exits with for a job that ended in ``state``.

    ``reason`` is the job's failure reason (:mod:`hodei.domain.reasons`), ``exit_code``
    the code its process ended with, if it ran. Raises ``ValueError`` for a state that is
    not terminal: a job still running has no exit code yet.
    """
    if not state.terminal:
        raise ValueError(f"state: {state.value} is not a final state; the job has no exit code")
    if state is JobState.SUCCEEDED:
        return SUCCESS
    if state is JobState.TIMED_OUT:
        return TIMED_OUT
    if state is JobState.CANCELLED:
        return CANCELLED
    if reason == reasons.OOM_KILLED:
        return OOM_KILLED
    if reason in reasons.PLATFORM_REASONS:
        return HODEI_FAILURE
    if exit_code is not None and 0 < exit_code < 256:
        return exit_code
    # FAILED without a usable code of its own (e.g. a start error the agent could not
    # number): the job did not run as asked, which is Hodei's to report.
    return HODEI_FAILURE

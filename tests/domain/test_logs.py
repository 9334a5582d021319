"""An attempt's log numbering inside its job's log: pure, no store."""

from __future__ import annotations

import pytest

from hodei.domain.ids import JobId
from hodei.domain.logs import AttemptLog, LogChunk, LogSequenceError, LogStream

J = JobId("j-1")


def chunk(sequence: int) -> LogChunk:
    return LogChunk(J, sequence, LogStream.STDOUT, b"x")


def test_second_attempt_continues_the_jobs_log() -> None:
    numbering = AttemptLog(offset=5)
    assert numbering.accept([1, 2]) == 2
    numbering.advance(2)
    assert [c.sequence for c in numbering.in_job([chunk(1), chunk(2)])] == [6, 7]
    assert numbering.job_range(2) == (5, 7)


def test_resends_are_accepted_gaps_and_zero_are_not() -> None:
    numbering = AttemptLog(offset=0, highest=3)
    assert numbering.accept([2, 3]) == 3  # a resend of stored chunks
    assert numbering.accept([3, 4, 5]) == 5
    assert numbering.highest == 3  # accept() decides; advance() records
    with pytest.raises(LogSequenceError, match=r"log sequence 5 is out of range.*at most 4"):
        numbering.accept([5])
    with pytest.raises(LogSequenceError, match="log sequence 0"):
        numbering.accept([0])


def test_resumed_after_a_reconnect_from_what_is_stored() -> None:
    assert AttemptLog.resumed(offset=10, stored_last=14).highest == 4
    assert AttemptLog.resumed(offset=10, stored_last=10).highest == 0
    assert AttemptLog.resumed(offset=10, stored_last=3).highest == 0

"""Log chunks: the unit in which a job's output travels, is stored and is replayed.

A chunk carries a per-job sequence number (from 1, no gaps) so that storage can be
idempotent (a re-sent chunk is recognised by its sequence) and readers can resume from
any point without losing or repeating bytes. Data is raw bytes: output need not be UTF-8
and need not end in a newline.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from hodei.domain.ids import JobId


class LogStream(enum.Enum):
    STDOUT = "STDOUT"
    STDERR = "STDERR"


@dataclass(frozen=True)
class LogChunk:
    """Bytes one job wrote to one stream, at position ``sequence`` of its log."""

    job_id: JobId
    sequence: int
    stream: LogStream
    data: bytes


class LogSequenceError(ValueError):
    """An agent's log chunk numbered out of order; the message says what is accepted."""


@dataclass
class AttemptLog:
    """The one place that maps an attempt's log numbering onto its job's log.

    An agent numbers its chunks from 1 in every attempt; the job's log must stay one
    gap-free sequence across retries, so an attempt's chunk ``n`` is the job's chunk
    ``offset + n``, where ``offset`` is the job's last stored sequence when the attempt's
    worker was created (:attr:`hodei.domain.workers.WorkerRecord.log_offset`). ``highest``
    is the highest agent sequence accepted so far: the next chunk may repeat any earlier
    one (a resend) or continue right after it, nothing else.
    """

    offset: int
    highest: int = 0

    @classmethod
    def resumed(cls, offset: int, stored_last: int) -> AttemptLog:
        """The attempt's numbering after a reconnect, from the job's last stored sequence."""
        return cls(offset, max(stored_last - offset, 0))

    def accept(self, sequences: Iterable[int]) -> int:
        """The highest agent sequence after these chunks (not recorded yet: see
        :meth:`advance`). Raises :class:`LogSequenceError` for a gap or a number < 1."""
        highest = self.highest
        for sequence in sequences:
            if not 1 <= sequence <= highest + 1:
                raise LogSequenceError(
                    f"log sequence {sequence} is out of range: chunks are numbered from 1 "
                    f"without gaps and the next one here is at most {highest + 1}"
                )
            highest = max(highest, sequence)
        return highest

    def advance(self, highest: int) -> None:
        """Record that chunks up to agent sequence ``highest`` are stored or queued."""
        self.highest = max(self.highest, highest)

    def in_job(self, chunks: Iterable[LogChunk]) -> list[LogChunk]:
        """The chunks renumbered into the job's log."""
        return [replace(c, sequence=c.sequence + self.offset) for c in chunks]

    def job_range(self, last: int) -> tuple[int, int]:
        """``(after, up_to)``: the job's sequences that hold agent chunks 1..``last``."""
        return self.offset, self.offset + last

"""Log chunks: the unit in which a job's output travels, is stored and is replayed.

A chunk carries a per-job sequence number (from 1, no gaps) so that storage can be
idempotent (a re-sent chunk is recognised by its sequence) and readers can resume from
any point without losing or repeating bytes. Data is raw bytes: output need not be UTF-8
and need not end in a newline.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

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

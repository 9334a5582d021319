"""Output waiting to reach the control plane: batching, sequencing and resending.

The job's output arrives in pieces of whatever size the pipes deliver. Sending each
piece as its own message would cost one gRPC message (and one store write) per line
for chatty jobs, so pieces are gathered into a batch that is sent once it holds
``max_batch_bytes``, or when its oldest byte is ``linger`` seconds old. When output
comes faster than it can be sent, what has piled up goes in bigger messages (up to
``max_message_bytes``): fewer round trips exactly when they cost the most. Every batch stays here
until the control plane acknowledges it as durable; after a reconnect the unacknowledged
batches are sent again (the control plane ignores sequences it already has), so no byte
is lost when the connection breaks. ``window_bytes`` bounds what is held, which in turn
pauses reading the job's pipes: a job that outruns the control plane blocks on its
writes instead of growing the agent's memory without limit.

Pure logic: the caller passes the clock's time in.
"""

from __future__ import annotations

from collections import deque

from hodei.domain.ids import JobId
from hodei.domain.logs import LogChunk, LogStream

DEFAULT_MAX_BATCH_BYTES = 64 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
DEFAULT_LINGER = 0.05
DEFAULT_WINDOW_BYTES = 16 * 1024 * 1024


class LogBuffer:
    """Pending pieces, then numbered batches in flight until acknowledged."""

    def __init__(
        self,
        *,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        linger: float = DEFAULT_LINGER,
        window_bytes: int = DEFAULT_WINDOW_BYTES,
    ) -> None:
        self.max_batch_bytes = max_batch_bytes
        self.max_message_bytes = max(max_message_bytes, max_batch_bytes)
        self.linger = linger
        self.window_bytes = window_bytes
        # Pieces as read, not merged: copying happens once, when a batch is taken.
        self._pending: deque[tuple[LogStream, memoryview]] = deque()
        self._pending_bytes = 0
        self._pending_since: float | None = None
        self._in_flight: deque[tuple[LogChunk, ...]] = deque()
        self._in_flight_bytes = 0
        self._last_sequence = 0

    @property
    def last_sequence(self) -> int:
        """The highest sequence given to a chunk so far (0: none yet)."""
        return self._last_sequence

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    @property
    def held_bytes(self) -> int:
        """Bytes not yet acknowledged, pending or in flight."""
        return self._pending_bytes + self._in_flight_bytes

    def has_room(self) -> bool:
        """Whether more output may be read now (the window is not full)."""
        return self.held_bytes < self.window_bytes

    def add(self, stream: LogStream, data: bytes, now: float) -> None:
        """Queue output of ``stream``."""
        if not data:
            return
        self._pending.append((stream, memoryview(data)))
        if self._pending_since is None:
            self._pending_since = now
        self._pending_bytes += len(data)

    def flush_at(self) -> float | None:
        """When the pending output must be sent at the latest, or ``None`` if none waits."""
        if self._pending_since is None:
            return None
        return self._pending_since + self.linger

    def ready(self, now: float) -> bool:
        """Whether a batch should be taken now: full, or its oldest byte has waited enough."""
        due = self.flush_at()
        return due is not None and (self._pending_bytes >= self.max_batch_bytes or now >= due)

    def take_batch(self, job_id: JobId) -> tuple[LogChunk, ...]:
        """Number up to ``max_message_bytes`` of pending output as chunks of ``job_id``.

        The batch is held until acknowledged.

        Consecutive pieces of one stream become one chunk, so a batch holds one chunk per
        change of stream, not one per read.
        """
        chunks: list[LogChunk] = []
        size = 0
        limit = self.max_message_bytes
        while self._pending and size < limit:
            stream = self._pending[0][0]
            parts: list[memoryview] = []
            while self._pending and self._pending[0][0] == stream and size < limit:
                _, piece = self._pending.popleft()
                room = limit - size
                if len(piece) > room:
                    self._pending.appendleft((stream, piece[room:]))
                    piece = piece[:room]
                parts.append(piece)
                size += len(piece)
            self._last_sequence += 1
            chunks.append(LogChunk(job_id, self._last_sequence, stream, b"".join(parts)))
        self._pending_bytes -= size
        if not self._pending:
            self._pending_since = None
        if chunks:
            self._in_flight.append(tuple(chunks))
            self._in_flight_bytes += size
        return tuple(chunks)

    def in_flight(self) -> list[tuple[LogChunk, ...]]:
        """Batches sent (or taken) but not acknowledged, oldest first: what to resend."""
        return list(self._in_flight)

    def ack(self, sequence: int) -> None:
        """Forget every batch whose chunks are all ≤ ``sequence`` (durable on the server)."""
        while self._in_flight and self._in_flight[0][-1].sequence <= sequence:
            batch = self._in_flight.popleft()
            self._in_flight_bytes -= sum(len(chunk.data) for chunk in batch)

    def drained(self) -> bool:
        """Nothing pending and nothing unacknowledged."""
        return not self._pending and not self._in_flight

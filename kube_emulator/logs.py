"""Per-container log buffers behind ``pods/log``.

The kubelet appends raw output; readers ask for whole lines with the kubelet's options
(``tailLines``, ``sinceSeconds``, ``timestamps``, ``limitBytes``) and followers wait for
more. Each line keeps the time it arrived, which is what ``timestamps=true`` prints.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime


def _rfc3339_nano(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


@dataclass
class LogBuffer:
    """Lines of one container's output, plus a partial last line."""

    lines: list[tuple[float, bytes]] = field(default_factory=list)
    partial: bytes = b""
    partial_time: float = 0.0
    _changed: asyncio.Event | None = None

    def append(self, data: bytes, now: float | None = None) -> None:
        """Add output; complete lines become readable, the rest waits for its newline."""
        now = time.time() if now is None else now
        if not data:
            return
        if not self.partial:
            self.partial_time = now
        chunks = (self.partial + data).split(b"\n")
        self.partial = chunks.pop()
        for chunk in chunks:
            self.lines.append((self.partial_time, chunk + b"\n"))
            self.partial_time = now
        self.notify()

    def notify(self) -> None:
        """Wake followers (new data, or the container ended)."""
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def changed(self) -> asyncio.Event:
        """An event set at the next change."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def snapshot(self, *, include_partial: bool) -> list[tuple[float, bytes]]:
        """All lines so far (the unterminated tail too when the writer is done)."""
        lines = list(self.lines)
        if include_partial and self.partial:
            lines.append((self.partial_time, self.partial))
        return lines


def render(
    lines: list[tuple[float, bytes]],
    *,
    timestamps: bool = False,
    tail_lines: int | None = None,
    since_time: float | None = None,
) -> bytes:
    """Format lines for the response, applying the kubelet's filters in its order."""
    if since_time is not None:
        lines = [line for line in lines if line[0] >= since_time]
    if tail_lines is not None:
        lines = lines[-tail_lines:] if tail_lines > 0 else []
    if timestamps:
        return b"".join(_rfc3339_nano(ts).encode() + b" " + text for ts, text in lines)
    return b"".join(text for _, text in lines)

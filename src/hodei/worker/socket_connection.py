"""One stream to the control plane over its Unix socket (``HODEI_SERVER_SOCKET``).

The same messages as :mod:`hodei.worker.connection`, framed as :mod:`hodei.api.frames`
says, for an agent on the control plane's own host: no gRPC core is started in the agent
process (why that matters: :mod:`hodei.api.frames`). It fails the way the gRPC stream
does (:mod:`hodei.worker.stream_errors`), so the agent handles both alike.
"""

from __future__ import annotations

import asyncio
import contextlib

from hodei.api import frames
from hodei.api.messages import ProtocolError, ServerMessage, WorkerMessage
from hodei.worker.stream_errors import ConnectionLost, ended

__all__ = ["SocketConnection"]


class SocketConnection:
    """An open stream on the control plane's socket. Writes are serialised."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str) -> SocketConnection:
        """Connect to the socket at ``path``. Raises OSError (no socket, nobody listening)."""
        reader, writer = await asyncio.open_unix_connection(path, limit=frames.MAX_FRAME)
        return cls(reader, writer)

    async def send(self, message: WorkerMessage) -> None:
        """Write one message; raise :class:`ConnectionLost` when the socket is broken."""
        data = frames.worker_frame(message)
        async with self._write_lock:
            if self._writer.is_closing():
                raise ConnectionLost("stream closed")
            try:
                self._writer.write(data)
                await self._writer.drain()
            except (ConnectionError, RuntimeError) as exc:
                raise ConnectionLost(f"stream closed: {exc}") from None

    async def receive(self) -> ServerMessage | None:
        """The next message; ``None`` for one this agent does not know.

        Raises :class:`ConnectionLost` when the stream breaks or ends,
        :class:`~hodei.worker.stream_errors.Rejected` when the control plane ended it
        with an authentication or authorisation error.
        """
        try:
            frame = await frames.read_frame(self._reader)
        except (frames.FrameError, ConnectionError) as exc:
            raise ConnectionLost(f"stream broken: {exc}") from None
        if frame is None:
            raise ConnectionLost("stream ended without a status")
        kind, payload = frame
        if kind == frames.STATUS:
            code, details = frames.parse_status(payload)
            raise ended(code, details)
        if kind != frames.MESSAGE:
            return None  # a kind newer than this agent: ignore it
        try:
            return frames.parse_server_frame(payload)
        except ProtocolError:
            return None  # a message type newer than this agent: ignore it

    async def close(self) -> None:
        """Close the socket (the control plane sees the stream end)."""
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

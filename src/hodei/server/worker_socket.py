"""The worker protocol on a Unix socket, for agents on the control plane's own host.

An agent the local provider starts speaks :mod:`hodei.api.frames` here instead of gRPC
(why: that module's docstring). The session is the same one the gRPC stream drives
(:meth:`~hodei.server.worker_session.WorkerSession.stream`): the same Register and
one-time token, the same checks, the same statuses at the end. Only the control plane's
user may connect (the socket's mode is 0600, in a directory of mode 0700); an agent that
finds no socket at its path (its control plane is gone) dials ``HODEI_SERVER_ADDRESS``
over gRPC instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from hodei.api import frames
from hodei.api.messages import ProtocolError, WorkerMessage
from hodei.server.worker_session import SessionError, WorkerSession
from hodei.store.base import StoreError

__all__ = ["WorkerSocket"]

log = logging.getLogger(__name__)


class WorkerSocket:
    """Serves one :class:`WorkerSession` per connection on ``path`` (see the module)."""

    def __init__(self, new_session: Callable[[], WorkerSession], path: Path) -> None:
        self._new_session = new_session
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen, on a socket only this user may connect to. One left by a control plane
        that was killed is replaced. Raises OSError."""
        if self.path.is_socket():
            self.path.unlink()
        self._server = await asyncio.start_unix_server(
            self._accepted, path=str(self.path), limit=frames.MAX_FRAME
        )
        self.path.chmod(0o600)

    async def close(self, grace: float = 0.0) -> None:
        """Stop listening, give the open streams up to ``grace`` seconds to end (as the
        gRPC server does its calls), end the rest, remove the socket."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._connections and grace > 0:
            await asyncio.wait(set(self._connections), timeout=grace)
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        self.path.unlink(missing_ok=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = self._new_session()
        try:
            async for message in session.stream(_messages(reader), peer=f"unix:{self.path}"):
                writer.write(frames.server_frame(message))
                await writer.drain()
            status = frames.status_frame("OK")
        except SessionError as exc:
            status = frames.status_frame(exc.code, str(exc))
        except StoreError as exc:  # as the gRPC guard answers it: worth a retry
            status = frames.status_frame("UNAVAILABLE", str(exc))
        except ConnectionError:
            return  # the agent is gone: nobody to tell
        except Exception as exc:
            log.exception("worker stream on %s failed", self.path)
            status = frames.status_frame("INTERNAL", f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(ConnectionError):
            writer.write(status)
            await writer.drain()


async def _messages(reader: asyncio.StreamReader) -> AsyncIterator[WorkerMessage]:
    """The agent's messages until it closes its end; bad frames end the session."""
    while True:
        try:
            frame = await frames.read_frame(reader)
        except frames.FrameError as exc:
            raise SessionError("INVALID_ARGUMENT", str(exc)) from None
        except ConnectionError:
            return  # the agent is gone, as a cancelled gRPC stream ends
        if frame is None:
            return
        kind, payload = frame
        if kind != frames.MESSAGE:
            raise SessionError("INVALID_ARGUMENT", f"frame kind {kind} (accepted: 1, a message)")
        try:
            yield frames.parse_worker_frame(payload)
        except ProtocolError as exc:
            raise SessionError("INVALID_ARGUMENT", str(exc)) from None

"""The worker agent: dial the control plane, run the one job it assigns, deliver every byte.

Connections come and go (a control plane restart, a network blip); the job does not
stop for them. Output and the result are kept until the control plane acknowledges
them and are sent again on the next connection, and the agent exits only after the
result is acknowledged, so a result is never lost. If no control plane answers for
``give_up_after`` seconds, the agent kills the job's process group and exits rather
than leave an orphan running forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from hodei.api import messages as m
from hodei.config import WorkerSettings
from hodei.config.settings import ClientTls
from hodei.domain.ids import WorkerId
from hodei.domain.logs import LogStream
from hodei.worker.backoff import backoff_delays
from hodei.worker.job import RunningJob
from hodei.worker.launched import LauncherLink
from hodei.worker.logbuffer import (
    DEFAULT_LINGER,
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_WINDOW_BYTES,
    LogBuffer,
)
from hodei.worker.process import PIPE_DRAIN_TIMEOUT
from hodei.worker.socket_connection import SocketConnection
from hodei.worker.stream_errors import ConnectionLost, Rejected

__all__ = [
    "EXIT_DELIVERED",
    "EXIT_NO_JOB",
    "EXIT_NO_LAUNCHER",
    "EXIT_REJECTED",
    "EXIT_UNREACHABLE",
    "Agent",
    "AgentConnection",
    "AgentOptions",
    "dial",
    "run_agent",
]

log = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

EXIT_DELIVERED = 0
EXIT_REJECTED = 3  # the control plane refused this worker's token
EXIT_UNREACHABLE = 4  # no control plane for give_up_after seconds
EXIT_NO_JOB = 5  # registered, but no job was assigned in time
EXIT_NO_LAUNCHER = 6  # HODEI_LAUNCHER_DIR holds no launcher fifos to talk through


class AgentConnection(Protocol):
    async def send(self, message: m.WorkerMessage) -> None: ...
    async def receive(self) -> m.ServerMessage | None: ...
    async def close(self) -> None: ...


Connector = Callable[[str], Awaitable[AgentConnection]]


@dataclass(frozen=True)
class AgentOptions:
    """Tunables; the defaults suit production, tests shorten the waits."""

    give_up_after: float = 120.0
    register_timeout: float = 30.0
    assign_timeout: float = 120.0
    kill_grace: float = 2.0
    drain_timeout: float = PIPE_DRAIN_TIMEOUT
    heartbeat_interval: float = 10.0
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    window_bytes: int = DEFAULT_WINDOW_BYTES
    linger: float = DEFAULT_LINGER
    backoff: Callable[[], Iterator[float]] = field(default=backoff_delays)
    # This process is a child subreaper running only the job: stopping the job kills
    # every descendant (see hodei.worker.containment). Off for agents run in-process.
    contain: bool = False


async def dial(address: str, *, socket: str | None, tls: ClientTls | None) -> AgentConnection:
    """A stream to the control plane: on its Unix ``socket`` when there is one and it
    answers (an agent on its host), else over gRPC to ``address``."""
    if socket is not None:
        try:
            return await SocketConnection.open(socket)
        except OSError as exc:  # a control plane restarted since: its socket is elsewhere
            log.info("control plane socket %s: %s; dialling %s", socket, exc, address)
    # Imported here: gRPC is ≈2 MB of memory that every local agent (forked from the
    # launcher, see hodei.worker.launcher) would otherwise copy page tables for.
    from hodei.worker.connection import Connection

    return await Connection.open(address, tls=tls)


class _SessionEnded(Exception):
    """The result was acknowledged: the agent's work is done."""


class _NoJob(Exception):
    """Registered, but nothing to run arrived in time."""


class Agent:
    """Runs the worker protocol for one worker: register with the one-time token (then the
    resume token on reconnects), run the assigned job, stream its numbered output and
    deliver the result, resending whatever was not acknowledged (``docs/architecture.md``);
    :meth:`run` returns the exit code."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        connector: Connector | None = None,
        options: AgentOptions | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self._settings = settings
        self._connector: Connector = connector or functools.partial(
            dial, socket=settings.socket, tls=settings.tls
        )
        self._options = options or AgentOptions()
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._buffer = LogBuffer(
            max_batch_bytes=self._options.max_batch_bytes,
            max_message_bytes=self._options.max_message_bytes,
            linger=self._options.linger,
            window_bytes=self._options.window_bytes,
        )
        self._wake = asyncio.Event()
        self._resume_token = ""
        self._job: RunningJob | None = None
        self._job_task: asyncio.Task[None] | None = None
        self._started_sent = False
        self._paused = False
        self._main_task: asyncio.Task[int] | None = None
        self._launcher: LauncherLink | None = None

    @property
    def job(self) -> RunningJob | None:
        return self._job

    def terminate(self) -> None:
        """Stop the job on a signal to the agent (SIGTERM, SIGINT); the result is still
        delivered, marked ``terminated``: the control plane did not ask for it, so the job
        is retried as a disruption, not ended as CANCELLED (that takes a CancelJob)."""
        if self._job is not None:
            self._job.stop("terminate")
        elif self._main_task is not None:
            self._main_task.cancel()  # nothing to report: just leave

    async def run(self) -> int:
        """Connect, reconnect, run the job; return once the result is acknowledged."""
        self._main_task = asyncio.current_task()
        if self._settings.launcher_dir is not None:
            try:
                self._launcher = await LauncherLink.open(Path(self._settings.launcher_dir))
            except OSError as exc:
                log.error("HODEI_LAUNCHER_DIR: no launcher to talk to: %s", exc)
                return EXIT_NO_LAUNCHER
        delays = self._options.backoff()
        lost_since = time.monotonic()
        try:
            while True:
                registered = False
                try:
                    connection = await self._connector(self._settings.server_address)
                    try:
                        registered = await self._session(connection)
                    finally:
                        await connection.close()  # again if the session closed it: harmless
                except _SessionEnded:
                    return EXIT_DELIVERED
                except _NoJob:
                    log.error("no job was assigned; exiting")
                    return EXIT_NO_JOB
                except Rejected as exc:
                    log.error("control plane refused this worker: %s", exc)
                    await self._abandon()
                    return EXIT_REJECTED
                except ConnectionLost as exc:
                    log.warning("connection to %s lost: %s", self._settings.server_address, exc)
                if registered:
                    delays, lost_since = self._options.backoff(), time.monotonic()
                if time.monotonic() - lost_since > self._options.give_up_after:
                    log.error("no control plane for %.0f s; giving up", self._options.give_up_after)
                    await self._abandon()
                    return EXIT_UNREACHABLE
                await asyncio.sleep(next(delays))
        finally:
            if self._job_task is not None and not self._job_task.done():
                self._job_task.cancel()
            if self._launcher is not None:
                await self._launcher.close()

    async def _abandon(self) -> None:
        """Kill the job (if any) so that nothing outlives the agent."""
        job = self._job
        if job is not None and job.process is not None and job.result is None:
            await job.process.kill_group(self._options.kill_grace)

    async def _session(self, connection: AgentConnection) -> bool:
        """Register and exchange messages until the stream breaks; True if registered."""
        s = self._settings
        worker_id = WorkerId(s.worker_id)
        await connection.send(
            m.Register(worker_id, resume_token=self._resume_token)
            if self._resume_token
            else m.Register(worker_id, token=s.token)
        )
        try:
            first = await asyncio.wait_for(connection.receive(), self._options.register_timeout)
        except TimeoutError:
            raise ConnectionLost("no answer to Register") from None
        if not isinstance(first, m.Registered):
            raise ConnectionLost(f"expected Registered, got {type(first).__name__}")
        self._resume_token = first.resume_token or self._resume_token
        sender = asyncio.create_task(self._send_loop(connection))
        receiver = asyncio.create_task(self._receive_loop(connection))
        try:
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            raise ConnectionLost("stream ended")
        except ConnectionLost:
            return True
        finally:
            for task in (sender, receiver):
                task.cancel()
            # Close first: a task cancelled inside a gRPC write only finishes once the
            # call itself is cancelled.
            await connection.close()
            await asyncio.gather(sender, receiver, return_exceptions=True)

    async def _receive_loop(self, connection: AgentConnection) -> None:
        while True:
            timeout = self._options.assign_timeout if self._job is None else None
            try:
                message = await asyncio.wait_for(connection.receive(), timeout)
            except TimeoutError:
                raise _NoJob() from None
            if isinstance(message, m.AssignJob):
                self._assign(message)
            elif isinstance(message, m.CancelJob):
                if self._job is not None and message.job_id == self._job.assignment.job_id:
                    self._job.stop("cancel")
            elif isinstance(message, m.LogAck):
                self._buffer.ack(message.sequence)
                if self._paused and self._buffer.has_room():
                    self._set_paused(False)
            elif isinstance(message, m.JobInput):
                if self._job is not None and message.job_id == self._job.assignment.job_id:
                    self._job.feed(message)
            elif isinstance(message, m.ResultAck):
                raise _SessionEnded()

    def _assign(self, assignment: m.AssignJob) -> None:
        if self._job is not None:
            return  # a repeat after a reconnect: this job is already running here
        self._job = RunningJob(
            assignment,
            base_env=self._base_env,
            sink=self._on_output,
            on_change=self._wake.set,
            kill_grace=self._options.kill_grace,
            drain_timeout=self._options.drain_timeout,
            contained=self._options.contain,
            launcher=self._launcher,
        )
        self._job_task = asyncio.create_task(self._job.run())

    def _on_output(self, stream: LogStream, data: bytes) -> None:
        buffer = self._buffer
        was_empty = buffer.pending_bytes == 0
        buffer.add(stream, data, time.monotonic())
        if was_empty or buffer.pending_bytes >= buffer.max_batch_bytes:
            self._wake.set()
        if not buffer.has_room():
            self._set_paused(True)

    def _set_paused(self, paused: bool) -> None:
        process = self._job.process if self._job is not None else None
        if process is None or paused == self._paused:
            return
        self._paused = paused
        if paused:
            process.pause_output()
        else:
            process.resume_output()

    async def _send_loop(self, connection: AgentConnection) -> None:
        """Send JobStarted, output batches, the result and heartbeats, in that order.

        A new stream repeats JobStarted (a restarted control plane may not have stored
        it) and every unacknowledged batch; the control plane treats both as idempotent.
        """
        if self._job is not None and self._job.started is not None:
            await connection.send(self._job.started)
            self._started_sent = True
        for batch in self._buffer.in_flight():
            await connection.send(m.LogBatch(batch))
        result_sent = False
        while True:
            self._wake.clear()
            job = self._job
            if job is not None and job.started is not None and not self._started_sent:
                await connection.send(job.started)
                self._started_sent = True
            # Once the job has ended no output can follow: send whatever is pending.
            while job is not None and (
                self._buffer.ready(time.monotonic())
                or (job.result is not None and self._buffer.pending_bytes)
            ):
                batch = self._buffer.take_batch(job.assignment.job_id)
                await connection.send(m.LogBatch(batch))
            if job is not None and job.result is not None and not result_sent:
                # The result goes last: every chunk up to last_sequence is already sent.
                last = self._buffer.last_sequence
                await connection.send(dataclasses.replace(job.result, last_sequence=last))
                result_sent = True
            await self._idle(connection)

    async def _idle(self, connection: AgentConnection) -> None:
        due = self._buffer.flush_at()
        interval = self._options.heartbeat_interval
        timeout = interval if due is None else max(0.0, due - time.monotonic())
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            if due is None:
                await connection.send(m.Heartbeat())


async def run_agent(settings: WorkerSettings, *, options: AgentOptions | None = None) -> int:
    """Run the agent with SIGTERM/SIGINT stopping the job (its result still delivered).

    The process becomes a child subreaper, so that nothing the job starts can outlive it.
    """
    from hodei.worker import containment

    if options is None:
        options = AgentOptions(contain=containment.become_subreaper())
    agent = Agent(settings, options=options)
    loop = asyncio.get_running_loop()

    def terminate(signum: int, frame: object) -> None:
        loop.call_soon_threadsafe(agent.terminate)

    # signal.signal rather than loop.add_signal_handler: the same effect here (the handler
    # runs in this, the loop's, thread as soon as the signal interrupts its wait), for a
    # tenth of the CPU (asyncio lists every valid signal on each add and each removal).
    previous = {}
    for signum in _STOP_SIGNALS:
        with contextlib.suppress(ValueError):  # not the main thread: no handler
            previous[signum] = signal.signal(signum, terminate)
    try:
        return await agent.run()
    except asyncio.CancelledError:
        return 128 + signal.SIGTERM
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

"""One job's run inside the agent: start, watch the clock, stop on request, report.

It knows nothing of the connection: output goes to a sink, and the outcome is kept as
a :class:`~hodei.api.messages.JobResult` (without ``last_sequence``, which the sender
fills in once every byte of output has been numbered). What to run comes from the
assignment's :class:`~hodei.domain.jobs.JobSpec`: its argv, its variables, its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Mapping
from typing import Literal

from hodei.api.messages import AssignJob, JobResult, JobStarted
from hodei.domain import exitcodes
from hodei.domain.reasons import StartFailure
from hodei.domain.stdio import JobInput, TerminalSize
from hodei.worker.launched import LaunchedJob, LauncherLink
from hodei.worker.process import PIPE_DRAIN_TIMEOUT, JobProcess, OutputSink, StartError

# "cancel": the control plane asked (CancelJob); "terminate": a signal it did not send
# (the pod deleted or evicted, the node shutting down) - reported apart so the control
# plane retries the job instead of ending it CANCELLED.
StopReason = Literal["timeout", "cancel", "terminate"]

# A terminal job whose client gave no size (stdin not a terminal) gets the classic VT100's.
DEFAULT_TERMINAL_SIZE = TerminalSize(rows=24, columns=80)

# The agent's own variables (its credential, the address it dials...) are not the job's.
_PRIVATE_PREFIX = "HODEI_"


def job_environment(base: Mapping[str, str], assignment: AssignJob) -> dict[str, str]:
    """The job's environment: the agent's own less every ``HODEI_*`` variable (its token
    above all), plus ``HODEI_JOB_ID`` and the job's variables, which may set any name."""
    env = {key: value for key, value in base.items() if not key.startswith(_PRIVATE_PREFIX)}
    env["HODEI_JOB_ID"] = assignment.job_id
    env.update(assignment.spec.env)
    return env


def launched_environment(assignment: AssignJob) -> dict[str, str]:
    """What a job in its own image gets on top of the image's env: its id and its variables."""
    return {"HODEI_JOB_ID": assignment.job_id, **assignment.spec.env}


def job_timeout(assignment: AssignJob) -> float | None:
    """Seconds the job may run, or ``None`` for no limit (the wire's 0 means unset)."""
    timeout = assignment.spec.timeout_seconds
    return timeout if timeout is not None and timeout > 0 else None


class RunningJob:
    """Runs one :class:`AssignJob`; :attr:`started` and :attr:`result` fill in as it goes."""

    def __init__(
        self,
        assignment: AssignJob,
        *,
        base_env: Mapping[str, str],
        sink: OutputSink,
        on_change: Callable[[], None],
        kill_grace: float = 2.0,
        drain_timeout: float = PIPE_DRAIN_TIMEOUT,
        contained: bool = False,
        launcher: LauncherLink | None = None,
    ) -> None:
        self.assignment = assignment
        self._contained = contained
        self._launcher = launcher
        self.started: JobStarted | None = None
        self.result: JobResult | None = None
        self.process: JobProcess | LaunchedJob | None = None
        self._base_env = base_env
        self._sink = sink
        self._on_change = on_change
        self._kill_grace = kill_grace
        self._drain_timeout = drain_timeout
        self._stop_reason: StopReason | None = None
        self._killer: asyncio.Task[None] | None = None
        self._early_input: list[JobInput] = []  # arrived before the process existed
        self.finished = asyncio.Event()

    def feed(self, item: JobInput) -> None:
        """The client's stdin bytes, their end or a terminal resize, in arrival order."""
        if self.result is not None:
            return
        if self.process is None:
            self._early_input.append(item)
        else:
            self.process.feed(item)

    def stop(self, reason: StopReason) -> None:
        """Kill the job's process group; the first reason given is the one reported."""
        if self._stop_reason is not None or self.result is not None:
            return
        self._stop_reason = reason
        if self.process is not None:
            self._killer = asyncio.create_task(self.process.kill_group(self._kill_grace))

    async def run(self) -> None:
        """Start the command, wait for it and record the result; never raises."""
        try:
            await self._run()
        except Exception as exc:  # report it: a job must end with a result, whatever broke
            if self.process is not None:
                self.process.signal_group(signal.SIGKILL)
            self._finish(
                JobResult(
                    self.assignment.job_id,
                    exit_code=exitcodes.HODEI_FAILURE,
                    error=repr(exc),
                    start_failure=StartFailure.AGENT_ERROR,
                )
            )

    async def _run(self) -> None:
        job_id = self.assignment.job_id
        if self._stop_reason == "cancel":  # cancelled before it could start
            self._finish(JobResult(job_id, exit_code=exitcodes.CANCELLED, cancelled=True))
            return
        if self._stop_reason == "terminate":  # the worker is going away before the start
            self._finish(JobResult(job_id, exit_code=exitcodes.TERMINATED, terminated=True))
            return
        argv = self.assignment.spec.argv()
        try:
            self.process = await self._start(argv)
        except StartError as exc:
            self._finish(
                JobResult(job_id, exit_code=exc.exit_code, error=str(exc), start_failure=exc.kind)
            )
            return
        for item in self._early_input:
            self.process.feed(item)
        self._early_input.clear()
        self.started = JobStarted(job_id, self.process.pid)
        self._on_change()
        timer = None
        timeout = job_timeout(self.assignment)
        if timeout is not None:
            timer = asyncio.get_running_loop().call_later(timeout, self.stop, "timeout")
        if self._stop_reason is not None:  # stopped while starting
            self._killer = asyncio.create_task(self.process.kill_group(self._kill_grace))
        status = await self.process.wait(self._drain_timeout)
        if timer is not None:
            timer.cancel()
        if self._killer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._killer
        self._finish(
            JobResult(
                job_id,
                exit_code=status,
                timed_out=self._stopped_by("timeout"),
                cancelled=self._stopped_by("cancel"),
                terminated=self._stopped_by("terminate"),
                oom_killed=isinstance(self.process, LaunchedJob) and self.process.oom_killed,
            )
        )

    async def _start(self, argv: tuple[str, ...]) -> JobProcess | LaunchedJob:
        if self._launcher is not None:
            spec = self.assignment.spec
            if spec.tty:  # refused at submit; an old server?
                raise StartError(
                    "a terminal (-t) is not available for a job in its own image (--image)",
                    StartFailure.AGENT_ERROR,
                )
            env = launched_environment(self.assignment)
            return await LaunchedJob.start(
                self._launcher,
                argv,
                env=env,
                sink=self._sink,
                stdin=spec.stdin,
                cwd=spec.workdir,
            )
        env = job_environment(self._base_env, self.assignment)
        spec = self.assignment.spec
        return await JobProcess.start(
            argv,
            env=env,
            sink=self._sink,
            stdin=spec.stdin,
            tty=(spec.tty_size or DEFAULT_TERMINAL_SIZE) if spec.tty else None,
            cwd=spec.workdir,
            contained=self._contained,
        )

    def _stopped_by(self, reason: StopReason) -> bool:
        return self._stop_reason == reason

    def _finish(self, result: JobResult) -> None:
        self.result = result
        self.finished.set()
        self._on_change()

"""``hodei run``: submit a job, stream its output as it happens, exit with its exit code.

stdout and stderr of the job go to our stdout and stderr byte for byte; everything Hodei
itself has to say goes to stderr. Exit codes follow :mod:`hodei.domain.exitcodes`: the
job's own; 124 when it timed out; 125 when Hodei could not run it (bad flags, the control
plane unreachable, unschedulable...); 128+N when the command is stopped by signal N (the
job is cancelled first). If the control plane restarts while the job runs, the command
reconnects and carries on from the last byte it got.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import BinaryIO, TypeVar

from hodei.cli.client import ClientError, HodeiClient, JobUpdate
from hodei.cli.spinner import Spinner
from hodei.config import SettingsError, load_client_settings
from hodei.domain import exitcodes
from hodei.domain.jobs import Job, JobSpec, Resources, SpecError
from hodei.domain.logs import LogStream
from hodei.domain.quantities import QuantityError, validate_quantity
from hodei.domain.states import JobState

__all__ = [
    "exit_code_for",
    "follow_job",
    "outcome_note",
    "run_command",
    "spec_from_args",
    "with_reconnects",
]

CANCEL_WAIT = 10.0  # how long Ctrl-C waits for the cancelled job to end
RECONNECT_FOR = 60.0  # how long an unreachable control plane may take to come back
T = TypeVar("T")


class UsageError(Exception):
    """A flag value that cannot be used; the message names the flag."""


def parse_pairs(values: Sequence[str] | None, flag: str) -> dict[str, str]:
    """``K=V`` strings as a dict; a value may itself contain ``=``."""
    pairs: dict[str, str] = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag}: {item!r} is not KEY=VALUE")
        pairs[key] = value
    return pairs


def _quantity(value: str | None, flag: str) -> str | None:
    if value is None:
        return None
    try:
        return validate_quantity(value)
    except QuantityError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def spec_from_args(args: argparse.Namespace) -> JobSpec:
    """The job spec the flags describe; raises :class:`UsageError` or :class:`SpecError`.

    ``--cpu``/``--memory`` set both request and limit: the job gets what it asked for.
    """
    command = list(args.command or ())
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("missing command: hodei run [FLAGS] -- CMD [ARG...]")
    cpu = _quantity(args.cpu, "--cpu")
    memory = _quantity(args.memory, "--memory")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout: {args.timeout} must be a number of seconds > 0")
    spec = JobSpec(
        command=tuple(command),
        env=parse_pairs(args.env, "--env"),
        image=args.image,
        resources=Resources(
            cpu_request=cpu, cpu_limit=cpu, memory_request=memory, memory_limit=memory
        ),
        timeout_seconds=args.timeout,
        labels=parse_pairs(args.label, "--label"),
        max_attempts=args.max_attempts,
        provider=args.provider,
    )
    return spec.validated()


def exit_code_for(job: Job) -> int:
    """What ``hodei run`` exits with for a finished job (:func:`exitcodes.exit_code_for`)."""
    return exitcodes.exit_code_for(job.state, job.reason, job.exit_code)


def outcome_note(job: Job) -> str | None:
    """A line for stderr when the exit code alone would not explain what happened."""
    if job.state is JobState.SUCCEEDED or job.reason == "NonZeroExit":
        return None
    detail = f"{job.reason}: {job.message}" if job.message else (job.reason or "")
    return f"hodei: job {job.id} {job.state.value}" + (f" ({detail})" if detail else "")


def waiting_text(update: JobUpdate) -> str:
    state = update.job.state.value.lower()
    return f"{update.job.id} {state}: {update.waiting_reason or 'waiting for a worker'}"


class _Output:
    """The job's bytes to our stdout/stderr.

    When our stdout is closed by its reader (``hodei run -- yes | head``), ``broken`` is
    set: like a local command killed by SIGPIPE, the job is then cancelled.
    """

    def __init__(self, stdout: BinaryIO, stderr: BinaryIO) -> None:
        self._streams = {LogStream.STDOUT: stdout, LogStream.STDERR: stderr}
        self._closed: set[LogStream] = set()
        self.broken = asyncio.Event()

    def write(self, stream: LogStream, data: bytes) -> None:
        if stream in self._closed:
            return
        target = self._streams[stream]
        try:
            target.write(data)
            target.flush()
        except BrokenPipeError:
            self._closed.add(stream)
            if stream is LogStream.STDOUT:
                self.broken.set()


async def with_reconnects(
    attempt: Callable[[], Awaitable[T]],
    *,
    progress: list[int],
    give_up_after: float = RECONNECT_FOR,
) -> T:
    """Run ``attempt`` again while the control plane is unreachable (it may be restarting).

    Gives up after ``give_up_after`` seconds without ``progress`` (a counter the attempt bumps
    whenever it receives something), so a control plane that stays away still ends the
    command with the unreachable error.
    """
    delay, seen, lost_since = 0.1, progress[0], time.monotonic()
    while True:
        try:
            return await attempt()
        except ClientError as exc:
            if not exc.unreachable:
                raise
            if progress[0] != seen:
                seen, lost_since, delay = progress[0], time.monotonic(), 0.1
            if time.monotonic() - lost_since > give_up_after:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _copy_logs(client: HodeiClient, job_id: str, out: _Output, spinner: Spinner) -> None:
    last = 0
    progress = [0]

    async def attempt() -> None:
        nonlocal last
        async for chunk in client.logs(job_id, follow=True, from_sequence=last + 1):
            spinner.stop()
            out.write(chunk.stream, chunk.data)
            last = chunk.sequence
            progress[0] += 1

    await with_reconnects(attempt, progress=progress)


async def _watch(client: HodeiClient, job_id: str, spinner: Spinner) -> Job:
    progress = [0]

    async def attempt() -> Job:
        last: Job | None = None
        async for update in client.watch(job_id):
            progress[0] += 1
            last = update.job
            if update.job.state in (JobState.QUEUED, JobState.STARTING):
                spinner.show(waiting_text(update))
            else:
                spinner.stop()
            if update.job.state.terminal:
                return update.job
        return last if last is not None and last.state.terminal else await client.get(job_id)

    return await with_reconnects(attempt, progress=progress)


async def follow_job(client: HodeiClient, job_id: str, out: _Output, spinner: Spinner) -> int:
    """Stream the job until it ends (Ctrl-C or a closed stdout cancel it); the exit code."""
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, interrupted.set)
    logs = asyncio.create_task(_copy_logs(client, job_id, out, spinner))
    watch = asyncio.create_task(_watch(client, job_id, spinner))
    interrupt = asyncio.create_task(interrupted.wait())
    broken = asyncio.create_task(out.broken.wait())
    try:
        await asyncio.wait({watch, interrupt, logs, broken}, return_when=asyncio.FIRST_COMPLETED)
        if logs.done() and logs.exception() is not None:
            logs.result()
        if interrupt.done() or broken.done():
            spinner.stop()
            if interrupt.done():
                print(f"hodei: interrupted; cancelling job {job_id}", file=sys.stderr)
            await _cancel_and_wait(client, job_id, watch)
            return exitcodes.INTERRUPTED if interrupt.done() else exitcodes.BROKEN_PIPE
        job = await watch
        await asyncio.wait_for(logs, CANCEL_WAIT)
        note = outcome_note(job)
        if note:
            print(note, file=sys.stderr)
        return exit_code_for(job)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        spinner.stop()
        for task in (logs, watch, interrupt, broken):
            task.cancel()
        await asyncio.gather(logs, watch, interrupt, broken, return_exceptions=True)


async def _cancel_and_wait(client: HodeiClient, job_id: str, watch: asyncio.Task[Job]) -> None:
    """Cancel the job and give it CANCEL_WAIT seconds to end (its processes killed)."""
    with contextlib.suppress(ClientError):
        await client.cancel(job_id)
    with contextlib.suppress(ClientError, TimeoutError):
        await asyncio.wait_for(asyncio.shield(watch), CANCEL_WAIT)


async def _submit_and_follow(
    args: argparse.Namespace, address: str, env_name: str, token: str | None
) -> int:
    spec = spec_from_args(args)
    async with HodeiClient(address, api_token=token, env_name=env_name) as client:
        try:
            job = await client.submit(spec)
        except ClientError as exc:
            print(f"hodei: {exc}", file=sys.stderr)
            return exitcodes.HODEI_FAILURE
        if args.detach:
            print(job.id)
            return 0
        spinner = Spinner(sys.stderr, enabled=sys.stderr.isatty())
        out = _Output(sys.stdout.buffer, sys.stderr.buffer)
        try:
            return await follow_job(client, job.id, out, spinner)
        except ClientError as exc:
            print(f"hodei: {exc}", file=sys.stderr)
            return exitcodes.HODEI_FAILURE


async def run_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``hodei run``: against HODEI_SERVER, or an embedded control plane when it is unset."""
    try:
        settings = load_client_settings(env)
        spec_from_args(args)  # refuse bad flags before starting anything
    except (SettingsError, UsageError, SpecError) as exc:
        print(f"hodei run: {exc}", file=sys.stderr)
        return exitcodes.HODEI_FAILURE
    if settings.server is not None:
        return await _submit_and_follow(args, settings.server, "HODEI_SERVER", settings.api_token)
    if args.detach:
        print(
            "hodei run: --detach needs a control plane that outlives this command: "
            "start `hodei server` and set HODEI_SERVER",
            file=sys.stderr,
        )
        return exitcodes.HODEI_FAILURE
    from hodei.cli.embedded import EmbeddedStartError, embedded_control_plane

    try:
        async with embedded_control_plane(env) as address:
            return await _submit_and_follow(args, address, "", None)
    except SettingsError as exc:
        print(f"hodei run: {exc}", file=sys.stderr)
        return exitcodes.HODEI_FAILURE
    except EmbeddedStartError as exc:
        print(f"hodei run: cannot start the embedded control plane: {exc}", file=sys.stderr)
        return exitcodes.HODEI_FAILURE

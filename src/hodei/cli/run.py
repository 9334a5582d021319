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
import os
import sys
from collections.abc import Mapping, Sequence

from hodei.cli.client import ClientError, HodeiClient
from hodei.cli.follow import (
    ControlPlaneLink,
    Output,
    StopSignals,
    copy_logs,
    exit_code_for,
    outcome_note,
    say,
    wait_for_end,
)
from hodei.cli.spinner import Spinner
from hodei.cli.terminal import input_stream, raw_mode, terminal_size
from hodei.config import SettingsError, load_client_settings
from hodei.config.settings import ClientTls
from hodei.domain import exitcodes
from hodei.domain.jobs import Job, JobSpec, Resources, SecretKeyRef, SpecError
from hodei.domain.quantities import QuantityError, validate_quantity
from hodei.domain.states import JobState

__all__ = ["follow_job", "parse_env", "run_command", "spec_from_args"]

CANCEL_WAIT = 10.0  # how long a stopped command waits for the cancelled job to end


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


def parse_env(values: Sequence[str] | None, client_env: Mapping[str, str]) -> dict[str, str]:
    """``--env K=V`` and ``--env NAME`` as a dict.

    A bare ``NAME`` passes the client's own value, as ``docker run -e NAME`` does; like
    docker, a NAME the client does not have is left out rather than set empty.
    """
    env: dict[str, str] = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"--env: {item!r} is neither NAME=VALUE nor NAME")
        if sep:
            env[key] = value
        elif key in client_env:
            env[key] = client_env[key]
    return env


def parse_secret_env(values: Sequence[str] | None) -> dict[str, SecretKeyRef]:
    """``NAME=SECRET:KEY`` strings as references; the Secret's value is never read here."""
    refs: dict[str, SecretKeyRef] = {}
    for item in values or ():
        name, sep, ref = item.partition("=")
        secret, colon, key = ref.partition(":")
        if not sep or not name or not colon or not secret or not key:
            raise UsageError(f"--secret-env: {item!r} is not NAME=SECRET:KEY")
        refs[name] = SecretKeyRef(secret, key)
    return refs


def _quantity(value: str | None, flag: str) -> str | None:
    if value is None:
        return None
    try:
        return validate_quantity(value)
    except QuantityError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def spec_from_args(args: argparse.Namespace, client_env: Mapping[str, str]) -> JobSpec:
    """The job spec the flags describe; raises :class:`UsageError` or :class:`SpecError`.

    ``--cpu``/``--memory`` set both request and limit: the job gets what it asked for.
    ``client_env`` is the environment of ``hodei run`` (for ``--env NAME``).
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
    if args.workdir is not None and not args.workdir.startswith("/"):
        raise UsageError(f"--workdir: {args.workdir!r} is not an absolute path")
    env = parse_env(args.env, client_env)
    if args.tty:  # programs read TERM to know what the terminal understands
        env.setdefault("TERM", client_env.get("TERM") or "xterm")
    spec = JobSpec(
        command=tuple(command),
        env=env,
        image=args.image,
        resources=Resources(
            cpu_request=cpu, cpu_limit=cpu, memory_request=memory, memory_limit=memory
        ),
        timeout_seconds=args.timeout,
        labels=parse_pairs(args.label, "--label"),
        max_attempts=args.max_attempts,
        provider=args.provider,
        profile=args.profile,
        secret_env=parse_secret_env(args.secret_env),
        stdin=args.interactive,
        tty=args.tty,
        tty_size=terminal_size(0, 1) if args.tty else None,
        workdir=args.workdir,
    )
    return spec.validated()


def waiting_text(job: Job) -> str:
    state = job.state.value.lower()
    return f"{job.id} {state}: {job.waiting_reason or 'waiting for a worker'}"


async def follow_job(
    client: HodeiClient, job_id: str, out: Output, spinner: Spinner, stop: StopSignals
) -> int:
    """Stream the job until it ends; a stop signal or a closed stdout cancels it.

    Returns the exit code: the table's code for the job, 128+N for signal N, 141 when
    stdout's reader went away.
    """
    link = ControlPlaneLink(client.address)

    def on_change(job: Job) -> None:
        if job.state in (JobState.QUEUED, JobState.STARTING):
            spinner.show(waiting_text(job))
        else:
            spinner.stop()

    logs = asyncio.create_task(copy_logs(client, job_id, out, link=link, on_output=spinner.stop))
    watch = asyncio.create_task(wait_for_end(client, job_id, link=link, on_change=on_change))
    stopped = asyncio.create_task(stop.fired.wait())
    broken = asyncio.create_task(out.broken.wait())
    try:
        await asyncio.wait({watch, stopped, logs, broken}, return_when=asyncio.FIRST_COMPLETED)
        if logs.done() and logs.exception() is not None:
            logs.result()
        if stopped.done() or broken.done():
            spinner.stop()
            if stopped.done():
                say(f"hodei: {stop.name} received; cancelling job {job_id}")
            await _cancel_and_wait(client, job_id, watch)
            return stop.exit_code if stopped.done() else exitcodes.BROKEN_PIPE
        job = await watch
        await asyncio.wait_for(logs, CANCEL_WAIT)
        note = outcome_note(job)
        if note:
            say(note)
        return exit_code_for(job)
    finally:
        spinner.stop()
        for task in (logs, watch, stopped, broken):
            task.cancel()
        await asyncio.gather(logs, watch, stopped, broken, return_exceptions=True)


async def _cancel_and_wait(client: HodeiClient, job_id: str, watch: asyncio.Task[Job]) -> None:
    """Cancel the job and give it CANCEL_WAIT seconds to end (its processes killed)."""
    with contextlib.suppress(ClientError):
        await client.cancel(job_id)
    with contextlib.suppress(ClientError, TimeoutError):
        await asyncio.wait_for(asyncio.shield(watch), CANCEL_WAIT)


async def _submit_and_follow(
    spec: JobSpec,
    *,
    detach: bool,
    address: str,
    env_name: str,
    token: str | None,
    stop: StopSignals,
    tls: ClientTls | None = None,
) -> int:
    try:
        client = HodeiClient(address, api_token=token, env_name=env_name, tls=tls)
    except ClientError as exc:  # an unreadable HODEI_TLS_* file
        say(f"hodei run: {exc}")
        return exitcodes.HODEI_FAILURE
    async with client:
        try:
            job = await client.submit(spec)
        except ClientError as exc:
            say(f"hodei: {exc}")
            return exitcodes.HODEI_FAILURE
        if detach:
            print(job.id, flush=True)
            return exitcodes.SUCCESS
        spinner = Spinner(sys.stderr, enabled=sys.stderr.isatty())
        out = Output(sys.stdout.buffer, sys.stderr.buffer)
        sender = _start_input(client, job)
        # -it on a terminal: every key goes to the job's own terminal, ^C included.
        raw = spec.tty and spec.stdin and os.isatty(0)
        try:
            with raw_mode(0) if raw else contextlib.nullcontext():
                return await follow_job(client, job.id, out, spinner, stop)
        except ClientError as exc:
            say(f"hodei: {exc}")
            return exitcodes.HODEI_FAILURE
        finally:
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)


def _start_input(client: HodeiClient, job: Job) -> asyncio.Task[None] | None:
    """Stream our stdin (-i) and window size changes (-t on a terminal) to the job."""
    stdin_fd = 0 if job.spec.stdin else None
    resize_fd = next((fd for fd in (0, 1) if os.isatty(fd)), None) if job.spec.tty else None
    if stdin_fd is None and resize_fd is None:
        return None

    async def send() -> None:
        items = input_stream(job.id, stdin_fd=stdin_fd, resize_fd=resize_fd)
        try:
            await client.send_input(items)
        except ClientError as exc:
            say(f"hodei: the job's input stopped: {exc}")

    return asyncio.create_task(send())


async def run_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``hodei run``: against HODEI_SERVER, or an embedded control plane when it is unset.

    SIGINT, SIGTERM and SIGHUP are handled from the start: once the job exists it is
    cancelled, and in embedded mode the control plane and every worker it started are
    stopped before the command exits 128+N.
    """
    try:
        settings = load_client_settings(env)
        spec = spec_from_args(args, env)  # refuse bad flags before starting anything
    except (SettingsError, UsageError, SpecError) as exc:
        say(f"hodei run: {exc}")
        return exitcodes.HODEI_FAILURE
    with StopSignals() as stop:
        if settings.server is not None:
            return await _submit_and_follow(
                spec,
                detach=args.detach,
                address=settings.server,
                env_name="HODEI_SERVER",
                token=settings.api_token,
                stop=stop,
                tls=settings.tls,
            )
        if args.detach:
            say(
                "hodei run: --detach needs a control plane that outlives this command: "
                "start `hodei server` and set HODEI_SERVER"
            )
            return exitcodes.HODEI_FAILURE
        return await _run_embedded(spec, env, stop)


async def _run_embedded(spec: JobSpec, env: Mapping[str, str], stop: StopSignals) -> int:
    from hodei.cli.embedded import EmbeddedStartError, embedded_control_plane

    try:
        async with contextlib.AsyncExitStack() as stack:
            address = await stop.race(stack.enter_async_context(embedded_control_plane(env)))
            if address is None:
                return stop.exit_code
            return await _submit_and_follow(
                spec, detach=False, address=address, env_name="", token=None, stop=stop
            )
    except SettingsError as exc:
        say(f"hodei run: {exc}")
        return exitcodes.HODEI_FAILURE
    except EmbeddedStartError as exc:
        say(f"hodei run: cannot start the embedded control plane: {exc}")
        return exitcodes.HODEI_FAILURE

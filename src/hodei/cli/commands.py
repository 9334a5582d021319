"""``hodei jobs list|show|logs|cancel`` and ``hodei workers list``: read and act on a server.

They talk to ``HODEI_SERVER`` (default ``127.0.0.1:50051``, where ``hodei server``
listens). Tables for people; ``-o json`` for machines. Any failure prints one line on
stderr and exits 125 (:data:`hodei.domain.exitcodes.HODEI_FAILURE`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from hodei.api import shapes
from hodei.cli import output
from hodei.cli.client import ClientError, HodeiClient
from hodei.config import SettingsError, load_client_settings
from hodei.domain import exitcodes
from hodei.domain.logs import LogStream
from hodei.domain.states import JobState

__all__ = ["jobs_cancel", "jobs_list", "jobs_logs", "jobs_show", "with_client", "workers_list"]

DEFAULT_SERVER = "127.0.0.1:50051"

Command = Callable[[HodeiClient, argparse.Namespace], Awaitable[int]]


async def with_client(command: Command, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run ``command`` with a client of HODEI_SERVER; errors become one line on stderr."""
    try:
        settings = load_client_settings(env)
    except SettingsError as exc:
        print(f"hodei: {exc}", file=sys.stderr)
        return exitcodes.HODEI_FAILURE
    address = settings.server or DEFAULT_SERVER
    env_name = "HODEI_SERVER" if settings.server else "HODEI_SERVER unset, default"
    async with HodeiClient(address, api_token=settings.api_token, env_name=env_name) as client:
        try:
            return await command(client, args)
        except ClientError as exc:
            print(f"hodei: {exc}", file=sys.stderr)
            return exitcodes.HODEI_FAILURE


def _now() -> datetime:
    return datetime.now(UTC)


async def jobs_list(client: HodeiClient, args: argparse.Namespace) -> int:
    """``hodei jobs list [--state S]... [--limit N]``, newest first."""
    states = [JobState(s) for s in args.state or ()]
    jobs = await client.list_jobs(states, limit=args.limit)
    if args.output == "json":
        print(output.to_json([shapes.job_dict(job) for job in jobs]))
    else:
        print(output.jobs_table(jobs, _now()))
    return 0


async def jobs_show(client: HodeiClient, args: argparse.Namespace) -> int:
    """``hodei jobs show ID``: every field of one job."""
    job = await client.get(args.id)
    print(
        output.to_json(shapes.job_dict(job)) if args.output == "json" else output.job_details(job)
    )
    return 0


async def jobs_cancel(client: HodeiClient, args: argparse.Namespace) -> int:
    """``hodei jobs cancel ID``: the job as the server left it (a running job ends shortly)."""
    job = await client.cancel(args.id)
    if args.output == "json":
        print(output.to_json(shapes.job_dict(job)))
    elif job.state.terminal:
        print(f"job {job.id} {job.state.value}")
    else:  # the agent is killing the job's processes; the state follows shortly
        print(f"job {job.id} cancelling (was {job.state.value})")
    return 0


async def jobs_logs(client: HodeiClient, args: argparse.Namespace) -> int:
    """The job's stdout to stdout and stderr to stderr, exactly as stored."""
    await client.get(args.id)  # a clear "not found" before streaming
    targets = {LogStream.STDOUT: sys.stdout.buffer, LogStream.STDERR: sys.stderr.buffer}
    async for chunk in client.logs(args.id, follow=args.follow):
        target = targets[chunk.stream]
        target.write(chunk.data)
        target.flush()
    return 0


async def workers_list(client: HodeiClient, args: argparse.Namespace) -> int:
    """``hodei workers list``: active workers with provider, state, process or pod, age."""
    workers = await client.list_workers()
    if args.output == "json":
        print(output.to_json([shapes.worker_dict(w) for w in workers]))
    else:
        print(output.workers_table(workers, _now()))
    return 0

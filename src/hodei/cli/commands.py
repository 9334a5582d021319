"""``hodei jobs list|show|logs|wait|cancel`` and ``hodei workers list``: read and act on a server.

They talk to ``HODEI_SERVER``; without it they read the default job store in place,
where embedded ``hodei run`` records its jobs (:mod:`hodei.cli.history`). Tables for
people; ``-o json`` for machines. Any failure prints one line on
stderr and exits 125 (:data:`hodei.domain.exitcodes.HODEI_FAILURE`).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from hodei.api import shapes
from hodei.cli import output
from hodei.cli.client import ClientError, HodeiClient
from hodei.cli.follow import (
    ControlPlaneLink,
    Output,
    copy_logs,
    exit_code_for,
    outcome_note,
    say,
    wait_for_end,
)
from hodei.cli.history import HistoryReader, history_store
from hodei.cli.run import parse_pairs
from hodei.config import SettingsError, load_client_settings
from hodei.domain import exitcodes
from hodei.domain.jobs import Job
from hodei.domain.states import JobState

__all__ = [
    "jobs_cancel",
    "jobs_list",
    "jobs_logs",
    "jobs_show",
    "jobs_wait",
    "with_client",
    "workers_list",
]

ALL_JOBS = 1_000_000  # --limit 0: every job, fetched page by page
# A control plane, or (without HODEI_SERVER) the job store read in place.
Source = HodeiClient | HistoryReader
Command = Callable[[Source, argparse.Namespace], Awaitable[int]]


async def with_client(command: Command, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run ``command`` against HODEI_SERVER or, unset, the default job store (where
    embedded runs are recorded); errors become one line on stderr and exit 125."""
    try:
        settings = load_client_settings(env)
        source: Source
        if settings.server is None:
            found = history_store(env)
            if found is None:
                say("hodei: HODEI_DATABASE_URL keeps no jobs (in memory); set HODEI_SERVER")
                return exitcodes.HODEI_FAILURE
            source = HistoryReader(*found)
        else:
            source = HodeiClient(
                settings.server,
                api_token=settings.api_token,
                env_name="HODEI_SERVER",
                tls=settings.tls,
            )
        async with source:
            return await command(source, args)
    except (SettingsError, ClientError) as exc:
        say(f"hodei: {exc}")
        return exitcodes.HODEI_FAILURE


def _now() -> datetime:
    return datetime.now(UTC)


def _terminal_width() -> int | None:
    """Columns of the terminal stdout shows on (``COLUMNS`` first); None for a pipe or a
    file, which get whole lines."""
    return shutil.get_terminal_size((0, 0)).columns or None


async def jobs_list(client: Source, args: argparse.Namespace) -> int:
    """``hodei jobs list [--state S]... [-l K=V]... [--limit N] [-o table|wide|json]``,
    newest first; a note on stderr when ``--limit`` left older jobs out."""
    states = [JobState(s) for s in args.state or ()]
    labels = parse_pairs(args.selector, "-l/--selector")
    limit = args.limit if args.limit > 0 else ALL_JOBS
    jobs = await client.list_jobs(states, limit=limit + 1, labels=labels)
    more = len(jobs) > limit
    jobs = jobs[:limit]
    if args.output == "json":
        print(output.to_json([shapes.job_dict(job) for job in jobs]))
    else:
        wide = args.output == "wide"  # every column, whole
        width = None if wide else _terminal_width()
        print(output.jobs_table(jobs, _now(), wide=wide, width=width))
    if more:
        say(f"hodei: the newest {limit} jobs; --limit N shows more, --limit 0 all")
    return 0


async def jobs_show(client: Source, args: argparse.Namespace) -> int:
    """``hodei jobs show ID``: every field of one job."""
    job = await client.get(args.id)
    print(
        output.to_json(shapes.job_dict(job)) if args.output == "json" else output.job_details(job)
    )
    return 0


async def jobs_cancel(client: Source, args: argparse.Namespace) -> int:
    """``hodei jobs cancel ID``: the job as the server left it (a running job ends shortly)."""
    job = await client.cancel(args.id)
    if args.output == "json":
        print(output.to_json(shapes.job_dict(job)))
    elif job.state.terminal:
        print(f"job {job.id} {job.state.value}")
    else:  # the agent is killing the job's processes; the state follows shortly
        print(f"job {job.id} cancelling (was {job.state.value})")
    return 0


async def jobs_logs(client: Source, args: argparse.Namespace) -> int:
    """The job's stdout to stdout and stderr to stderr, exactly as stored.

    With ``-f`` it follows the job until it ends (across control-plane restarts) and
    exits as ``hodei run`` would have for it; without, it exits 0.
    """
    await client.get(args.id)  # a clear "not found" before streaming
    out = Output(sys.stdout.buffer, sys.stderr.buffer)
    if not args.follow:
        async for chunk in client.logs(args.id):
            out.write(chunk.stream, chunk.data)
        return exitcodes.SUCCESS
    link = ControlPlaneLink(client.address)
    await copy_logs(client, args.id, out, link=link)
    job = await wait_for_end(client, args.id, link=link)
    return _finished(job)


def _finished(job: Job) -> int:
    note = outcome_note(job)
    if note:
        say(note)
    return exit_code_for(job)


async def jobs_wait(client: Source, args: argparse.Namespace) -> int:
    """``hodei jobs wait ID...``: block until every job has ended; one line per job on
    stdout (``ID STATE EXIT``) and the exit code ``hodei run`` would give the last one."""
    for job_id in args.ids:
        await client.get(job_id)  # every id must exist before waiting on any
    link = ControlPlaneLink(client.address)
    jobs = await asyncio.gather(*(wait_for_end(client, i, link=link) for i in args.ids))
    if args.output == "json":
        print(output.to_json([shapes.job_dict(job) for job in jobs]))
    else:
        for job in jobs:
            print(f"{job.id} {job.state.value} {exit_code_for(job)}")
    for job in jobs[:-1]:
        note = outcome_note(job)
        if note:
            say(note)
    return _finished(jobs[-1])


async def workers_list(client: Source, args: argparse.Namespace) -> int:
    """``hodei workers list``: active workers with provider, state, process or pod, age."""
    workers = await client.list_workers()
    if args.output == "json":
        print(output.to_json([shapes.worker_dict(w) for w in workers]))
    else:
        print(output.workers_table(workers, _now(), width=_terminal_width()))
    return 0

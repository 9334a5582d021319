"""Embedded runs are recorded in the default store, and ``hodei jobs`` reads it in place."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hodei.cli.client import ClientError
from hodei.cli.history import HistoryReader, record_jobs
from hodei.domain.ids import JobId
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.states import JobState
from hodei.store.memory import MemoryStore
from tests.fixtures.cli import clean_env, hodei

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def job(n: int, state: JobState) -> Job:
    return Job(JobId(f"j-{n}"), JobSpec(command=("echo", str(n))), state, T0)


async def test_finished_jobs_are_copied_with_all_their_output() -> None:
    source, target = MemoryStore(), MemoryStore()
    done, running = job(1, JobState.SUCCEEDED), job(2, JobState.RUNNING)
    chunks = [LogChunk(done.id, i, LogStream.STDOUT, bytes([i % 256])) for i in range(1, 2501)]
    for item in (done, running):
        await source.save_job(item)
    await source.append_logs(chunks)
    assert await record_jobs(source, target) == 1
    assert await target.get_job(done.id) == done
    assert await target.get_job(running.id) is None  # unfinished: nothing true to keep
    assert await target.read_logs(done.id, limit=5000) == chunks


async def test_the_reader_refuses_what_needs_a_control_plane() -> None:
    store = MemoryStore()
    await store.save_job(job(3, JobState.RUNNING))
    async with HistoryReader(store, "/data/hodei.db") as reader:
        assert (await reader.get("j-3")).state is JobState.RUNNING
        with pytest.raises(ClientError, match="set HODEI_SERVER") as info:
            await reader.cancel("j-3")
        assert info.value.code == "FAILED_PRECONDITION"
        with pytest.raises(ClientError, match="waiting for it needs the control plane"):
            [j async for j in reader.watch("j-3")]
        with pytest.raises(ClientError, match=r"'j-9' not found in /data/hodei\.db"):
            await reader.get("j-9")


@pytest.mark.slow
def test_embedded_runs_are_listed_shown_and_read_without_a_server(tmp_path: Path) -> None:
    env = clean_env(XDG_DATA_HOME=str(tmp_path))
    first = hodei(
        "run", "--label", "team=a", "--", "sh", "-c", "echo out; echo err >&2; exit 3", env=env
    )
    second = hodei("run", "--", "true", env=env)
    assert (first.returncode, second.returncode) == (3, 0)
    assert (tmp_path / "hodei" / "hodei.db").is_file()  # the user's data directory

    listed = json.loads(hodei("jobs", "list", "-o", "json", env=env).stdout)
    assert [j["state"] for j in listed] == ["SUCCEEDED", "FAILED"]  # newest first
    failed = listed[1]["id"]
    shown = json.loads(hodei("jobs", "show", failed, "-o", "json", env=env).stdout)
    assert (shown["exit_code"], shown["labels"]) == (3, {"team": "a"})
    logs = hodei("jobs", "logs", failed, env=env)
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, b"out\n", b"err\n")
    assert hodei("jobs", "wait", failed, env=env).returncode == 3
    assert hodei("jobs", "logs", "-f", failed, env=env).returncode == 3
    missing = hodei("jobs", "show", "j-nothere", env=env)
    assert missing.returncode == 125 and b"not found in" in missing.stderr


@pytest.mark.slow
def test_a_reader_that_leaves_early_ends_the_listing_quietly(tmp_path: Path) -> None:
    """``hodei jobs list | head -1``: exit 141 as a shell reports SIGPIPE, no traceback."""
    import asyncio
    import subprocess

    from hodei.store.sqlite import SqliteStore

    database = tmp_path / "jobs.db"

    async def fill() -> None:
        store = SqliteStore(database)
        await store.open()
        for n in range(6000):  # some 300 KB of table: more than a pipe and head take
            await store.save_job(job(n, JobState.SUCCEEDED))
        await store.close()

    asyncio.run(fill())
    env = clean_env(HODEI_DATABASE_URL=f"sqlite:///{database}")
    command = 'python3 -m hodei jobs list --limit 0 | head -1; echo " ${PIPESTATUS[0]}"'
    result = subprocess.run(
        ["bash", "-c", command.replace("python3", sys.executable)],
        env=env,
        capture_output=True,
        timeout=60,
    )
    header, status = result.stdout.decode().splitlines()
    assert header.split() == ["ID", "STATE", "EXIT", "REASON", "AGE", "COMMAND"]
    assert status == " 141", result.stderr
    assert result.stderr == b""

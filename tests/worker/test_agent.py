"""The agent against a scripted control plane over real gRPC, with real job processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hodei.api.v1 import types_pb2, worker_pb2
from hodei.config import WorkerSettings
from hodei.worker.agent import (
    EXIT_DELIVERED,
    EXIT_REJECTED,
    EXIT_UNREACHABLE,
    Agent,
    AgentOptions,
)
from tests.worker.fake_control_plane import JOB_ID, TOKEN, WORKER_ID, Script, fake_control_plane

STDOUT, STDERR = types_pb2.STDOUT, types_pb2.STDERR


def _fast_backoff() -> Iterator[float]:
    while True:
        yield 0.02


OPTIONS = AgentOptions(give_up_after=5.0, kill_grace=0.5, drain_timeout=0.2, backoff=_fast_backoff)


def shell(script: str, timeout: float = 0.0) -> types_pb2.JobSpec:
    return types_pb2.JobSpec(shell=script, timeout_seconds=timeout)


def agent_for(address: str, options: AgentOptions = OPTIONS) -> Agent:
    return Agent(WorkerSettings(address, WORKER_ID, TOKEN), options=options)


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs a moment after being killed (signals land asynchronously).

    A zombie waiting for a parent that no longer reaps does not count as running.
    """
    deadline = time.monotonic() + 5
    while True:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                running = stat.read().rpartition(")")[2].split()[0] != "Z"
        except FileNotFoundError:
            running = False
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.01)


async def test_runs_the_job_and_reports_output_and_exit_code() -> None:
    script = Script(shell("echo out; echo err >&2; exit 3"))
    async with fake_control_plane(script) as (service, address):
        code = await agent_for(address).run()
    record = service.record
    assert code == EXIT_DELIVERED
    assert record.registers[0].token == TOKEN
    assert record.first_message_after_register == ["started"]
    assert record.output(STDOUT) == b"out\n"
    assert record.output(STDERR) == b"err\n"
    assert record.acked_result is not None
    assert record.acked_result.exit_code == 3
    assert record.acked_result.last_sequence == len(record.chunks)


async def test_output_is_bytes_exactly_without_newlines_or_utf8() -> None:
    payload = b"\xff\xfe no newline \x00\x80"
    script = Script(types_pb2.JobSpec(command=[sys.executable, "-c", _writer(payload)]))
    async with fake_control_plane(script) as (service, address):
        assert await agent_for(address).run() == EXIT_DELIVERED
    assert service.record.output(STDOUT) == payload
    assert service.record.output(STDERR) == payload[::-1]


def _writer(payload: bytes) -> str:
    return (
        "import sys;"
        f"sys.stdout.buffer.write({payload!r}); sys.stdout.flush();"
        f"sys.stderr.buffer.write({payload[::-1]!r})"
    )


async def test_large_output_is_batched_and_complete() -> None:
    size = 8 * 1024 * 1024
    script = Script(shell(f"head -c {size} /dev/zero | tr '\\0' x"))
    async with fake_control_plane(script) as (service, address):
        assert await agent_for(address).run() == EXIT_DELIVERED
    record = service.record
    assert record.output(STDOUT) == b"x" * size
    assert record.sequences_complete()
    assert record.acked_result is not None
    assert record.acked_result.last_sequence == max(record.chunks)
    assert not record.late_batches
    assert record.batches <= size // (32 * 1024) + 2


async def test_a_small_window_pauses_the_job_without_losing_output() -> None:
    options = AgentOptions(
        max_batch_bytes=16 * 1024, max_message_bytes=16 * 1024, window_bytes=32 * 1024
    )
    size = 2 * 1024 * 1024
    script = Script(shell(f"head -c {size} /dev/urandom | od -An -v | head -c {size}"))
    async with fake_control_plane(script) as (service, address):
        assert await agent_for(address, options).run() == EXIT_DELIVERED
    assert len(service.record.output(STDOUT)) == size
    assert service.record.sequences_complete()


async def test_timeout_kills_the_process_group() -> None:
    script = Script(shell("sleep 60 & echo $!; sleep 60", timeout=0.5))
    async with fake_control_plane(script) as (service, address):
        assert await agent_for(address).run() == EXIT_DELIVERED
    result = service.record.acked_result
    assert result is not None and result.timed_out and not result.cancelled
    assert result.exit_code == 128 + 15
    background = int(service.record.output(STDOUT))
    assert not alive(background)


async def test_cancel_kills_the_process_group() -> None:
    # Cancelled once the background PID has been printed, so the test can look for it.
    script = Script(shell("sleep 60 & echo $!; wait"), cancel_after_output=True)
    async with fake_control_plane(script) as (service, address):
        assert await agent_for(address).run() == EXIT_DELIVERED
    result = service.record.acked_result
    assert result is not None and result.cancelled and not result.timed_out
    assert not alive(int(service.record.output(STDOUT)))


async def test_a_process_that_escaped_the_group_does_not_hold_the_job_open() -> None:
    script = Script(shell("setsid sleep 30 & echo $!"))
    async with fake_control_plane(script) as (service, address):
        assert await agent_for(address).run() == EXIT_DELIVERED
    escaped = int(service.record.output(STDOUT))
    os.kill(escaped, signal.SIGKILL)  # it left the job's group and session: clean up here
    result = service.record.acked_result
    assert result is not None and result.exit_code == 0


async def test_command_not_found_is_reported_as_start_error() -> None:
    script = Script(types_pb2.JobSpec(command=["/nonexistent/hodei-test-command"]))
    async with fake_control_plane(script) as (service, address):
        assert await agent_for(address).run() == EXIT_DELIVERED
    result = service.record.acked_result
    assert result is not None and result.exit_code == 127
    assert "command not found" in result.error
    assert result.start_failure == worker_pb2.START_FAILURE_COMMAND_NOT_FOUND
    assert not service.record.started


async def test_a_command_that_cannot_execute_is_sent_as_its_kind(tmp_path: Path) -> None:
    script_file = tmp_path / "not-executable"
    script_file.write_text("#!/bin/sh\necho hi\n")
    script = Script(types_pb2.JobSpec(command=[str(script_file)]))
    async with fake_control_plane(script) as (service, address):
        assert await agent_for(address).run() == EXIT_DELIVERED
    result = service.record.acked_result
    assert result is not None and result.exit_code == 126
    assert result.start_failure == worker_pb2.START_FAILURE_NOT_EXECUTABLE


async def test_unacked_logs_are_resent_after_a_reconnect() -> None:
    script = Script(
        shell("for i in 1 2 3 4 5; do echo line $i; sleep 0.1; done"), drop_after_batches=2
    )
    async with fake_control_plane(script) as (service, address):
        assert await agent_for(address).run() == EXIT_DELIVERED
    record = service.record
    assert [r.resume_token for r in record.registers] == ["", "resume-1"]
    assert record.output(STDOUT) == b"".join(f"line {i}\n".encode() for i in range(1, 6))
    assert record.sequences_complete()
    # JobStarted is repeated on the new stream (the server may have lost it) but the job
    # was not started again: same process.
    assert len({started.pid for started in record.started}) == 1


async def test_result_is_sent_again_until_acknowledged() -> None:
    script = Script(shell("echo done; exit 7"), drop_first_result=True)
    async with fake_control_plane(script) as (service, address):
        assert await agent_for(address).run() == EXIT_DELIVERED
    record = service.record
    assert [r.exit_code for r in record.results] == [7, 7]
    assert record.output(STDOUT) == b"done\n"


async def test_rejected_token_exits_without_running_anything() -> None:
    async with fake_control_plane(Script(shell("echo no"), reject=True)) as (service, address):
        assert await agent_for(address).run() == EXIT_REJECTED
    assert not service.record.chunks


async def test_gives_up_and_kills_the_job_when_the_control_plane_is_gone() -> None:
    options = AgentOptions(give_up_after=0.5, kill_grace=0.2, backoff=_fast_backoff)
    script = Script(shell("echo $$; exec sleep 60"))
    async with fake_control_plane(script) as (service, address):
        agent = agent_for(address, options)
        task = asyncio.create_task(agent.run())
        await service.record.started_event.wait()
        pid = service.record.started[0].pid
    assert await task == EXIT_UNREACHABLE
    assert not alive(pid)


@pytest.mark.parametrize("env_value", ["x y", "ünï"])
async def test_job_sees_its_env_but_not_the_worker_token(env_value: str) -> None:
    spec = types_pb2.JobSpec(
        command=["sh", "-c", 'printf "%s|%s|%s" "$FOO" "$HODEI_JOB_ID" "$HODEI_WORKER_TOKEN"'],
        env={"FOO": env_value},
    )
    async with fake_control_plane(Script(spec)) as (service, address):
        agent = Agent(
            WorkerSettings(address, WORKER_ID, TOKEN),
            options=OPTIONS,
            base_env={**os.environ, "HODEI_WORKER_TOKEN": TOKEN},
        )
        assert await agent.run() == EXIT_DELIVERED
    assert service.record.output(STDOUT).decode() == f"{env_value}|j-test000001|"


async def test_sigterm_stops_the_job_and_reports_it_terminated_not_cancelled() -> None:
    script = Script(shell("exec sleep 60"))
    async with fake_control_plane(script) as (service, address):
        agent = agent_for(address)
        task = asyncio.create_task(agent.run())
        await service.record.started_event.wait()
        agent.terminate()  # what SIGTERM does
        assert await task == EXIT_DELIVERED
    result = service.record.acked_result
    # Nobody sent CancelJob: the pod (or process) was stopped from outside.
    assert result is not None and result.terminated and not result.cancelled
    assert result.exit_code == 143  # the job's sleep ended by the SIGTERM passed on
    assert not alive(service.record.started[0].pid)


async def test_input_sent_before_the_job_starts_reaches_its_stdin_with_eof() -> None:
    spec = types_pb2.JobSpec(shell="cat; echo end", stdin=True)
    lines = (b"first\n", b"second\n")
    job_input = [
        *(types_pb2.JobInput(job_id=JOB_ID, data=line) for line in lines),
        types_pb2.JobInput(job_id=JOB_ID, eof=True),
    ]
    async with fake_control_plane(Script(spec), job_input) as (service, address):
        assert await agent_for(address).run() == EXIT_DELIVERED
    assert service.record.output(STDOUT) == b"first\nsecond\nend\n"
    assert service.record.acked_result is not None
    assert service.record.acked_result.exit_code == 0


async def test_a_tty_job_sees_a_terminal_of_the_given_size() -> None:
    spec = types_pb2.JobSpec(
        shell="test -t 0 && test -t 1 && test -t 2 && echo tty >&2; stty size",
        tty=True,
        tty_size=types_pb2.TerminalSize(rows=33, columns=101),
    )
    async with fake_control_plane(Script(spec)) as (service, address):
        assert await agent_for(address).run() == EXIT_DELIVERED
    # One terminal: stderr arrives on stdout, with the terminal's CR LF line ends.
    assert service.record.output(STDOUT) == b"tty\r\n33 101\r\n"
    assert service.record.output(STDERR) == b""

"""The job's stdin pipe and pseudo-terminal, on real processes without a control plane."""

from __future__ import annotations

import asyncio

from hodei.domain.ids import JobId
from hodei.domain.logs import LogStream
from hodei.domain.stdio import JobInput, TerminalSize
from hodei.worker.process import JobProcess

JOB = JobId("j-stdio")


class Collected:
    def __init__(self) -> None:
        self.data: dict[LogStream, bytearray] = {s: bytearray() for s in LogStream}
        self.changed = asyncio.Event()

    def __call__(self, stream: LogStream, data: bytes) -> None:
        self.data[stream] += data
        self.changed.set()

    async def until(self, text: bytes) -> None:
        while text not in self.data[LogStream.STDOUT]:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 10)


async def test_stdin_pipe_takes_bytes_then_eof() -> None:
    out = Collected()
    process = await JobProcess.start(["sh", "-c", "wc -c"], env={}, sink=out, stdin=True)
    process.feed(JobInput(JOB, data=b"\x00\xff" * 1000))
    process.feed(JobInput(JOB, eof=True))
    assert await process.wait() == 0
    assert out.data[LogStream.STDOUT].strip() == b"2000"


async def test_input_for_a_job_that_does_not_read_it_is_harmless() -> None:
    out = Collected()
    process = await JobProcess.start(["sh", "-c", "exit 7"], env={}, sink=out, stdin=True)
    assert await process.wait() == 7
    process.feed(JobInput(JOB, data=b"too late"))  # the pipe has closed: dropped
    process.feed(JobInput(JOB, eof=True))


async def test_without_stdin_the_job_reads_nothing() -> None:
    out = Collected()
    process = await JobProcess.start(["sh", "-c", "cat; echo end"], env={}, sink=out)
    assert await process.wait() == 0
    assert bytes(out.data[LogStream.STDOUT]) == b"end\n"


async def test_a_resize_signals_the_job_with_the_new_size() -> None:
    out = Collected()
    script = 'trap "stty size; exit 0" WINCH; echo ready; while :; do sleep 0.05; done'
    process = await JobProcess.start(
        ["sh", "-c", script], env={}, sink=out, tty=TerminalSize(24, 80)
    )
    await out.until(b"ready\r\n")
    process.feed(JobInput(JOB, resize=TerminalSize(rows=50, columns=150)))
    assert await process.wait() == 0
    assert bytes(out.data[LogStream.STDOUT]) == b"ready\r\n50 150\r\n"


async def test_typed_keys_reach_the_terminal_job_and_ctrl_c_interrupts_it() -> None:
    out = Collected()
    script = 'trap "echo interrupted; exit 3" INT; read line; echo "got $line"; sleep 30'
    process = await JobProcess.start(
        ["sh", "-c", script], env={}, sink=out, stdin=True, tty=TerminalSize(24, 80)
    )
    process.feed(JobInput(JOB, data=b"hello\n"))
    await out.until(b"got hello\r\n")
    process.feed(JobInput(JOB, data=b"\x03"))  # ^C: the terminal sends SIGINT
    assert await process.wait() == 3
    assert out.data[LogStream.STDOUT].endswith(b"interrupted\r\n")


async def test_end_of_input_on_a_terminal_is_ctrl_d() -> None:
    out = Collected()
    process = await JobProcess.start(
        ["sh", "-c", "cat; echo eof"], env={}, sink=out, stdin=True, tty=TerminalSize(24, 80)
    )
    process.feed(JobInput(JOB, data=b"typed\n", eof=True))
    assert await process.wait() == 0
    assert out.data[LogStream.STDOUT].endswith(b"typed\r\neof\r\n")

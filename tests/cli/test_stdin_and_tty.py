"""``hodei run -i`` and ``-t`` through the real CLI process, embedded and against a server.

The terminal tests run ``hodei`` under a pseudo-terminal of their own (ptyprocess), as a
user's terminal would: the job must see a terminal, its size must follow the test's
window, keys (``^C`` included) must reach the job, and the job's exit code comes back.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest
from ptyprocess import PtyProcess

from tests.fixtures.cli import HODEI, Server, clean_env, hodei

pytestmark = pytest.mark.slow


def run_with_stdin(
    argv: list[str], data: bytes, env: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*HODEI, "run", *argv], input=data, env=env, capture_output=True, timeout=60
    )


class Terminal:
    """``hodei`` on a pseudo-terminal: what it prints accumulates in :attr:`screen`."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 24, columns: int = 80):
        self.process = PtyProcess.spawn(
            [*HODEI, *argv], env={**env, "TERM": "xterm"}, dimensions=(rows, columns)
        )
        self.screen = b""

    @property
    def shown(self) -> bytes:
        """The screen with line ends as displayed: without -i our terminal is not raw, so
        it turns the job terminal's CR LF into CR CR LF (as with ``docker run -t``)."""
        return self.screen.replace(b"\r\r\n", b"\r\n")

    def expect(self, text: bytes, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while text not in self.shown:
            assert time.monotonic() < deadline, f"{text!r} not shown; screen: {self.screen!r}"
            try:
                self.screen += self.process.read(4096)
            except EOFError:
                raise AssertionError(f"{text!r} never shown: {self.screen!r}") from None

    def type(self, text: bytes) -> None:
        self.process.write(text)

    def exit_code(self) -> int:
        while True:
            try:
                self.screen += self.process.read(4096)
            except EOFError:
                break
        self.process.wait()
        code = self.process.exitstatus
        assert isinstance(code, int)
        return code


def test_stdin_is_streamed_with_its_end_only_with_i(tmp_path: Path) -> None:
    env = clean_env()
    piped = run_with_stdin(["-i", "--", "sh", "-c", "cat; echo done"], b"a\nb\n", env)
    assert (piped.returncode, piped.stdout) == (0, b"a\nb\ndone\n"), piped.stderr
    ignored = run_with_stdin(["--", "sh", "-c", "cat; echo done"], b"a\nb\n", env)
    assert (ignored.returncode, ignored.stdout) == (0, b"done\n"), ignored.stderr


def test_a_large_stdin_arrives_intact_through_a_server(
    tmp_path: Path, servers: list[Server]
) -> None:
    server = Server(tmp_path)
    servers.append(server)
    data = bytes(range(256)) * (12 * 4096)  # 12 MiB, every byte value
    result = run_with_stdin(["-i", "--", "sha256sum"], data, server.client_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    # -t without a terminal on our side: the job still gets one, of the classic size.
    no_tty = hodei("run", "-t", "--", "sh", "-c", "test -t 1 && stty size", env=server.client_env)
    assert (no_tty.returncode, no_tty.stdout) == (0, b"24 80\r\n"), no_tty.stderr


def test_a_tty_job_sees_a_terminal_of_the_clients_size() -> None:
    terminal = Terminal(
        ["run", "-t", "--", "sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty; stty size"],
        clean_env(),
        rows=33,
        columns=101,
    )
    terminal.expect(b"on-a-tty\r\n33 101\r\n")
    assert terminal.exit_code() == 0


def test_an_interactive_shell_follows_keys_resizes_and_exits_with_its_code() -> None:
    terminal = Terminal(["run", "-it", "--", "sh"], {**clean_env(), "PS1": "$ "})
    terminal.type(b"echo $((6*7))\n")
    terminal.expect(b"42\r\n")
    terminal.type(b"stty size\n")
    terminal.expect(b"24 80\r\n")
    terminal.process.setwinsize(40, 120)
    # The resize travels separately from the keys: ask until the answer shows it.
    for _ in range(100):
        terminal.screen = b""
        terminal.type(b"stty size\n")
        terminal.expect(b"$ ")  # the prompt after the answer
        if b"40 120\r\n" in terminal.screen:
            break
    assert b"40 120\r\n" in terminal.screen
    terminal.type(b"sleep 30\n")
    terminal.type(b"\x03")  # ^C reaches the job's terminal: sleep is interrupted, not hodei
    terminal.type(b"echo still-here\n")
    terminal.expect(b"still-here\r\n")
    terminal.type(b"exit 5\n")
    assert terminal.exit_code() == 5


def test_workdir_sets_the_jobs_directory(tmp_path: Path) -> None:
    env = clean_env()
    there = hodei("run", "--workdir", str(tmp_path), "--", "pwd", env=env)
    assert (there.returncode, there.stdout) == (0, f"{tmp_path}\n".encode()), there.stderr
    missing = hodei("run", "--workdir", str(tmp_path / "nowhere"), "--", "pwd", env=env)
    assert missing.returncode == 125
    assert b"working directory" in missing.stderr and b"--workdir" in missing.stderr
    relative = hodei("run", "--workdir", "rel", "--", "pwd", env=env)
    assert relative.returncode == 125 and b"--workdir: 'rel' is not an absolute path" in (
        relative.stderr
    )

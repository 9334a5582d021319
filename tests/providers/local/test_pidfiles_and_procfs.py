"""Pid files (what a restarted control plane reads) and /proc inspection."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from hodei.providers.local import procfs
from hodei.providers.local.pidfiles import PidFiles, WorkerProcess


def test_records_round_trip_and_unreadable_ones_are_dropped(tmp_path: Path) -> None:
    files = PidFiles(tmp_path)
    files.ensure()
    record = WorkerProcess("w-1", "j-1", 1234, 5678)
    files.write(record)
    (files.directory / "w-2.json").write_text("{not json")
    assert files.read_all() == [record]
    assert not (files.directory / "w-2.json").exists()
    files.log_path("w-1").write_text("agent output")
    files.remove("w-1")
    assert files.read_all() == []
    assert not files.log_path("w-1").exists()


def test_start_time_tells_a_process_from_one_that_reused_its_pid() -> None:
    started = procfs.start_time(os.getpid())
    assert started is not None
    assert procfs.running(os.getpid(), started)
    assert not procfs.running(os.getpid(), started + 1)


def test_session_members_and_kill_session() -> None:
    leader = subprocess.Popen(
        ["sh", "-c", "sleep 60 & sleep 60"], start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        members: list[int] = []
        while len(members) < 3:  # sh and its two sleeps, once sh has started them
            time.sleep(0.01)
            members = procfs.session_members(leader.pid)
        assert leader.pid in members
        procfs.kill_session(leader.pid)
        leader.wait(timeout=10)
        deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously
        while any(procfs.running(pid) for pid in members) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not any(procfs.running(pid) for pid in members)
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.wait()

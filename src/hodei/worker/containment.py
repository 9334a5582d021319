"""Keeping every process a job starts inside the job, so that none outlives it.

A process group or a session is not a boundary: a job can leave both (``setsid``,
``setpgid``, ``set -m``) and a double fork hands a daemon to init. The kernel offers
two things that cannot be left: a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``,
Linux ≥ 3.4), to which every orphaned descendant is reparented instead of init, and
cgroups (used by the local provider where it may write them). A worker process that is
a subreaper has, as its descendants, exactly what its job started, whatever the job
did; when the job ends (completion, cancel, timeout) :func:`kill_descendants` kills
them all and reaps those that became its children.

prctl is reached with ctypes: the PyPI bindings (``python-prctl``, ``pyprctl``) have
seen no release for years, and the call is one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections.abc import Collection

__all__ = [
    "PR_SET_CHILD_SUBREAPER",
    "become_subreaper",
    "children",
    "descendants",
    "kill_descendants",
    "kill_tree",
    "reap_adopted",
    "signal_descendants",
]

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
_KILL_ROUNDS = 200  # a tree that keeps forking is killed a generation per round at worst


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants; False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _children(pid: int) -> list[int] | None:
    """Children of ``pid`` from ``/proc/PID/task/*/children``; None if the kernel lacks it.

    An orphan is reparented to some thread of its subreaper, so every thread is read.
    """
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []  # ended meanwhile
    found: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as file:
                found.extend(int(child) for child in file.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{task}"):
                continue  # that thread ended
            return None  # no CONFIG_PROC_CHILDREN: the caller scans every process
        except OSError:
            continue
    return found


def children(pid: int) -> list[int]:
    """Live children of ``pid``."""
    found = _children(pid)
    if found is None:
        found = _scan_children().get(pid, [])
    return [child for child in found if not _zombie(child)]


def kill_tree(root: int) -> None:
    """SIGKILL ``root`` and every live process below it (those it started, recursively)."""
    for pid in [root, *descendants(root)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rpartition(b")")[2].split()[0] in (b"Z", b"X")
    except OSError:
        return True  # gone: as good as a zombie for whoever looks for live processes


def _scan_children() -> dict[int, list[int]]:
    """Every process's children, from the parent field of each ``/proc/PID/stat``."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as file:
                parent = int(file.read().rpartition(b")")[2].split()[1])
        except (OSError, IndexError, ValueError):  # ended meanwhile
            continue
        children.setdefault(parent, []).append(int(name))
    return children


def descendants(root: int, *, include_zombies: bool = False) -> list[int]:
    """Pids of the processes below ``root`` (children, their children...), root excluded."""
    table: dict[int, list[int]] | None = None
    found: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        children = _children(pid) if table is None else table.get(pid, [])
        if children is None:
            table = _scan_children()
            children = table.get(pid, [])
        for child in children:
            if include_zombies or not _zombie(child):
                found.append(child)
            stack.append(child)
    return found


def signal_descendants(signum: int, root: int | None = None) -> list[int]:
    """Send ``signum`` to every live descendant of ``root`` (default: this process)."""
    pids = descendants(os.getpid() if root is None else root)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
    return pids


def reap_adopted(spare: Collection[int] = ()) -> None:
    """Collect ended children of this process except ``spare`` (whose waiter is elsewhere,
    e.g. asyncio's child watcher for the job's own process)."""
    for pid in descendants(os.getpid(), include_zombies=True):
        if pid in spare:
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


async def kill_descendants(spare: Collection[int] = (), pause: float = 0.005) -> None:
    """SIGKILL every descendant of this process until none is left, reaping the adopted.

    Each round kills what it finds; children a dying process had are reparented to this
    process (a subreaper) and found by the next round. ``spare``: pids not to reap here.
    """
    for _ in range(_KILL_ROUNDS):
        killed = signal_descendants(signal.SIGKILL)
        reap_adopted(spare)
        if not killed:
            return
        await asyncio.sleep(pause)

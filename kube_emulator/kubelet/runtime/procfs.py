"""Process trees read from /proc: who descends from a container's main process, and its RSS.

A container's processes are its main process and everything started below it, including
children that moved to process groups of their own (Hodei's worker agent runs each job in
a new group). The process runtime sums their resident memory to enforce a memory limit
the way a cgroup would, and kills all of them when the container ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat this module needs."""

    pid: int
    ppid: int
    pgrp: int
    rss_bytes: int


def parse_stat(text: str) -> ProcStat:
    """Parse one /proc/PID/stat line (the command name may hold spaces and parentheses)."""
    head, _, tail = text.rpartition(")")
    pid = int(head.split("(", 1)[0])
    fields = tail.split()
    # After the name: state(0) ppid(1) pgrp(2) ... rss is field 24 of the whole line (21 here).
    return ProcStat(pid, int(fields[1]), int(fields[2]), int(fields[21]) * PAGE_SIZE)


def read_all(proc: Path = Path("/proc")) -> dict[int, ProcStat]:
    """Every live process's stat; processes that vanish while reading are skipped."""
    stats: dict[int, ProcStat] = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), encoding="utf-8", errors="replace") as f:
                stats[int(entry.name)] = parse_stat(f.read())
        except (OSError, ValueError, IndexError):
            continue
    return stats


def descendants(stats: Mapping[int, ProcStat], root: int) -> set[int]:
    """``root`` and every process below it, plus members of ``root``'s process group."""
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found = {pid for pid, stat in stats.items() if stat.pgrp == root}
    stack = [root, *found]
    seen: set[int] = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        if pid in stats:
            found.add(pid)
        stack.extend(children.get(pid, ()))
    return found


def resident_bytes(stats: Mapping[int, ProcStat], pids: Iterable[int]) -> int:
    """Sum of the processes' resident set sizes."""
    return sum(stats[pid].rss_bytes for pid in pids if pid in stats)

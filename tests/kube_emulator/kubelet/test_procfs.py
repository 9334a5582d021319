"""Process trees and RSS from /proc."""

from __future__ import annotations

import os

from kube_emulator.kubelet.runtime.procfs import (
    PAGE_SIZE,
    ProcStat,
    descendants,
    parse_stat,
    read_all,
    resident_bytes,
)


def test_parse_stat_with_spaces_and_parentheses_in_the_name() -> None:
    line = (
        "42 (my (odd) cmd) S 7 40 40 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 48040 3133440 406 "
        "18446744073709551615"
    )
    assert parse_stat(line) == ProcStat(pid=42, ppid=7, pgrp=40, rss_bytes=406 * PAGE_SIZE)


def test_descendants_follow_children_and_the_process_group() -> None:
    stats = {
        10: ProcStat(10, 1, 10, 100),
        11: ProcStat(11, 10, 11, 200),  # child in a group of its own
        12: ProcStat(12, 11, 11, 300),  # grandchild
        13: ProcStat(13, 1, 10, 400),  # orphan still in the group
        20: ProcStat(20, 1, 20, 500),  # unrelated
    }
    assert descendants(stats, 10) == {10, 11, 12, 13}
    assert resident_bytes(stats, {10, 11, 12, 13, 99}) == 1000


def test_read_all_sees_this_process() -> None:
    stats = read_all()
    me = stats[os.getpid()]
    assert me.ppid == os.getppid()
    assert me.rss_bytes > 0

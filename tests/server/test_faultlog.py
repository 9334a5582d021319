"""Fault lines at a bounded rate: one per kind per interval, with what was left out."""

from __future__ import annotations

import logging

import pytest

from hodei.server.faultlog import FaultLog


def test_one_line_per_kind_per_interval_then_a_count_of_what_was_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    faults = FaultLog(logging.getLogger("test.faults"), interval=1.0, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="test.faults"):
        written = [faults.error("disk full", f"write {n} failed") for n in range(1000)]
        faults.error("locked", "another kind goes out on its own")
        now[0] = 0.999
        faults.error("disk full", "still within the second")
        now[0] = 1.0
        faults.error("disk full", "a second later")
    assert written == [True] + [False] * 999
    assert [r.getMessage() for r in caplog.records] == [
        "write 0 failed",
        "another kind goes out on its own",
        "a second later (1000 more like it left out)",
    ]

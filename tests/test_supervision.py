"""The one supervision of background tasks: restart with backoff, counted, reported down."""

from __future__ import annotations

from hodei.supervision import Background
from tests.fixtures.clock import FakeClock
from tests.fixtures.waiting import eventually


class Injected(RuntimeError):
    """The exception a test injects."""


async def test_background_restarts_with_a_growing_backoff_reset_by_a_good_run() -> None:
    clock = FakeClock()
    counted: list[str] = []
    runs = 0
    healthy_for = 0.0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        await clock.sleep(healthy_for)  # runs this long, then fails
        raise Injected(f"run {runs}")

    background = Background(on_restart=counted.append, backoff=(1, 2, 4), clock=clock)
    background.supervise("flaky", flaky)
    delays: list[float] = []
    for _ in range(4):
        await eventually(lambda: bool(background.down()))
        delays.append(float(background.down()["flaky"].rpartition(" in ")[2].rstrip("s")))
        await clock.advance(delays[-1])
    assert delays == [1, 2, 4, 4]  # grows, then stays at its longest
    await eventually(lambda: bool(background.down()))  # the fifth failure, at once
    assert counted == ["flaky"] * 5
    healthy_for = 10.0  # the next run is healthy for longer than the longest backoff
    await clock.advance(4)  # restarts it
    await clock.advance(10)  # it fails after its healthy run
    await eventually(lambda: bool(background.down()))
    assert background.down() == {"flaky": f"Injected: run {runs}; restarting in 1s"}
    await background.close()
    assert background.down() == {}


async def test_a_loop_that_returns_is_restarted_too() -> None:
    clock = FakeClock()
    seen: list[str] = []
    runs = 0

    async def quits() -> None:
        nonlocal runs
        runs += 1

    background = Background(on_restart=seen.append, clock=clock)
    background.supervise("quits", quits)
    await eventually(lambda: bool(background.down()))
    assert background.down() == {
        "quits": "RuntimeError: the task returned; it must run for good; restarting in 1s"
    }
    await clock.advance(1)
    assert (runs, seen) == (2, ["quits", "quits"])
    await background.close()

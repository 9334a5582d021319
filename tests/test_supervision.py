"""The one supervision of background tasks: restart with backoff, counted, reported down."""

from __future__ import annotations

import asyncio

from hodei.supervision import Background
from tests.server.helpers import eventually


class Injected(RuntimeError):
    """The exception a test injects."""


async def test_background_restarts_with_a_growing_backoff() -> None:
    slept: list[float] = []
    gate = asyncio.Event()
    counted: list[str] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) >= 3:  # from the third restart on, each waits for the test
            await gate.wait()
            gate.clear()

    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        raise Injected(f"run {runs}")

    background = Background(on_restart=counted.append, backoff=(1, 2, 4), sleep=sleep)
    background.supervise("flaky", flaky)
    await eventually(lambda: len(slept) == 3)
    assert slept == [1, 2, 4]
    assert background.down() == {"flaky": "Injected: run 3; restarting in 4s"}
    assert counted == ["flaky"] * 3
    gate.set()
    await eventually(lambda: len(slept) == 4)
    assert slept[-1] == 4  # still failing at once: the backoff stays at its longest
    await background.close()
    assert background.down() == {}


async def test_a_loop_that_returns_is_restarted_too() -> None:
    returned = asyncio.Event()
    seen: list[str] = []

    async def quits() -> None:
        returned.set()

    async def sleep(seconds: float) -> None:
        await asyncio.Event().wait()  # stays down: the test reads the state

    background = Background(on_restart=seen.append, sleep=sleep)
    background.supervise("quits", quits)
    await returned.wait()
    await eventually(lambda: bool(background.down()))
    assert background.down() == {
        "quits": "RuntimeError: the task returned; it must run for good; restarting in 1s"
    }
    await background.close()

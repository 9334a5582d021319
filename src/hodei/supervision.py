"""Every background task under one supervision, so none ends silently.

A fire-and-forget ``create_task`` can be garbage-collected mid-flight and its exception
lost, and a loop that dies (the scheduler, the supervisor, a provider's watch) leaves the
control plane up but doing nothing. :class:`Background` owns every task; the control plane
makes one and hands it to the providers too, so their loops are supervised the same way:

- :meth:`Background.supervise` runs a loop that must never end: when it raises (or
  returns), the failure is logged once with its traceback, counted (``on_restart``, which
  the control plane turns into ``hodei_background_restarts_total{task}``), the task is
  reported down (:meth:`Background.down`, which ``/readyz`` shows) and it is started
  again after a backoff that grows while it keeps failing.
- :meth:`Background.spawn` runs a one-shot task (create a worker, delete one); when it
  raises, the failure is logged and counted the same way and ``on_failure`` runs, so the
  job it worked for is settled instead of left waiting.

Errors of an ``expected`` kind (the store failing: its own fault log reports those, at a
bounded rate) are not logged again here, and a loop that ran longer than the longest
backoff before failing starts its backoff from the beginning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from hodei.domain.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

# Seconds between a loop's failure and its restart, growing while it keeps failing.
RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)

FailureHandler = Callable[[BaseException], Awaitable[None]]


def _nothing(task: str) -> None:
    pass


class Background:
    """The control plane's tasks; see the module docstring."""

    def __init__(
        self,
        *,
        on_restart: Callable[[str], None] = _nothing,
        backoff: Sequence[float] = RESTART_BACKOFF,
        expected: tuple[type[BaseException], ...] = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_restart = on_restart
        self._backoff = tuple(backoff) or RESTART_BACKOFF
        self._expected = expected
        self._clock = clock
        self._down: dict[str, str] = {}

    def down(self) -> dict[str, str]:
        """Supervised tasks waiting to restart, each with why it stopped."""
        return dict(self._down)

    def spawn(
        self,
        coro: Coroutine[Any, Any, Any],
        *,
        name: str,
        kind: str = "",
        on_failure: FailureHandler | None = None,
    ) -> asyncio.Task[Any]:
        """Run a one-shot task; ``kind`` names it in logs and metrics (default: ``name``)."""
        return self._start(self._once(coro, kind or name, on_failure), name)

    def supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[Any]:
        """Keep ``run()`` running: restart it with backoff whenever it raises or returns."""
        return self._start(self._keep_running(name, run), name)

    def _start(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _once(
        self, coro: Coroutine[Any, Any, Any], kind: str, on_failure: FailureHandler | None
    ) -> None:
        try:
            await coro
        except Exception as exc:
            self._failed(kind, exc, "")
            if on_failure is not None:
                try:
                    await on_failure(exc)
                except Exception as again:
                    self._failed(kind, again, " while handling that failure")

    async def _keep_running(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        failures = 0
        while True:
            started = self._clock.monotonic()
            try:
                await run()
                error: BaseException = RuntimeError("the task returned; it must run for good")
            except Exception as exc:
                error = exc
            if self._clock.monotonic() - started > self._backoff[-1]:
                failures = 0  # it ran well for a while: this is a new failure, not a streak
            delay = self._backoff[min(failures, len(self._backoff) - 1)]
            failures += 1
            self._failed(name, error, f"; restarting in {delay:g}s")
            self._down[name] = f"{type(error).__name__}: {error}; restarting in {delay:g}s"
            try:
                await self._clock.sleep(delay)
            finally:
                self._down.pop(name, None)

    def _failed(self, task: str, error: BaseException, then: str) -> None:
        self._on_restart(task)
        if isinstance(error, self._expected):
            return  # reported where it happens (the store's fault log)
        log.error("background task %s failed%s", task, then, exc_info=error)

    async def close(self) -> None:
        """Cancel every task and wait for them to finish."""
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

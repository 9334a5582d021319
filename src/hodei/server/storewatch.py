"""Store faults reported in one place, at a bounded rate, instead of by every caller.

When the disk under the store fills up (or fails, or another process holds its lock),
every write fails, from every part of the control plane at once. Each part handles the
failure its own way (a request answers UNAVAILABLE, a loop restarts, an agent keeps its
output and sends it again later); :func:`watched` wraps the store so that the failure is
also logged here, at most once a second per kind of fault (:class:`FaultLog`), and the
callers need not log it again.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, cast

from hodei.domain.clock import SYSTEM_CLOCK, Clock
from hodei.server.faultlog import FaultLog
from hodei.store.base import Store, StoreError

log = logging.getLogger(__name__)


class _Watched:
    """Delegates every attribute to the store; coroutine methods are watched."""

    def __init__(self, store: Store, faults: FaultLog) -> None:
        self._store = store
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        return self._watch(name, attribute)

    def _watch(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except StoreError as exc:
                self._faults.error(exc.kind, f"store fault ({exc.kind}) in {name}: {exc}")
                raise

        return call


def watched(store: Store, faults: FaultLog | None = None, *, clock: Clock = SYSTEM_CLOCK) -> Store:
    """``store`` with its faults logged by ``faults`` (default: one line per second per
    kind, timed by ``clock``)."""
    return cast(Store, _Watched(store, faults or FaultLog(log, clock=clock.monotonic)))

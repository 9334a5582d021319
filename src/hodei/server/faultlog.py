"""Error lines at a bounded rate, so a fault that repeats cannot flood the log.

A full disk makes every store write fail, and a busy control plane writes thousands of
times a minute; logging each failure would bury everything else. :class:`FaultLog` writes
at most one line per kind of fault per interval, and the next line it writes says how
many were left out in between, so nothing is hidden, only summarised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Kind:
    last: float
    suppressed: int = 0


@dataclass
class FaultLog:
    """``error(kind, text)`` logs ``text`` unless a line of that kind went out less than
    ``interval`` seconds ago (seconds of ``clock``, a monotonic time in seconds)."""

    logger: logging.Logger
    interval: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _kinds: dict[str, _Kind] = field(default_factory=dict)

    def error(self, kind: str, text: str, *, exc_info: BaseException | None = None) -> bool:
        """Log one line (with ``exc_info``'s traceback, if given); True if it was written."""
        now = self.clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen.last < self.interval:
            seen.suppressed += 1
            return False
        suppressed = seen.suppressed if seen is not None else 0
        self._kinds[kind] = _Kind(now)
        more = f" ({suppressed} more like it left out)" if suppressed else ""
        self.logger.error("%s%s", text, more, exc_info=exc_info)
        return True

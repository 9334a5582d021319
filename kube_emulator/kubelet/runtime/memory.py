"""Memory limits for containers run as plain processes, enforced by watching their RSS.

RLIMIT_AS caps address space, not memory, and Python reserves far more address space than
it uses, so it kills healthy interpreters and misses forked children. A cgroup would be
exact but needs privileges the machines here lack. Instead one watcher samples the
resident memory of every limited container's process tree every ``interval`` seconds and
calls the container's ``on_exceeded`` once it goes over: the runtime then SIGKILLs the tree
and reports ``OOMKilled`` (exit 137), as the kernel's OOM killer and the kubelet would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from kube_emulator.kubelet.runtime import procfs


@dataclass
class _Watched:
    root_pid: int
    limit: int
    on_exceeded: Callable[[], None]


class MemoryWatcher:
    """Samples the watched process trees; one task for all containers, only while needed."""

    def __init__(self, *, interval: float = 0.1) -> None:
        self._interval = interval
        self._watched: dict[int, _Watched] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, root_pid: int, limit: int, on_exceeded: Callable[[], None]) -> None:
        """Start watching the tree under ``root_pid`` against ``limit`` bytes."""
        self._watched[root_pid] = _Watched(root_pid, limit, on_exceeded)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def unwatch(self, root_pid: int) -> None:
        self._watched.pop(root_pid, None)

    async def close(self) -> None:
        self._watched.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._watched:
            stats = await asyncio.to_thread(procfs.read_all)
            for watched in list(self._watched.values()):
                used = procfs.resident_bytes(stats, procfs.descendants(stats, watched.root_pid))
                if used > watched.limit and watched.root_pid in self._watched:
                    del self._watched[watched.root_pid]
                    watched.on_exceeded()
            await asyncio.sleep(self._interval)

"""A cgroup per local worker: a boundary no process can leave, and the job's limits.

A worker joins its cgroups before the agent starts (the launcher's child writes itself
to ``cgroup.procs``), so the agent, the job and everything the job starts are inside,
whatever they do. What the host offers decides what this module can do, and it says so
(:attr:`Cgroups.describe`):

* **cgroup v2** (the unified hierarchy, ``/sys/fs/cgroup`` or, on hybrid hosts,
  ``/sys/fs/cgroup/unified``) where this process may create a child of its own cgroup:
  containment — when a worker ends, ``cgroup.kill`` (Linux ≥ 5.14) kills whatever is
  left inside; ``memory.max``/``cpu.max`` when the memory and cpu controllers can be
  enabled there.
* **cgroup v1** memory and cpu hierarchies (hybrid hosts, where the controllers are
  not on the unified hierarchy), when writable: ``memory.limit_in_bytes`` (and
  ``memory.memsw.limit_in_bytes``, so swap is no way around it) and
  ``cpu.cfs_quota_us``.

A limit the host cannot enforce is refused at submit (:meth:`Cgroups.unsupported`),
never dropped. A provider's directories (``hodei-<pid>-<random>``) exist only while it
has workers; those left by a control plane that was killed are removed by the next one
once they are empty. Paths and file formats: the kernel's cgroup-v2 and cgroup-v1 memory/cpu
documentation (Documentation/admin-guide/cgroup-v2.rst, cgroup-v1/memory.rst).
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from hodei.domain.jobs import Resources
from hodei.domain.quantities import cpu_millicores, memory_bytes

__all__ = ["Cgroups", "Mount", "cgroup_mounts", "cgroup_paths"]

CPU_PERIOD_US = 100_000  # the kernel's default CFS period


@dataclass(frozen=True)
class Mount:
    """One cgroup filesystem mount: v2 (``controllers`` empty) or a v1 hierarchy."""

    version: int
    root: str  # the hierarchy path mounted there
    mountpoint: str
    controllers: frozenset[str] = frozenset()


def cgroup_mounts(mountinfo: str) -> list[Mount]:
    """The cgroup mounts listed in ``/proc/self/mountinfo`` text (proc(5) format)."""
    mounts = []
    for line in mountinfo.splitlines():
        before, sep, after = line.partition(" - ")
        if not sep:
            continue
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options = tail[0], set(tail[2].split(","))
        if fstype == "cgroup2":
            mounts.append(Mount(2, fields[3], fields[4]))
        elif fstype == "cgroup":
            controllers = frozenset(options & {"memory", "cpu", "cpuacct", "pids", "cpuset"})
            mounts.append(Mount(1, fields[3], fields[4], controllers))
    return mounts


def cgroup_paths(proc_cgroup: str) -> dict[str, str]:
    """``/proc/self/cgroup`` text as {controller or ``""`` for v2: path}."""
    paths: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _directory(mount: Mount, path: str) -> Path:
    relative = path[len(mount.root) :] if path.startswith(mount.root) else path
    return Path(mount.mountpoint) / relative.lstrip("/")


def _make(parent: Path, name: str) -> Path | None:
    directory = parent / name
    try:
        directory.mkdir(exist_ok=True)
    except OSError:
        return None
    return directory


def _write(path: Path, text: str) -> bool:
    try:
        path.write_text(text)
    except OSError:
        return False
    return True


def _remove_stale(parent: Path) -> None:
    """Remove the empty directories of providers whose process has ended (rmdir refuses a
    cgroup that still holds a process, so nothing running is touched)."""
    with contextlib.suppress(OSError):
        for directory in parent.glob("hodei-*-*"):
            owner = directory.name.split("-")[1]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                for child in directory.iterdir():
                    if child.is_dir():
                        with contextlib.suppress(OSError):
                            child.rmdir()
                with contextlib.suppress(OSError):
                    directory.rmdir()


def _probe(parent: Path, name: str, controllers: tuple[str, ...] = ()) -> frozenset[str] | None:
    """Whether ``name`` can be created under ``parent`` (None if not) and which of
    ``controllers`` can be enabled for its children; leaves nothing behind."""
    _remove_stale(parent)
    directory = _make(parent, name)
    if directory is None:
        return None
    enabled = frozenset(
        c for c in controllers if _write(directory / "cgroup.subtree_control", f"+{c}")
    )
    with contextlib.suppress(OSError):
        directory.rmdir()
    return enabled


@dataclass
class Cgroups:
    """This provider's cgroup directories: one per hierarchy in use, a child per worker."""

    unified: Path | None = None  # v2 directory (containment)
    v2_controllers: frozenset[str] = frozenset()  # of memory, cpu: enabled for workers
    v1: dict[str, Path] = field(default_factory=dict)  # "memory"/"cpu" -> v1 directory

    @classmethod
    def detect(cls, name: str) -> Cgroups:
        """Where a directory ``name`` may be made under this process's own cgroups (it is
        made with the first worker, and removed with the last)."""
        try:
            mounts = cgroup_mounts(Path("/proc/self/mountinfo").read_text())
            paths = cgroup_paths(Path("/proc/self/cgroup").read_text())
        except OSError:
            return cls()
        found = cls()
        for mount in mounts:
            if mount.version == 2 and "" in paths and found.unified is None:
                base = _directory(mount, paths[""]) / name
                enabled = _probe(base.parent, name, ("memory", "cpu"))
                if enabled is not None:
                    found.unified, found.v2_controllers = base, enabled
        for mount in mounts:
            for controller in ("memory", "cpu"):
                if (
                    mount.version == 1
                    and controller in mount.controllers
                    and controller not in found.v2_controllers
                    and controller not in found.v1
                    and controller in paths
                ):
                    base = _directory(mount, paths[controller]) / name
                    if _probe(base.parent, name) is not None:
                        found.v1[controller] = base
        return found

    def enforceable(self) -> frozenset[str]:
        """Which of ``memory``, ``cpu`` can be limited."""
        return self.v2_controllers | frozenset(self.v1)

    def describe(self) -> str:
        """One line for the log: what is used for containment and limits."""
        parts = []
        if self.unified is not None:
            parts.append(f"containment: cgroup v2 {self.unified}")
        for controller in ("memory", "cpu"):
            if controller in self.v2_controllers:
                parts.append(f"{controller}: cgroup v2")
            elif controller in self.v1:
                parts.append(f"{controller}: cgroup v1 {self.v1[controller]}")
            else:
                parts.append(f"{controller}: not enforceable")
        return "; ".join(parts)

    def unsupported(self, resources: Resources) -> list[str]:
        """The limits asked for that this host cannot enforce (``memory``, ``cpu``)."""
        asked = []
        if resources.memory_limit or resources.memory_request:
            asked.append("memory")
        if resources.cpu_limit or resources.cpu_request:
            asked.append("cpu")
        return [name for name in asked if name not in self.enforceable()]

    def _unified_parent(self, unified: Path) -> None:
        if not unified.is_dir():
            unified.mkdir()
            for controller in self.v2_controllers:
                (unified / "cgroup.subtree_control").write_text(f"+{controller}")

    def prepare(self, name: str) -> list[str]:
        """The containment directory ``name`` (made if missing), for a worker started
        ahead of its job (a spare): no limit yet, those come with the job (:meth:`create`
        with the same name). Raises OSError when it cannot be made.
        """
        if self.unified is None:
            return []
        self._unified_parent(self.unified)
        own = self.unified / name
        own.mkdir(exist_ok=True)
        return [str(own)]

    def create(self, name: str, resources: Resources) -> list[str]:
        """The worker's cgroup directories ``name``, limits written; the launcher's child
        joins them (a spare made by :meth:`prepare` is in the first already).

        Raises OSError when a directory or a limit cannot be written.
        """
        memory = resources.memory_limit or resources.memory_request
        cpu = resources.cpu_limit or resources.cpu_request
        directories = []
        if self.unified is not None:
            self._unified_parent(self.unified)
            own = self.unified / name
            own.mkdir(exist_ok=True)
            directories.append(str(own))
            if memory and "memory" in self.v2_controllers:
                (own / "memory.max").write_text(str(memory_bytes(memory)))
                with contextlib.suppress(OSError):
                    (own / "memory.swap.max").write_text("0")
            if cpu and "cpu" in self.v2_controllers:
                quota = max(1000, cpu_millicores(cpu) * CPU_PERIOD_US // 1000)
                (own / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
        if memory and "memory" in self.v1:
            own = self.v1["memory"] / name
            own.mkdir(parents=True, exist_ok=True)
            directories.append(str(own))
            limit = str(memory_bytes(memory))
            (own / "memory.limit_in_bytes").write_text(limit)
            with contextlib.suppress(OSError):  # absent without swap accounting
                (own / "memory.memsw.limit_in_bytes").write_text(limit)
        if cpu and "cpu" in self.v1:
            own = self.v1["cpu"] / name
            own.mkdir(parents=True, exist_ok=True)
            directories.append(str(own))
            (own / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            quota = max(1000, cpu_millicores(cpu) * CPU_PERIOD_US // 1000)
            (own / "cpu.cfs_quota_us").write_text(str(quota))
        return directories

    def _own(self, name: str) -> list[Path]:
        parents = [self.unified] if self.unified is not None else []
        return [p / name for p in [*parents, *self.v1.values()] if (p / name).is_dir()]

    def kill(self, name: str) -> None:
        """SIGKILL every process left in the worker's cgroups ``name``."""
        for directory in self._own(name):
            try:
                pids = (directory / "cgroup.procs").read_text().split()
            except OSError:
                continue
            if not pids:
                continue  # the usual case: the worker left nothing behind
            if directory.parent == self.unified and _write(directory / "cgroup.kill", "1"):
                continue
            with contextlib.suppress(OSError):
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(pid), signal.SIGKILL)

    def oom_killed(self, name: str) -> bool:
        """Whether the kernel killed a process in the cgroups ``name`` for lack of memory."""
        for directory in self._own(name):
            for name in ("memory.events", "memory.oom_control"):
                with contextlib.suppress(OSError, ValueError):
                    for line in (directory / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value) > 0:
                            return True
        return False

    def reusable(self, name: str) -> bool:
        """Whether the cgroups ``name`` of an ended worker can serve the next one as they
        are: only the containment directory, empty, no limit written, no OOM kill counted
        (the kernel's counters cannot be reset, and would be read as the next job's)."""
        own = self._own(name)
        if len(own) != 1 or self.unified is None or own[0].parent != self.unified:
            return False
        directory = own[0]
        try:
            if (directory / "cgroup.procs").read_text().strip():
                return False
            for limit in ("memory.max", "cpu.max"):
                if (directory / limit).exists() and not (
                    (directory / limit).read_text().startswith("max")
                ):
                    return False
        except OSError:
            return False
        return not self.oom_killed(name)

    def remove(self, name: str) -> None:
        """Remove the cgroups ``name`` (once they are empty: kill first). This provider's
        own directories stay for its next worker until :meth:`close`: removing and making
        them again for each job costs the event loop milliseconds of kernel work per job."""
        for directory in self._own(name):
            with contextlib.suppress(OSError):
                directory.rmdir()

    def close(self) -> None:
        """Remove this provider's directories if no worker's is left in them."""
        for directory in [self.unified, *self.v1.values()]:
            if directory is not None:
                with contextlib.suppress(OSError):
                    directory.rmdir()

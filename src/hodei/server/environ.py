"""Wiping the control plane's secrets from what ``/proc/PID/environ`` shows (Linux).

A process's initial environment stays readable in ``/proc/PID/environ`` by every process
of the same user, for the process's whole life, whatever it does to ``os.environ``:
that file shows the memory the kernel wrote the environment to at ``execve``. Local
jobs run as the control plane's user, so a job could read ``HODEI_API_TOKEN`` there.
Once the settings are parsed the control plane overwrites those values in place, in
that very memory (its bounds are fields 50-51 of ``/proc/self/stat``, see proc(5)),
and unsets them at the C level, so that children started with the inherited
environment do not get them either. Python's ``os.environ`` mapping keeps them: code of
this process that reads its settings later still can.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterable

__all__ = ["SECRET_VARIABLES", "wipe_from_environ"]

# Variables whose values give access to something: tokens, credentials in a database URL.
SECRET_VARIABLES = ("HODEI_API_TOKEN", "HODEI_DATABASE_URL", "HODEI_WORKER_TOKEN")


def _environ_bounds() -> tuple[int, int] | None:
    try:
        with open("/proc/self/stat", "rb") as file:
            fields = file.read().rpartition(b")")[2].split()
        # After the command name, field 3 (state) is index 0: env_start/env_end are 50/51.
        return int(fields[47]), int(fields[48])
    except (OSError, IndexError, ValueError):
        return None


def wipe_from_environ(names: Iterable[str] = SECRET_VARIABLES) -> list[str]:
    """Overwrite the values of ``names`` in this process's initial environment with NULs
    and unset them for children; the names wiped. Nothing to do off Linux."""
    wanted = set(names)
    for variable in wanted:
        os.unsetenv(variable)
    bounds = _environ_bounds()
    try:
        with open("/proc/self/environ", "rb") as file:
            block = file.read()
    except OSError:
        return []
    if bounds is None or not block:
        return []
    start, end = bounds
    wiped = []
    offset = 0
    for entry in block.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        value_at = offset + len(name) + len(sep)
        named = name.decode(errors="replace")
        if sep and value and named in wanted and start + value_at + len(value) <= end:
            with contextlib.suppress(OSError, ValueError):
                ctypes.memset(start + value_at, 0, len(value))
                wiped.append(named)
        offset += len(entry) + 1
    return wiped

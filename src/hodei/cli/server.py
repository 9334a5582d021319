"""``hodei server``: the control plane in the foreground until SIGTERM or SIGINT.

Settings come from the environment (an invalid variable, or no provider enabled, stops
startup with exit 2 and a message naming the variable). A signal drains: no new jobs,
running ones get ``grace`` seconds to report, then the process exits 0. Log lines go to
stderr; once serving, one line names the ports bound, and ``--ports-file PATH`` also
writes them as JSON (``{"grpc": 50051, "http": 9090}``), so a script or test can start
the server on port 0 and learn where it listens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from hodei.config import ServerSettings, SettingsError, load_server_settings

DRAIN_GRACE = 10.0


def write_ports(path: Path, *, grpc: int, http: int) -> None:
    """Write ``{"grpc": N, "http": M}`` to ``path`` whole: a reader never sees half a file
    (written beside it, then renamed over it)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"grpc": grpc, "http": http}) + "\n")
    partial.replace(path)


def _settings_or_exit(env: Mapping[str, str]) -> ServerSettings | int:
    """Settings from ``env``, or exit code 2 after saying what is wrong."""
    try:
        settings = load_server_settings(env)
    except SettingsError as exc:
        print(f"hodei server: {exc}", file=sys.stderr)
        return 2
    if not settings.local_enabled and not settings.kubernetes.enabled:
        # Ready but unable to run anything would fail every job later, one by one.
        print(
            "hodei server: no provider is enabled (HODEI_LOCAL_ENABLED=0 and HODEI_K8S_ENABLED "
            "is not 1), so no job could ever run; enable one of them",
            file=sys.stderr,
        )
        return 2
    return settings


async def serve(
    env: Mapping[str, str], *, grace: float = DRAIN_GRACE, ports_file: Path | None = None
) -> int:
    """Run the control plane until SIGTERM/SIGINT; return the exit code. With
    ``ports_file``, the bound ports are written there once the server is ready."""
    settings = _settings_or_exit(env)
    if isinstance(settings, int):
        return settings
    from hodei.server.environ import wipe_from_environ

    wipe_from_environ()  # local jobs run as this user: /proc/PID/environ must not show them
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    from hodei.server.app import ControlPlane

    control_plane = ControlPlane(settings)
    try:
        await control_plane.start()
    except Exception as exc:  # startup failures (port taken, unsafe listen...): say why, exit 1
        print(f"hodei server: cannot start: {exc}", file=sys.stderr)
        await control_plane.stop(grace=0)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # After the signal handlers: whoever reads the file may signal at once.
    if ports_file is not None:
        try:
            write_ports(ports_file, grpc=control_plane.grpc_port, http=control_plane.http_port)
        except OSError as exc:
            print(f"hodei server: cannot write --ports-file {ports_file}: {exc}", file=sys.stderr)
            await control_plane.stop(grace=0)
            return 1
    logging.getLogger("hodei.server").info(
        "hodei server ready: gRPC %s (port %d), HTTP port %d",
        settings.grpc_address,
        control_plane.grpc_port,
        control_plane.http_port,
    )
    await stop.wait()
    logging.getLogger("hodei.server").info("draining (up to %.0f s)", grace)
    await control_plane.stop(grace=grace)
    return 0

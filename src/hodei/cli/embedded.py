"""The control plane ``hodei run`` starts in-process when ``HODEI_SERVER`` is unset.

It listens on loopback ports chosen by the kernel, keeps its SQLite file in a temporary
directory that is removed afterwards, and runs jobs with the local provider (Kubernetes
too when the environment enables it). On the way out it removes every worker it
created, so nothing it started outlives the command, and copies the finished job into
the default store (:mod:`hodei.cli.history`), where ``hodei jobs`` finds it later.

It is what a new user meets first, so it starts lean: no HTTP server (nothing scrapes
an embedded control plane), and the local provider's worker launcher is forked from
this very process before any gRPC thread exists, which spares a second Python start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from hodei.config import ServerSettings, load_server_settings

if TYPE_CHECKING:
    from hodei.cli.history import Archive
    from hodei.providers.local.launcher import Launcher

STOP_GRACE = 2.0


class EmbeddedStartError(Exception):
    """The in-process control plane could not start (store, port, provider)."""


def embedded_settings(env: Mapping[str, str], directory: Path) -> ServerSettings:
    """Server settings from ``env`` with what an embedded control plane must have."""
    return dataclasses.replace(
        load_server_settings(env),
        grpc_address="127.0.0.1:0",
        http_address="127.0.0.1:0",
        database_url=f"sqlite:///{directory / 'hodei.db'}",
        api_token=None,
        insecure=False,
        tls=None,  # loopback only, and the client in this process speaks plaintext
        worker_tls=None,
        server_address=None,
        local_enabled=True,
    )


def forked_launcher(scratch: Path) -> Launcher | None:
    """A worker launcher forked from this process, or ``None`` if a thread already runs
    here (a fork copies only the calling thread; the provider then starts its own). If
    this process is killed outright, the launcher ends its workers and removes
    ``scratch``."""
    if threading.active_count() > 1:
        return None
    from hodei.providers.local.launcher import Launcher
    from hodei.worker.launcher import fork_launcher

    pid, sock = fork_launcher(scratch=str(scratch))
    return Launcher.adopt(pid, sock)


async def _keep_history(store: Archive, env: Mapping[str, str]) -> None:
    """Copy the finished jobs into the default store, where ``hodei jobs`` finds them."""
    from hodei.cli.follow import say
    from hodei.cli.history import history_store, record_jobs

    try:
        found = history_store(env)
        if found is None:
            return
        history, _ = found
        await history.open()
        try:
            await record_jobs(store, history)
        finally:
            await history.close()
    except Exception as exc:  # the job has run; losing its record must not fail the command
        say(f"hodei: the job was not recorded in the job store ({exc})")


@contextlib.asynccontextmanager
async def embedded_control_plane(env: Mapping[str, str]) -> AsyncIterator[str]:
    """Run a control plane for the duration of the block; yields its gRPC address."""
    settings_env = dict(env)
    from hodei.server.environ import wipe_from_environ

    wipe_from_environ()  # the jobs run as this user: keep its secrets out of their reach
    directory = Path(tempfile.mkdtemp(prefix="hodei-run-"))
    launcher = forked_launcher(directory)
    from hodei.server.app import ControlPlane

    try:
        control_plane = ControlPlane(
            embedded_settings(settings_env, directory),
            serve_http=False,
            local_launcher=launcher,
            # Removed with the rest of the scratch directory however the command ends
            # (the launcher does it if the command is killed).
            socket_dir=directory,
        )
        try:
            await control_plane.start()
        except BaseException as exc:  # also a stop signal while starting: release what did
            with contextlib.suppress(Exception):
                await control_plane.stop(grace=0)
            if not isinstance(exc, Exception):
                raise
            # whatever broke, the user needs one line, not a traceback
            raise EmbeddedStartError(str(exc) or type(exc).__name__) from exc
        try:
            yield control_plane.address
        finally:
            for provider in control_plane.providers.values():
                for worker in await provider.list_workers():
                    await provider.delete_worker(worker.worker_id)
            await _keep_history(control_plane.store, settings_env)
            await control_plane.stop(grace=STOP_GRACE)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

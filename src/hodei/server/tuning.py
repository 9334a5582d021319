"""Timings of the control plane that are not user settings but that tests shorten."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hodei.supervision import RESTART_BACKOFF


@dataclass(frozen=True)
class Tuning:
    """Defaults suit production; tests pass smaller values to avoid waiting."""

    # How long a worker's one-time registration token stays valid.
    token_ttl: timedelta = timedelta(minutes=10)
    # How long a registered agent may stay disconnected (or, after a restart, take to
    # reconnect) before its job counts as WorkerLost.
    reconnect_grace: timedelta = timedelta(seconds=60)
    # A RUNNING job this long past its timeout without a result is ended by the server.
    timeout_backstop: timedelta = timedelta(seconds=30)
    # A cancelled RUNNING job whose agent has not reported this long after is ended anyway.
    cancel_grace: timedelta = timedelta(seconds=30)
    # After ResultAck, how long to let the agent hang up by itself before deleting its worker.
    release_wait: float = 10.0
    # Seconds before a failed background loop is started again, growing while it fails.
    restart_backoff: tuple[float, ...] = RESTART_BACKOFF
    # A worker stream that has not sent Register this long after opening is closed.
    register_deadline: float = 10.0
    # How long a registration waits for the provider's watch to report the worker's pod
    # Running (an agent can dial before the event arrives); then it is refused, retryable.
    origin_wait: float = 10.0
    # Period of the supervisor's checks (backstops, reconnect grace).
    tick: float = 1.0
    # Period of the sweep that deletes workers whose job is finished or unknown; a worker
    # of a job that ended less than this long ago is left to its normal release.
    sweep_interval: timedelta = timedelta(seconds=60)

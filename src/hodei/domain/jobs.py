"""What a user asks to run (:class:`JobSpec`) and what the platform knows (:class:`Job`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from hodei.domain.ids import JobId, WorkerId
from hodei.domain.quantities import QuantityError, validate_quantity
from hodei.domain.states import JobState, transition


class SpecError(ValueError):
    """A job specification that cannot run; the message names the field."""


@dataclass(frozen=True)
class Resources:
    """CPU and memory requests/limits as Kubernetes quantities; ``None`` means the default."""

    cpu_request: str | None = None
    cpu_limit: str | None = None
    memory_request: str | None = None
    memory_limit: str | None = None

    def validated(self) -> Resources:
        for name in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
            value = getattr(self, name)
            if value is not None:
                try:
                    validate_quantity(value)
                except QuantityError as exc:
                    raise SpecError(f"resources.{name}: {exc}") from None
        return self


# Label keys/values as Kubernetes accepts them, so job labels can become pod labels.
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_label(key: str, value: str) -> None:
    prefix, _, name = key.rpartition("/")
    if not name or len(name) > 63 or not _LABEL_NAME.match(name) or len(prefix) > 253:
        raise SpecError(
            f"labels: key {key!r} is not a valid label key "
            "(≤63 chars of [A-Za-z0-9-_.], starting and ending alphanumeric, optional DNS prefix/)"
        )
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise SpecError(
            f"labels: value {value!r} for {key!r} is not a valid label value "
            "(≤63 chars of [A-Za-z0-9-_.], starting and ending alphanumeric, or empty)"
        )


@dataclass(frozen=True)
class JobSpec:
    """A command to run: argv (``command``) or a shell script (``shell``), never both."""

    command: tuple[str, ...] = ()
    shell: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    resources: Resources = field(default_factory=Resources)
    timeout_seconds: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    max_attempts: int = 1
    provider: str | None = None

    def validated(self) -> JobSpec:
        """Return self if every field is acceptable, else raise :class:`SpecError`."""
        if self.shell is not None and self.command:
            raise SpecError("command: give either an argv command or a shell script, not both")
        if self.shell is None and not self.command:
            raise SpecError("command: empty; give the command to run after `--`")
        if self.shell is not None and not self.shell.strip():
            raise SpecError("shell: empty script")
        for key in self.env:
            if not _ENV_NAME.match(key):
                raise SpecError(
                    f"env: {key!r} is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)"
                )
        for key, value in self.labels.items():
            _check_label(key, value)
        if self.timeout_seconds is not None and not self.timeout_seconds > 0:
            raise SpecError(f"timeout: {self.timeout_seconds} must be a positive number of seconds")
        if not 1 <= self.max_attempts <= 100:
            raise SpecError(f"max_attempts: {self.max_attempts} must be between 1 and 100")
        self.resources.validated()
        return self

    def argv(self) -> tuple[str, ...]:
        """The argv the worker executes: the command, or ``/bin/sh -c SCRIPT``."""
        if self.shell is not None:
            return ("/bin/sh", "-c", self.shell)
        return self.command


@dataclass(frozen=True)
class Job:
    """The control plane's record of a job. Immutable: changes produce a new value."""

    id: JobId
    spec: JobSpec
    state: JobState
    created_at: datetime
    attempt: int = 0
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker_id: WorkerId | None = None
    provider: str | None = None
    # Why an unfinished job is not running yet, in words for people (``Unschedulable:
    # 0/3 nodes are available``, ``creating the worker``); None when nothing is awaited.
    # Set by whoever knows (the scheduler, a provider's PENDING diagnosis) through
    # :meth:`waiting`; every state change clears it.
    waiting_reason: str | None = None

    def moved_to(self, state: JobState, **changes: object) -> Job:
        """A copy in ``state`` (checked by :func:`transition`) with ``changes`` applied.

        The waiting reason belongs to the state it was given in, so it is cleared unless
        ``changes`` sets a new one."""
        changes.setdefault("waiting_reason", None)
        return replace(self, state=transition(self.state, state), **changes)  # type: ignore[arg-type]

    def waiting(self, reason: str | None) -> Job:
        """A copy that says why it still waits (None: it no longer waits for anything)."""
        return replace(self, waiting_reason=reason or None)

"""What a user asks to run (:class:`JobSpec`) and what the platform knows (:class:`Job`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final

from hodei.domain.ids import JobId, WorkerId
from hodei.domain.names import (
    NameRuleError,
    check_config_key,
    check_dns_label,
    check_dns_subdomain,
    check_env_name,
    check_image,
    check_label_key,
    check_label_value,
)
from hodei.domain.quantities import QuantityError, validate_quantity
from hodei.domain.reasons import Reason
from hodei.domain.states import JobState, transition
from hodei.domain.stdio import TerminalSize


class SpecError(ValueError):
    """A job specification that cannot run; the message names the field."""


# Limits of one job spec, so that every accepted spec can be exec'd, stored and listed.
# Linux refuses (E2BIG) any single argument or NAME=VALUE string of MAX_ARG_STRLEN
# (32 pages = 131072 bytes) or more, counting its terminating NUL.
MAX_ARGUMENT_BYTES: Final = 128 * 1024 - 1
# The whole spec (every string's UTF-8 bytes): far below exec's total for argv plus
# environment, and small enough that a page of jobs always fits one gRPC message.
MAX_SPEC_BYTES: Final = 1024 * 1024
# A year: finite, and far within what timers, datetimes and activeDeadlineSeconds hold.
MAX_TIMEOUT_SECONDS: Final = 365 * 24 * 3600
MAX_ATTEMPTS: Final = 100
MAX_PROVIDER_NAME: Final = 63
# Env names a job may not take from a Secret: the agent's own variables.
RESERVED_ENV_PREFIX: Final = "HODEI_"


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


def _shown(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:60] + f"... ({len(text)} characters)"


def _utf8_size(field: str, text: str) -> int:
    """Bytes of ``text`` in UTF-8; raises SpecError for text that has no UTF-8 form (lone
    surrogates, e.g. from an undecodable command line) or that holds NUL, which no C
    string (argv, environment, file name) can carry."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise SpecError(f"{field}: not valid UTF-8 text") from None
    if "\0" in text:
        raise SpecError(f"{field}: contains a NUL character, which exec cannot pass")
    return size


def _argument(field: str, text: str) -> int:
    size = _utf8_size(field, text)
    if size > MAX_ARGUMENT_BYTES:
        raise SpecError(
            f"{field}: {size} bytes; at most {MAX_ARGUMENT_BYTES} bytes per argument "
            "(the kernel's limit for one exec argument or environment string)"
        )
    return size


def _named(field: str, check: Callable[[str], str], text: str, *, of: str = "") -> int:
    """Size of a name checked by ``check``; ``field`` reads "env: name", "labels: key"..."""
    size = _utf8_size(field, text)
    try:
        check(text)
    except NameRuleError as exc:
        raise SpecError(f"{field} {_shown(text)}{of} is not valid; {exc}") from None
    return size


@dataclass(frozen=True)
class SecretKeyRef:
    """A value the job reads from key ``key`` of the Kubernetes Secret ``secret``.

    Only the reference travels through Hodei; the kubelet resolves the value
    (``env[].valueFrom.secretKeyRef``) in the workers' namespace.
    """

    secret: str
    key: str

    def __str__(self) -> str:
        return f"{self.secret}:{self.key}"


def _secret_env_size(name: str, ref: SecretKeyRef, env: Mapping[str, str]) -> int:
    size = _named("secret_env: name", check_env_name, name)
    if name.startswith(RESERVED_ENV_PREFIX):
        raise SpecError(
            f"secret_env: name {_shown(name)} is reserved for Hodei; "
            f"accepted: names not starting with {RESERVED_ENV_PREFIX}"
        )
    if name in env:
        raise SpecError(f"secret_env: name {_shown(name)} is also given in env; give it once")
    size += _named("secret_env: secret", check_dns_subdomain, ref.secret, of=f" of {name}")
    return size + _named("secret_env: key", check_config_key, ref.key, of=f" of {name}")


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
    profile: str | None = None  # Kubernetes: the operator's pod profile; None: its default
    secret_env: Mapping[str, SecretKeyRef] = field(default_factory=dict)  # Kubernetes only
    stdin: bool = False  # the client streams stdin (hodei run -i); else the job's is empty
    tty: bool = False  # run on a pseudo-terminal (hodei run -t); stdout and stderr merge
    tty_size: TerminalSize | None = None  # the pseudo-terminal's first size
    workdir: str | None = None  # absolute working directory; None: the worker's own

    def validated(self) -> JobSpec:
        """Return self if every field is acceptable, else raise :class:`SpecError`.

        This is the one check between any client and the rest of the path: it accepts
        what ``execve``, the store and Kubernetes accept, within the limits above."""
        size = self._command_size()
        for key, value in self.env.items():
            size += _named("env: name", check_env_name, key)
            _argument(f"env {key}", f"{key}={value}")
            size += _utf8_size(f"env {key}", value)
        for key, value in self.labels.items():
            size += _named("labels: key", check_label_key, key)
            size += _named("labels: value", check_label_value, value, of=f" of key {key!r}")
        if self.image is not None:
            size += _named("image:", check_image, self.image)
        if self.provider is not None:
            size += _utf8_size("provider", self.provider)
            if len(self.provider) > MAX_PROVIDER_NAME:
                raise SpecError(f"provider: at most {MAX_PROVIDER_NAME} characters")
        if self.profile is not None:
            size += _named("profile:", check_dns_label, self.profile)
        for name, ref in self.secret_env.items():
            size += _secret_env_size(name, ref, self.env)
        if size > MAX_SPEC_BYTES:
            raise SpecError(
                f"spec: {size} bytes of command, env, labels and image; at most {MAX_SPEC_BYTES}"
            )
        if self.workdir is not None:
            size += _utf8_size("workdir", self.workdir)
            if not self.workdir.startswith("/"):
                raise SpecError(f"workdir: {_shown(self.workdir)} is not an absolute path")
        if self.tty_size is not None and not self.tty:
            raise SpecError("tty_size: given for a job that has no terminal (tty is false)")
        self._check_numbers()
        self.resources.validated()
        return self

    def _command_size(self) -> int:
        if self.shell is not None and self.command:
            raise SpecError("command: give either an argv command or a shell script, not both")
        if self.shell is not None:
            if not self.shell.strip():
                raise SpecError("shell: empty script")
            return _argument("shell", self.shell)
        if not self.command:
            raise SpecError("command: empty; give the command to run after `--`")
        if not self.command[0]:
            raise SpecError("command[0]: empty; the program to run must be named")
        return sum(_argument(f"command[{i}]", arg) for i, arg in enumerate(self.command))

    def _check_numbers(self) -> None:
        timeout = self.timeout_seconds
        if timeout is not None and not (
            isinstance(timeout, int | float) and 0 < timeout <= MAX_TIMEOUT_SECONDS
        ):
            raise SpecError(
                f"timeout: {timeout!r} is not accepted; a number of seconds > 0 "
                f"and at most {MAX_TIMEOUT_SECONDS} (365 days)"
            )
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS:
            raise SpecError(f"max_attempts: {self.max_attempts} must be between 1 and 100")

    def argv(self) -> tuple[str, ...]:
        """The argv the worker executes: the command, or ``/bin/sh -c SCRIPT``."""
        if self.shell is not None:
            return ("/bin/sh", "-c", self.shell)
        return self.command


@dataclass(frozen=True)
class Attempt:
    """One ended attempt of a job: which worker ran it and why it ended.

    ``disruption`` marks an attempt the platform took away (evicted, preempted, worker
    lost): those are retried on a budget of their own and never use up the job's
    ``max_attempts``.
    """

    number: int
    worker_id: WorkerId | None
    reason: Reason | None
    message: str | None
    finished_at: datetime | None = None
    disruption: bool = False


@dataclass(frozen=True)
class Job:
    """The control plane's record of a job. Immutable: changes produce a new value."""

    id: JobId
    spec: JobSpec
    state: JobState
    created_at: datetime
    attempt: int = 0
    exit_code: int | None = None
    reason: Reason | None = None
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
    # When a cancel was asked of a job whose agent must stop it. Persisted, so a cancel
    # the agent never heard of is still carried out after a restart.
    cancel_requested_at: datetime | None = None
    attempts: tuple[Attempt, ...] = ()  # ended attempts, oldest first

    @property
    def disruptions(self) -> int:
        """How many ended attempts the platform took away (see :class:`Attempt`)."""
        return sum(1 for attempt in self.attempts if attempt.disruption)

    def moved_to(self, state: JobState, **changes: object) -> Job:
        """A copy in ``state`` (checked by :func:`transition`) with ``changes`` applied.

        The waiting reason belongs to the state it was given in, so it is cleared unless
        ``changes`` sets a new one."""
        changes.setdefault("waiting_reason", None)
        return replace(self, state=transition(self.state, state), **changes)  # type: ignore[arg-type]

    def waiting(self, reason: str | None) -> Job:
        """A copy that says why it still waits (None: it no longer waits for anything)."""
        return replace(self, waiting_reason=reason or None)

"""The small interface every provider implements, and the values that cross it.

The control plane asks a provider for one worker per job and learns about the worker's
life from status updates the provider pushes (for Kubernetes, from its shared watch).
The interface is shaped for pods from the start: a worker can sit in PENDING with a
diagnosis (unschedulable, image pull), can fail before its agent ever registers, and
can be listed after a control-plane restart for reconciliation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import JobSpec, Resources, SecretKeyRef
from hodei.domain.reasons import PROVIDER_ERROR, Reason
from hodei.domain.workers import WorkerPhase as WorkerPhase  # re-exported: part of this interface


@dataclass(frozen=True)
class AgentCertificate:
    """A client certificate for one worker's agent (PEM), when the control plane requires
    client certificates (mTLS); the agent gets it as HODEI_TLS_CLIENT_CERT/_KEY."""

    cert_pem: str
    key_pem: str


def agent_certificate_env(certificate: AgentCertificate | None) -> dict[str, str]:
    """The agent's variables for its client certificate (none without mTLS)."""
    if certificate is None:
        return {}
    return {
        "HODEI_TLS_CLIENT_CERT": certificate.cert_pem,
        "HODEI_TLS_CLIENT_KEY": certificate.key_pem,
    }


@dataclass(frozen=True)
class WorkerRequest:
    """Everything a provider needs to start the worker for one job attempt."""

    worker_id: WorkerId
    job_id: JobId
    token: str
    server_address: str  # what the worker's agent dials (HODEI_SERVER_ADDRESS)
    image: str | None = None
    resources: Resources = field(default_factory=Resources)
    timeout_seconds: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    profile: str | None = None
    secret_env: Mapping[str, SecretKeyRef] = field(default_factory=dict)
    agent_certificate: AgentCertificate | None = None  # mTLS only
    # The control plane's Unix socket for agents on its own host (HODEI_SERVER_SOCKET);
    # a provider whose workers run elsewhere ignores it.
    server_socket: str | None = None


@dataclass(frozen=True)
class WorkerStatus:
    """A provider's view of one worker; ``reason``/``message`` carry the diagnosis."""

    worker_id: WorkerId
    job_id: JobId | None
    phase: WorkerPhase
    reason: Reason | None = None
    message: str | None = None
    exit_code: int | None = None
    name: str | None = None  # pod name or process id, for `hodei workers list`


@dataclass(frozen=True)
class Origin:
    """Where a worker's agent may connect from, as its provider knows it now.

    A pod's agent must connect from the pod's own IP while the pod is Running, as the
    provider's watch reports them: knowing the pod's spec (its one-time token) is then not
    enough to register as that worker. A local process is not bound (``bound`` False).
    """

    bound: bool = False
    running: bool = False  # the worker's pod is Running
    address: str | None = None  # the pod's IP (``status.podIP``)


ANYWHERE = Origin()


@dataclass(frozen=True)
class Health:
    ok: bool
    message: str = ""


StatusListener = Callable[[WorkerStatus], Awaitable[None]]


class Provider(Protocol):
    """Creates and removes workers; reports their status through the listener."""

    @property
    def name(self) -> str:
        """``local`` or ``kubernetes``: what users pass to ``hodei run --provider``."""
        ...

    @property
    def capacity(self) -> int | None:
        """Maximum concurrent workers, or ``None`` for no cap."""
        ...

    def check_spec(self, spec: JobSpec) -> None:
        """Refuse at submit what this provider cannot run (raises SpecError naming the field)."""
        ...

    async def start(self, listener: StatusListener) -> None:
        """Connect, begin watching, and push every status change to ``listener``."""
        ...

    async def close(self) -> None:
        """Stop watching and release connections; workers are left as they are."""
        ...

    async def create_worker(self, request: WorkerRequest) -> WorkerStatus:
        """Start a worker; idempotent for the same worker id. Raises ProviderError."""
        ...

    async def delete_worker(self, worker_id: WorkerId) -> None:
        """Remove the worker (kill the process, delete the pod); absent is not an error."""
        ...

    def status(self, worker_id: WorkerId) -> WorkerStatus | None:
        """The last known status, from the provider's cache (no I/O)."""
        ...

    async def origin(self, worker_id: WorkerId, *, wait: float) -> Origin:
        """Where the worker's agent may connect from. A bound worker not yet reported
        Running with an address is waited for, up to ``wait`` seconds, then returned as
        it is (no API call: from the provider's watch)."""
        ...

    async def list_workers(self) -> list[WorkerStatus]:
        """Workers this control plane instance owns, for reconciliation after a restart."""
        ...

    async def health(self) -> Health:
        """Whether the provider can do its job now (API reachable, permissions present)."""
        ...


class ProviderError(RuntimeError):
    """A provider could not do what was asked; ``reason`` is a failure reason word."""

    def __init__(
        self, message: str, *, reason: Reason = PROVIDER_ERROR, retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable

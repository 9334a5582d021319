"""Typed settings parsed once from the environment and passed down explicitly.

Nothing reads ``os.environ`` at import time: callers hand a mapping to one of the
``load_*`` functions (the CLI passes ``os.environ``; tests pass a dict). An invalid
value raises :class:`SettingsError` naming the variable, the value and what is accepted,
so startup stops with a message a person can act on. The same keys work from the
in-cluster ConfigMap, which reaches the process as environment variables (``envFrom``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from hodei.config import parsers

T = TypeVar("T")

DEFAULT_IN_CLUSTER_SERVER_ADDRESS = "hodei-control-plane.hodei-system.svc:50051"


class SettingsError(ValueError):
    """An environment variable holds a value Hodei cannot use."""

    def __init__(self, variable: str, value: str, accepted: str) -> None:
        super().__init__(f"{variable}={value!r} is invalid; {accepted}")
        self.variable = variable
        self.value = value
        self.accepted = accepted


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise SettingsError(name, raw, str(exc)) from None


def _optional(env: Mapping[str, str], name: str, parse: Callable[[str], T]) -> T | None:
    return _read(env, name, parse, None)


@dataclass(frozen=True)
class KubernetesSettings:
    """The Kubernetes provider's variables; defaults are the documented ones."""

    enabled: bool = False
    namespace: str = "hodei-workers"
    kubeconfig: str | None = None
    context: str | None = None
    service_account: str = "hodei-worker"
    image_pull_secrets: tuple[str, ...] = ()
    default_cpu_request: str = "100m"
    default_memory_request: str = "128Mi"
    default_cpu_limit: str = "1000m"
    default_memory_limit: str = "512Mi"
    worker_image: str = "hodei:latest"
    max_workers: int = 100
    pending_timeout: float = 300.0
    qps: float = 20.0
    burst: int = 40
    pod_templates_dir: str | None = None  # directory of NAME.yaml operator pod profiles
    tls_ca_configmap: str | None = None  # ConfigMap (key ca.crt) worker pods verify TLS with
    worker_tls: bool = False  # the control plane serves TLS: pods dial it with TLS


def load_kubernetes_settings(env: Mapping[str, str]) -> KubernetesSettings:
    """Parse the ``HODEI_K8S_*`` variables (and ``HODEI_WORKER_IMAGE``)."""
    d = KubernetesSettings()
    return KubernetesSettings(
        enabled=_read(env, "HODEI_K8S_ENABLED", parsers.boolean, d.enabled),
        namespace=_read(env, "HODEI_K8S_NAMESPACE", parsers.dns_label, d.namespace),
        kubeconfig=_optional(env, "HODEI_K8S_KUBECONFIG", parsers.non_empty),
        context=_optional(env, "HODEI_K8S_CONTEXT", parsers.non_empty),
        service_account=_read(
            env, "HODEI_K8S_SERVICE_ACCOUNT", parsers.dns_subdomain, d.service_account
        ),
        image_pull_secrets=_read(env, "HODEI_K8S_IMAGE_PULL_SECRET", parsers.name_list, ()),
        default_cpu_request=_read(
            env, "HODEI_K8S_DEFAULT_CPU_REQUEST", parsers.quantity, d.default_cpu_request
        ),
        default_memory_request=_read(
            env, "HODEI_K8S_DEFAULT_MEMORY_REQUEST", parsers.quantity, d.default_memory_request
        ),
        default_cpu_limit=_read(
            env, "HODEI_K8S_DEFAULT_CPU_LIMIT", parsers.quantity, d.default_cpu_limit
        ),
        default_memory_limit=_read(
            env, "HODEI_K8S_DEFAULT_MEMORY_LIMIT", parsers.quantity, d.default_memory_limit
        ),
        worker_image=_read(env, "HODEI_WORKER_IMAGE", parsers.non_empty, d.worker_image),
        max_workers=_read(env, "HODEI_K8S_MAX_WORKERS", parsers.positive_int, d.max_workers),
        pending_timeout=_read(
            env, "HODEI_K8S_PENDING_TIMEOUT", parsers.positive_float, d.pending_timeout
        ),
        qps=_read(env, "HODEI_K8S_QPS", parsers.positive_float, d.qps),
        burst=_read(env, "HODEI_K8S_BURST", parsers.positive_int, d.burst),
        pod_templates_dir=_optional(env, "HODEI_K8S_POD_TEMPLATES_DIR", parsers.non_empty),
        tls_ca_configmap=_optional(env, "HODEI_K8S_TLS_CA_CONFIGMAP", parsers.dns_subdomain),
    )


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate (PEM files, re-read when they change) and, for mTLS, the
    CA that client certificates must chain to."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None


@dataclass(frozen=True)
class ClientTls:
    """How a client (the CLI or an agent) speaks TLS: the CA that signs the server's
    certificate (None: the system's roots) and, for mTLS, its own certificate."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    # An agent's certificate as PEM text (HODEI_TLS_CLIENT_CERT/_KEY, from its provider).
    cert_pem: str | None = None
    key_pem: str | None = None


def _certificate_pair(env: Mapping[str, str]) -> tuple[str, str] | None:
    """``HODEI_TLS_CERT_FILE`` and ``HODEI_TLS_KEY_FILE``: both, or neither (None)."""
    cert = _optional(env, "HODEI_TLS_CERT_FILE", parsers.non_empty)
    key = _optional(env, "HODEI_TLS_KEY_FILE", parsers.non_empty)
    if cert is not None and key is not None:
        return cert, key
    if cert is None and key is None:
        return None
    raise SettingsError(
        "HODEI_TLS_KEY_FILE" if key is None else "HODEI_TLS_CERT_FILE",
        "",
        "accepted: a PEM file; set HODEI_TLS_CERT_FILE and HODEI_TLS_KEY_FILE together",
    )


def load_server_tls(env: Mapping[str, str]) -> ServerTls | None:
    """``HODEI_TLS_CERT_FILE`` + ``HODEI_TLS_KEY_FILE`` (both or neither) and
    ``HODEI_TLS_CLIENT_CA_FILE`` (only with a certificate); None when TLS is off."""
    pair = _certificate_pair(env)
    client_ca = _optional(env, "HODEI_TLS_CLIENT_CA_FILE", parsers.non_empty)
    if pair is None:
        if client_ca is not None:
            raise SettingsError(
                "HODEI_TLS_CLIENT_CA_FILE",
                client_ca,
                "accepted only with TLS on: set HODEI_TLS_CERT_FILE and HODEI_TLS_KEY_FILE too",
            )
        return None
    return ServerTls(*pair, client_ca)


def _worker_tls(env: Mapping[str, str]) -> ClientTls | None:
    """What the server hands its workers: TLS with HODEI_TLS_CA_FILE (or system roots)
    whenever the server itself serves TLS."""
    if load_server_tls(env) is None:
        return None
    return ClientTls(ca_file=_optional(env, "HODEI_TLS_CA_FILE", parsers.non_empty))


def load_client_tls(env: Mapping[str, str]) -> ClientTls | None:
    """The client side of TLS, for the CLI and the agents; None: plaintext.

    ``HODEI_TLS`` turns TLS on or off; unset, it is on when ``HODEI_TLS_CA_FILE`` or a
    client certificate (``HODEI_TLS_CERT_FILE`` + ``HODEI_TLS_KEY_FILE``, for mTLS) is set.
    """
    ca = _optional(env, "HODEI_TLS_CA_FILE", parsers.non_empty)
    pair = _certificate_pair(env)
    cert_pem = _optional(env, "HODEI_TLS_CLIENT_CERT", parsers.non_empty)
    key_pem = _optional(env, "HODEI_TLS_CLIENT_KEY", parsers.non_empty)
    if (cert_pem is None) != (key_pem is None):
        raise SettingsError(
            "HODEI_TLS_CLIENT_KEY" if key_pem is None else "HODEI_TLS_CLIENT_CERT",
            "",
            "accepted: PEM text; HODEI_TLS_CLIENT_CERT and HODEI_TLS_CLIENT_KEY go together",
        )
    wanted = ca is not None or pair is not None
    if not _read(env, "HODEI_TLS", parsers.boolean, wanted):
        return None
    cert, key = pair or (None, None)
    return ClientTls(ca, cert, key, cert_pem, key_pem)


@dataclass(frozen=True)
class ServerSettings:
    """The control plane's variables (``hodei server`` and the embedded one)."""

    grpc_address: str = "127.0.0.1:50051"
    http_address: str = "127.0.0.1:9090"
    database_url: str | None = None  # None: SQLite under the user's data directory
    api_token: str | None = None
    insecure: bool = False  # listen beyond loopback without TLS or a token, on purpose
    tls: ServerTls | None = None  # None: plaintext (loopback only, or HODEI_INSECURE)
    worker_tls: ClientTls | None = None  # how workers verify this server (HODEI_TLS_CA_FILE)
    server_address: str | None = None  # what workers dial; None: derived at startup
    instance: str | None = None  # hodei.io/instance; None: persisted id from the store
    local_enabled: bool = True
    local_max_workers: int = 16
    # Attempts a job may lose to the platform (evicted, preempted, worker lost) and still
    # be retried; they do not use up the job's own max_attempts.
    platform_retries: int = 5
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)


def load_server_settings(env: Mapping[str, str]) -> ServerSettings:
    """Parse every control-plane variable; raises :class:`SettingsError` on the first bad one."""
    d = ServerSettings()
    tls = load_server_tls(env)
    return ServerSettings(
        grpc_address=_read(env, "HODEI_GRPC_ADDRESS", parsers.host_port, d.grpc_address),
        http_address=_read(env, "HODEI_HTTP_ADDRESS", parsers.host_port, d.http_address),
        database_url=_optional(env, "HODEI_DATABASE_URL", parsers.database_url),
        api_token=_optional(env, "HODEI_API_TOKEN", parsers.non_empty),
        insecure=_read(env, "HODEI_INSECURE", parsers.boolean, d.insecure),
        tls=tls,
        worker_tls=_worker_tls(env),
        server_address=_optional(env, "HODEI_SERVER_ADDRESS", parsers.host_port),
        instance=_optional(env, "HODEI_INSTANCE", parsers.dns_label),
        local_enabled=_read(env, "HODEI_LOCAL_ENABLED", parsers.boolean, d.local_enabled),
        local_max_workers=_read(
            env, "HODEI_LOCAL_MAX_WORKERS", parsers.positive_int, d.local_max_workers
        ),
        platform_retries=_read(
            env, "HODEI_PLATFORM_RETRIES", parsers.non_negative_int, d.platform_retries
        ),
        kubernetes=replace(load_kubernetes_settings(env), worker_tls=tls is not None),
    )


def load_database_url(env: Mapping[str, str]) -> str | None:
    """``HODEI_DATABASE_URL`` alone (None: the default SQLite file), for commands that
    read the store without being a control plane."""
    return _optional(env, "HODEI_DATABASE_URL", parsers.database_url)


@dataclass(frozen=True)
class ClientSettings:
    """The CLI's variables: where the control plane is and how to authenticate."""

    server: str | None = None  # None: `hodei run` starts an embedded control plane
    api_token: str | None = None
    tls: ClientTls | None = None  # None: plaintext


def load_client_settings(env: Mapping[str, str]) -> ClientSettings:
    """Parse ``HODEI_SERVER``, ``HODEI_API_TOKEN`` and the client side of TLS."""
    return ClientSettings(
        server=_optional(env, "HODEI_SERVER", parsers.host_port),
        api_token=_optional(env, "HODEI_API_TOKEN", parsers.non_empty),
        tls=load_client_tls(env),
    )


@dataclass(frozen=True)
class WorkerSettings:
    """The worker agent's three required variables, TLS when the provider sets it, and
    where its job runs.

    ``launcher_dir`` (``HODEI_LAUNCHER_DIR``, set by the Kubernetes provider for a job in
    its own image) is the directory shared with the launcher in the job's container;
    unset, the agent runs the command itself. ``socket`` (``HODEI_SERVER_SOCKET``, set by
    the local provider) is the control plane's Unix socket on this host, dialled before
    ``server_address``.
    """

    server_address: str
    worker_id: str
    token: str
    tls: ClientTls | None = None  # HODEI_TLS / HODEI_TLS_CA_FILE, set by the provider
    launcher_dir: str | None = None
    socket: str | None = None


def load_worker_settings(env: Mapping[str, str]) -> WorkerSettings:
    """Parse the agent's variables; a missing one is an error naming it."""
    values = {}
    for name in ("HODEI_SERVER_ADDRESS", "HODEI_WORKER_ID", "HODEI_WORKER_TOKEN"):
        raw = env.get(name, "")
        if not raw.strip():
            raise SettingsError(name, raw, "accepted: a non-empty value (set by the provider)")
        values[name] = raw.strip()
    return WorkerSettings(
        server_address=_read(env, "HODEI_SERVER_ADDRESS", parsers.host_port, ""),
        worker_id=values["HODEI_WORKER_ID"],
        token=values["HODEI_WORKER_TOKEN"],
        tls=load_client_tls(env),
        launcher_dir=_optional(env, "HODEI_LAUNCHER_DIR", _absolute_path),
        socket=_optional(env, "HODEI_SERVER_SOCKET", _absolute_path),
    )


def _absolute_path(text: str) -> str:
    if not text.startswith("/"):
        raise ValueError("accepted: an absolute path")
    return text

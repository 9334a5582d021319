"""What a correct ``deploy/kubernetes`` install looks like, and the checks of ``hodei k8s verify``.

The README's verification steps, automated: namespaces, ServiceAccounts, Role,
RoleBinding, NetworkPolicies and ConfigMap present and as shipped, and every permission
the provider needs allowed for the control plane's identity (plus a few it must not
have). Everything here is pure: :mod:`._client_verify` reads the cluster into a
:class:`ClusterState` of plain JSON-shaped dicts, :func:`run_checks` judges it and returns
one :class:`CheckResult` per check, each failure carrying the command that fixes it.
The expected objects are spelled out here (the wheel does not ship the manifests); the
deploy tests prove they agree with ``deploy/kubernetes/*.yaml``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hodei.config.settings import KubernetesSettings, SettingsError, load_server_settings

JsonObject = dict[str, Any]

SYSTEM_NAMESPACE = "hodei-system"
CONTROL_PLANE_ACCOUNT = "hodei-control-plane"
PROVIDER_ROLE = "hodei-provider"
PROVIDER_CONFIG = "hodei-provider-config"
CONTROL_PLANE = "hodei-control-plane"  # Deployment and Service
API_TOKEN_SECRET = "hodei-api-token"
POD_TEMPLATES = "hodei-pod-templates"  # the operator's pod profiles (ConfigMap)
GRPC_PORT = 50051
HTTP_PORT = 9090

NAMESPACE_LABELS: Mapping[str, str] = {
    "app.kubernetes.io/name": "hodei",
    "app.kubernetes.io/part-of": "hodei",
}
PSS_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
WORKER_POD_SELECTOR: Mapping[str, str] = {
    "app.kubernetes.io/name": "hodei",
    "app.kubernetes.io/component": "worker",
}
CONTROL_PLANE_POD_SELECTOR: Mapping[str, str] = {
    "app.kubernetes.io/name": "hodei",
    "app.kubernetes.io/component": "control-plane",
}
# The seed README's three rules, exactly: all the Kubernetes provider does.
PROVIDER_RULES: tuple[JsonObject, ...] = (
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["create", "get", "list", "watch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["get"]},
)
MANIFESTS = "deploy/kubernetes"


@dataclass(frozen=True)
class Layout:
    """The names an install uses; the workers' side follows the provider's settings."""

    workers_namespace: str = "hodei-workers"
    worker_account: str = "hodei-worker"
    system_namespace: str = SYSTEM_NAMESPACE
    control_plane_account: str = CONTROL_PLANE_ACCOUNT

    @classmethod
    def from_settings(cls, settings: KubernetesSettings) -> Layout:
        """The layout the provider configured by ``settings`` expects."""
        return cls(workers_namespace=settings.namespace, worker_account=settings.service_account)

    @property
    def control_plane_user(self) -> str:
        """The Kubernetes user name of the control plane's ServiceAccount."""
        return f"system:serviceaccount:{self.system_namespace}:{self.control_plane_account}"


@dataclass(frozen=True)
class Access:
    """One permission question: may the control plane do ``verb`` on ``resource``?"""

    verb: str
    resource: str
    namespace: str
    subresource: str = ""
    group: str = ""
    allowed: bool = True  # the expected answer

    def describe(self) -> str:
        """``create pods in hodei-workers``; ``get pods/log in hodei-workers``."""
        name = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {name} in {self.namespace}"


def expected_access(layout: Layout) -> tuple[Access, ...]:
    """Every permission the provider needs, then some it must not have."""
    ns = layout.workers_namespace
    needed = [Access(verb, "pods", ns) for verb in ("create", "get", "list", "watch", "delete")] + [
        Access("get", "pods", ns, "log"),
        Access("get", "pods", ns, "status"),
    ]
    denied = [
        Access("create", "pods", ns, "exec", allowed=False),
        Access("patch", "pods", ns, allowed=False),
        Access("get", "secrets", ns, allowed=False),
        Access("create", "pods", "default", allowed=False),
    ]
    return (*needed, *denied)


def expected_network_policies(layout: Layout) -> dict[str, JsonObject]:
    """Name -> spec of the NetworkPolicies in the workers namespace."""
    control_plane = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": layout.system_namespace}
        },
        "podSelector": {"matchLabels": dict(CONTROL_PLANE_POD_SELECTOR)},
    }
    return {
        "hodei-default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "hodei-worker-egress": {
            "podSelector": {"matchLabels": dict(WORKER_POD_SELECTOR)},
            "policyTypes": ["Ingress", "Egress"],
            "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"to": [control_plane], "ports": [{"protocol": "TCP", "port": GRPC_PORT}]},
                {"ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }


@dataclass(frozen=True)
class ProfileFinding:
    """One operator pod profile and the API server's answer to a dry-run create of its pod.

    ``admitted`` is None when the profile could not be tried (refused before, see
    ``message``)."""

    name: str
    source: str
    admitted: bool | None
    message: str = ""


@dataclass(frozen=True)
class ProfileFindings:
    """Where the profiles were read from, each profile's finding, or why none could be read."""

    where: str  # a directory, a ConfigMap, or "" when none is configured
    found: Sequence[ProfileFinding] = ()
    error: str = ""  # the loading error that stops the control plane, if any
    note: str = ""  # why none could be looked at (e.g. not readable), for the skip line


@dataclass(frozen=True)
class ClusterState:
    """What the reads found. ``None`` means "not found"; names are the layout's."""

    namespaces: Mapping[str, JsonObject | None]
    service_accounts: Mapping[str, JsonObject | None]  # keyed "namespace/name"
    role: JsonObject | None
    role_binding: JsonObject | None
    network_policies: Mapping[str, JsonObject]  # those present in the workers namespace
    config_map: JsonObject | None
    access: Mapping[Access, bool]
    access_identity: str  # whose access was reviewed, for the lines
    deployment: JsonObject | None = None
    service: JsonObject | None = None
    api_token_secret: JsonObject | None = None
    secret_readable: bool = True
    notes: Sequence[str] = field(default_factory=tuple)
    profiles: ProfileFindings | None = None  # None: not looked at


class Status(enum.Enum):
    """How a check ended; only FAIL makes the command exit non-zero."""

    OK = "ok"
    FAIL = "FAIL"
    WARN = "warn"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    """One line of output: what was checked, what was found and, on failure, the fix."""

    status: Status
    subject: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``ok    Role hodei-provider in hodei-workers: the three provider rules``."""
        text = f"{self.status.value:<5} {self.subject}: {self.detail}"
        return f"{text}\n      fix: {self.fix}" if self.fix else text


def exit_code(results: Sequence[CheckResult]) -> int:
    """0 when nothing failed, 1 otherwise."""
    return 1 if any(r.status is Status.FAIL for r in results) else 0


def _apply(manifest: str) -> str:
    return f"kubectl apply -f {MANIFESTS}/{manifest} (or {MANIFESTS}/install.sh)"


def _labels(obj: JsonObject) -> Mapping[str, str]:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels if isinstance(labels, dict) else {}


def check_namespaces(layout: Layout, state: ClusterState) -> list[CheckResult]:
    """Both namespaces exist with Hodei's labels; the workers' one enforces "restricted"."""
    results = []
    for name in (layout.system_namespace, layout.workers_namespace):
        subject = f"Namespace {name}"
        ns = state.namespaces.get(name)
        if ns is None:
            results.append(CheckResult(Status.FAIL, subject, "not found", _apply("namespace.yaml")))
            continue
        wanted = dict(NAMESPACE_LABELS)
        if name == layout.workers_namespace:
            wanted[PSS_ENFORCE_LABEL] = "restricted"
        labels = _labels(ns)
        wrong = sorted(k for k, v in wanted.items() if labels.get(k) != v)
        if wrong:
            detail = "missing or wrong labels: " + ", ".join(f"{k}={wanted[k]}" for k in wrong)
            results.append(CheckResult(Status.FAIL, subject, detail, _apply("namespace.yaml")))
        else:
            results.append(CheckResult(Status.OK, subject, "present, labels as expected"))
    return results


def check_service_accounts(layout: Layout, state: ClusterState) -> list[CheckResult]:
    """The workers' and the control plane's ServiceAccounts exist; workers get no token."""
    results = []
    wanted = (
        (layout.workers_namespace, layout.worker_account, False),
        (layout.system_namespace, layout.control_plane_account, None),
    )
    for namespace, name, automount in wanted:
        subject = f"ServiceAccount {name} in {namespace}"
        sa = state.service_accounts.get(f"{namespace}/{name}")
        if sa is None:
            results.append(CheckResult(Status.FAIL, subject, "not found", _apply("rbac.yaml")))
        elif automount is False and sa.get("automountServiceAccountToken") is not False:
            detail = "automountServiceAccountToken is not false (worker pods would get a token)"
            results.append(CheckResult(Status.FAIL, subject, detail, _apply("rbac.yaml")))
        else:
            results.append(CheckResult(Status.OK, subject, "present"))
    return results


def _rule_key(rule: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        tuple(sorted(rule.get(key) or ()))
        for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs")
    )


def check_role(layout: Layout, state: ClusterState) -> list[CheckResult]:
    """The Role holds exactly the seed's three rules."""
    subject = f"Role {PROVIDER_ROLE} in {layout.workers_namespace}"
    if state.role is None:
        return [CheckResult(Status.FAIL, subject, "not found", _apply("rbac.yaml"))]
    found = sorted(_rule_key(rule) for rule in state.role.get("rules") or ())
    if found != sorted(_rule_key(rule) for rule in PROVIDER_RULES):
        detail = "rules differ from the provider's three (pods, pods/log, pods/status)"
        return [CheckResult(Status.FAIL, subject, detail, _apply("rbac.yaml"))]
    return [CheckResult(Status.OK, subject, "exactly the provider's three rules")]


def check_role_binding(layout: Layout, state: ClusterState) -> list[CheckResult]:
    """The RoleBinding grants the Role to the control plane's ServiceAccount."""
    subject = f"RoleBinding {PROVIDER_ROLE} in {layout.workers_namespace}"
    binding = state.role_binding
    if binding is None:
        return [CheckResult(Status.FAIL, subject, "not found", _apply("rbac.yaml"))]
    ref = binding.get("roleRef") or {}
    wanted_subject = {
        "kind": "ServiceAccount",
        "name": layout.control_plane_account,
        "namespace": layout.system_namespace,
    }
    subjects = [{k: s.get(k) for k in wanted_subject} for s in binding.get("subjects") or ()]
    if ref.get("kind") != "Role" or ref.get("name") != PROVIDER_ROLE:
        detail = f"roleRef is {ref.get('kind')}/{ref.get('name')}, not Role/{PROVIDER_ROLE}"
        return [CheckResult(Status.FAIL, subject, detail, _apply("rbac.yaml"))]
    if wanted_subject not in subjects:
        detail = f"does not bind {layout.system_namespace}/{layout.control_plane_account}"
        return [CheckResult(Status.FAIL, subject, detail, _apply("rbac.yaml"))]
    return [CheckResult(Status.OK, subject, f"binds {layout.control_plane_user}")]


def _pruned(value: Any) -> Any:
    """Drop empty lists/dicts/None so a server's omissions compare equal to the manifest."""
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def check_network_policies(layout: Layout, state: ClusterState) -> list[CheckResult]:
    """Each shipped NetworkPolicy is present with the shipped spec."""
    results = []
    for name, spec in expected_network_policies(layout).items():
        subject = f"NetworkPolicy {name} in {layout.workers_namespace}"
        found = state.network_policies.get(name)
        if found is None:
            fix = _apply("network-policy.yaml")
            results.append(CheckResult(Status.FAIL, subject, "not found", fix))
        elif _pruned(found.get("spec") or {}) != _pruned(spec):
            fix = _apply("network-policy.yaml")
            results.append(
                CheckResult(Status.FAIL, subject, "spec differs from the shipped one", fix)
            )
        else:
            results.append(CheckResult(Status.OK, subject, "present, as shipped"))
    return results


def check_config_map(layout: Layout, state: ClusterState) -> list[CheckResult]:
    """The provider's ConfigMap exists, parses, and names this layout's namespace and account."""
    subject = f"ConfigMap {PROVIDER_CONFIG} in {layout.system_namespace}"
    edit = f"kubectl -n {layout.system_namespace} edit configmap {PROVIDER_CONFIG}"
    if state.config_map is None:
        return [CheckResult(Status.FAIL, subject, "not found", _apply("configmap.yaml"))]
    data = state.config_map.get("data") or {}
    try:
        settings = load_server_settings(data).kubernetes
    except SettingsError as exc:
        return [CheckResult(Status.FAIL, subject, str(exc), edit)]
    if settings.namespace != layout.workers_namespace:
        detail = f"HODEI_K8S_NAMESPACE is {settings.namespace}, not {layout.workers_namespace}"
        return [CheckResult(Status.FAIL, subject, detail, edit)]
    if settings.service_account != layout.worker_account:
        detail = (
            f"HODEI_K8S_SERVICE_ACCOUNT is {settings.service_account}, not {layout.worker_account}"
        )
        return [CheckResult(Status.FAIL, subject, detail, edit)]
    unknown = sorted(set(data) - set(variables_read()))
    if unknown:
        detail = "keys Hodei does not read: " + ", ".join(unknown)
        return [CheckResult(Status.WARN, subject, detail, edit)]
    return [CheckResult(Status.OK, subject, "present, values valid")]


def check_access(layout: Layout, state: ClusterState) -> list[CheckResult]:
    """Each permission question answered as expected for the reviewed identity."""
    results = []
    for question in expected_access(layout):
        subject = f"{state.access_identity} may {question.describe()}"
        answer = state.access.get(question)
        if answer is None:
            results.append(CheckResult(Status.SKIP, subject, "not reviewed"))
        elif answer == question.allowed:
            results.append(CheckResult(Status.OK, subject, "yes" if answer else "no"))
        elif question.allowed:
            fix = _apply("rbac.yaml")
            results.append(CheckResult(Status.FAIL, subject, "no, but the provider needs it", fix))
        else:
            fix = "remove the extra Role/ClusterRole binding that grants it"
            results.append(CheckResult(Status.WARN, subject, "yes, more than needed", fix))
    return results


def check_control_plane(layout: Layout, state: ClusterState) -> list[CheckResult]:
    """The in-cluster control plane, when deployed: identity, Service ports, token Secret."""
    ns = layout.system_namespace
    subject = f"Deployment {CONTROL_PLANE} in {ns}"
    if state.deployment is None:
        detail = "not deployed (optional: install.sh --with-control-plane)"
        return [CheckResult(Status.SKIP, subject, detail)]
    results = []
    pod_spec = state.deployment.get("spec", {}).get("template", {}).get("spec", {})
    account = pod_spec.get("serviceAccountName")
    if account != layout.control_plane_account:
        detail = f"runs as ServiceAccount {account}, not {layout.control_plane_account}"
        results.append(CheckResult(Status.FAIL, subject, detail, _apply("control-plane.yaml")))
    else:
        results.append(CheckResult(Status.OK, subject, f"runs as {account}"))
    results.append(_check_available(ns, state.deployment))
    results.append(_check_service(ns, state.service))
    results.append(_check_token_secret(ns, state))
    return results


def _check_available(namespace: str, deployment: JsonObject) -> CheckResult:
    """Present is not enough: the Deployment controller must report a replica available
    (``status.availableReplicas`` and the ``Available`` condition, Kubernetes' apps/v1)."""
    subject = f"Deployment {CONTROL_PLANE} in {namespace}"
    desired = (deployment.get("spec") or {}).get("replicas", 1)
    status = deployment.get("status") or {}
    available = status.get("availableReplicas") or 0
    condition = next(
        (c for c in status.get("conditions") or () if c.get("type") == "Available"), None
    )
    if available >= 1 and (condition is None or condition.get("status") == "True"):
        return CheckResult(Status.OK, subject, f"available: {available}/{desired} replicas")
    why = ""
    if condition is not None and (condition.get("reason") or condition.get("message")):
        why = f" ({condition.get('reason') or ''}: {condition.get('message') or ''})"
    fix = (
        f"kubectl -n {namespace} rollout status deployment/{CONTROL_PLANE}; "
        f"kubectl -n {namespace} describe deployment/{CONTROL_PLANE} and "
        f"kubectl -n {namespace} logs deployment/{CONTROL_PLANE} say why"
    )
    detail = f"present but not available: {available}/{desired} replicas available{why}"
    return CheckResult(Status.FAIL, subject, detail, fix)


def _check_service(namespace: str, service: JsonObject | None) -> CheckResult:
    subject = f"Service {CONTROL_PLANE} in {namespace}"
    if service is None:
        return CheckResult(Status.FAIL, subject, "not found", _apply("control-plane.yaml"))
    ports = {p.get("name"): p.get("port") for p in service.get("spec", {}).get("ports") or ()}
    if ports.get("grpc") != GRPC_PORT or ports.get("http") != HTTP_PORT:
        detail = f"ports are {ports}, expected grpc {GRPC_PORT} and http {HTTP_PORT}"
        return CheckResult(Status.FAIL, subject, detail, _apply("control-plane.yaml"))
    return CheckResult(Status.OK, subject, f"grpc {GRPC_PORT}, http {HTTP_PORT}")


def _check_token_secret(namespace: str, state: ClusterState) -> CheckResult:
    subject = f"Secret {API_TOKEN_SECRET} in {namespace}"
    if not state.secret_readable:
        return CheckResult(Status.SKIP, subject, "this user may not read secrets there")
    secret = state.api_token_secret
    if secret is None or "token" not in (secret.get("data") or {}):
        fix = f"{MANIFESTS}/install.sh --with-control-plane (creates it when missing)"
        return CheckResult(Status.FAIL, subject, "missing, or without key 'token'", fix)
    return CheckResult(Status.OK, subject, "present with key 'token'")


PROFILES_DOC = 'deploy/kubernetes/README.md, "Pod profiles"'


def check_profiles(layout: Layout, state: ClusterState) -> list[CheckResult]:
    """Each pod profile found, and whether the API server would admit its worker pod."""
    findings = state.profiles
    if findings is None:
        return []
    if findings.error:
        fix = f"correct the profile ({PROFILES_DOC}); the control plane will not start"
        return [CheckResult(Status.FAIL, "Pod profiles", findings.error, fix)]
    if not findings.found:
        detail = findings.note or (
            f"none in {findings.where}" if findings.where else "none configured"
        )
        return [CheckResult(Status.SKIP, "Pod profiles", detail)]
    results = []
    for finding in findings.found:
        subject = f"Pod profile {finding.name} ({finding.source})"
        if finding.admitted:
            detail = f"its pod would be admitted in {layout.workers_namespace} (server dry run)"
            results.append(CheckResult(Status.OK, subject, detail))
        else:
            fix = f"change the profile ({PROFILES_DOC}) and restart the control plane"
            results.append(CheckResult(Status.FAIL, subject, finding.message, fix))
    return results


def run_checks(layout: Layout, state: ClusterState) -> list[CheckResult]:
    """Every check, in the README's order."""
    return [
        *check_namespaces(layout, state),
        *check_service_accounts(layout, state),
        *check_role(layout, state),
        *check_role_binding(layout, state),
        *check_network_policies(layout, state),
        *check_config_map(layout, state),
        *check_access(layout, state),
        *check_control_plane(layout, state),
        *check_profiles(layout, state),
    ]


class _Recorder(Mapping[str, str]):
    """An empty environment that remembers which variables were asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __getitem__(self, key: str) -> str:
        self.asked.append(key)
        raise KeyError(key)

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


def variables_read() -> tuple[str, ...]:
    """Every variable the control plane's settings code reads, in reading order."""
    recorder = _Recorder()
    load_server_settings(recorder)
    return tuple(dict.fromkeys(recorder.asked))

"""Operator pod profiles: what a template may say, and how it merges into the worker pod.

Operators shape worker pods the way every pod-running platform lets them (node pools,
taints, volumes, secrets, sidecars) by writing a Pod manifest per profile. Hodei's own
pod is built first (:func:`hodei.providers.kubernetes.pods.build_pod`), then a profile is
laid over it by :func:`apply_profile`; both are pure, so each merge rule is tested field
by field. :func:`parse_template` decides once, at startup, whether a manifest is
acceptable: only the fields listed in :data:`POD_SPEC_FIELDS` and :data:`JOB_CONTAINER_FIELDS`
may appear, Hodei's own fields (its labels, the agent's command and ``HODEI_*`` env,
restartPolicy, automountServiceAccountToken, the ServiceAccount) cannot be set, and
security settings may only tighten the Pod Security Standard "restricted" baseline
Hodei guarantees (https://kubernetes.io/docs/concepts/security/pod-security-standards/).
Every refusal is a :class:`TemplateError` naming the file, the field and what is accepted.

The container named :data:`TEMPLATE_JOB_CONTAINER` in a template adds to the container
that runs the job's command: Hodei's ``job`` container when the job names its own image,
else the ``worker`` container where the agent runs the command. Every other container is
a sidecar.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hodei.domain.jobs import RESERVED_ENV_PREFIX, Resources, SecretKeyRef
from hodei.domain.names import (
    NameRuleError,
    check_dns_label,
    check_label_key,
    check_label_value,
)
from hodei.domain.quantities import ACCEPTED_FORMS, QuantityError, validate_quantity
from hodei.providers.kubernetes.pods import (
    CONTAINER_NAME,
    JOB_CONTAINER_NAME,
    LAUNCHER_INIT_NAME,
    request_and_limit,
)

JsonObject = dict[str, Any]

# The name under which a template's container adds to the job's container.
TEMPLATE_JOB_CONTAINER = JOB_CONTAINER_NAME
# Container names Hodei uses or keeps for itself; sidecars must be named otherwise.
RESERVED_CONTAINER_NAMES = frozenset({CONTAINER_NAME, JOB_CONTAINER_NAME, LAUNCHER_INIT_NAME})
RESERVED_NAME_PREFIX = "hodei"

METADATA_FIELDS = ("name", "labels", "annotations")
# Copied from the template as they are: Hodei sets none of them.
SCHEDULING_FIELDS = (
    "nodeSelector",
    "tolerations",
    "affinity",
    "topologySpreadConstraints",
    "priorityClassName",
    "runtimeClassName",
)
POD_SPEC_FIELDS = (
    *SCHEDULING_FIELDS,
    "volumes",
    "imagePullSecrets",
    "securityContext",
    "containers",
    "initContainers",
)
JOB_CONTAINER_FIELDS = ("name", "env", "envFrom", "volumeMounts", "resources", "securityContext")
# Pod spec fields Hodei sets itself, with the reason given when a template tries them.
HODEI_POD_FIELDS: Mapping[str, str] = {
    "restartPolicy": "always Never: a worker runs one job once",
    "automountServiceAccountToken": "always false: worker pods get no API credentials",
    "serviceAccountName": "HODEI_K8S_SERVICE_ACCOUNT",
    "serviceAccount": "HODEI_K8S_SERVICE_ACCOUNT",
    "activeDeadlineSeconds": "the job's --timeout",
    "enableServiceLinks": "always false",
    "nodeName": "the scheduler's choice (use nodeSelector or affinity)",
    "hostNetwork": "forbidden by Pod Security restricted",
    "hostPID": "forbidden by Pod Security restricted",
    "hostIPC": "forbidden by Pod Security restricted",
}
HODEI_CONTAINER_FIELDS: Mapping[str, str] = {
    "image": "the job's --image or HODEI_WORKER_IMAGE",
    "command": "the agent's command",
    "args": "the agent's command",
}
# Hodei's pod labels: the NetworkPolicies and the watch select on them.
RESERVED_LABEL_KEYS = frozenset(
    {"app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/managed-by"}
)
RESERVED_LABEL_PREFIX = "hodei.io/"
# The volume types Pod Security "restricted" allows.
RESTRICTED_VOLUME_TYPES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
_SELINUX_TYPES = ("container_t", "container_init_t", "container_kvm_t", "container_engine_t")
_CONFINED_PROFILES = ("RuntimeDefault", "Localhost")


class TemplateError(ValueError):
    """A pod template Hodei refuses: ``source`` (file), ``field`` (path), what is accepted."""

    def __init__(self, source: str, field: str, problem: str, accepted: str) -> None:
        super().__init__(f"pod template {source}: {field}: {problem}; accepted: {accepted}")
        self.source = source
        self.field = field
        self.problem = problem
        self.accepted = accepted


@dataclass(frozen=True)
class PodTemplate:
    """One accepted profile: its name (the file's stem), its file, and its manifest."""

    name: str
    source: str
    manifest: Mapping[str, Any]

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.manifest.get("metadata") or {}

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.manifest.get("spec") or {}

    def job_container(self) -> Mapping[str, Any]:
        """What the template adds to the job's container (empty when it adds nothing)."""
        for container in self.spec.get("containers") or []:
            if container.get("name") == TEMPLATE_JOB_CONTAINER:
                return dict(container)
        return {}

    def sidecars(self) -> list[JsonObject]:
        return [
            dict(c)
            for c in self.spec.get("containers") or []
            if c.get("name") != TEMPLATE_JOB_CONTAINER
        ]


# -- validation (at startup) -------------------------------------------------------------


class _Checker:
    """Judges one manifest; every method raises :class:`TemplateError` on the first problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str, accepted: str) -> TemplateError:
        return TemplateError(self.source, field, problem, accepted)

    def mapping(self, value: Any, field: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(field, f"is a {type(value).__name__}", "a mapping")
        return value

    def sequence(self, value: Any, field: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(field, f"is a {type(value).__name__}", "a list")
        return value

    def only(
        self, obj: Mapping[str, Any], field: str, allowed: Sequence[str], **owned: str
    ) -> None:
        for key in obj:
            if key in owned:
                raise self.fail(f"{field}.{key}", f"is set by Hodei ({owned[key]})", "remove it")
            if key not in allowed:
                raise self.fail(
                    f"{field}.{key}", "is not allowed in a pod profile", ", ".join(allowed)
                )

    # -- the manifest --------------------------------------------------------------------

    def manifest(self, manifest: Any) -> None:
        if not isinstance(manifest, Mapping):
            raise self.fail("(document)", "is not a mapping", "a Pod manifest (kind: Pod)")
        if manifest.get("kind") != "Pod" or manifest.get("apiVersion") != "v1":
            raise self.fail(
                "kind",
                f"is {manifest.get('apiVersion')!r}/{manifest.get('kind')!r}, not a Pod",
                "apiVersion: v1, kind: Pod",
            )
        self.only(manifest, "(document)", ("apiVersion", "kind", "metadata", "spec"))
        metadata = self.mapping(manifest.get("metadata"), "metadata")
        self.only(metadata, "metadata", METADATA_FIELDS)
        self.labels(self.mapping(metadata.get("labels"), "metadata.labels"))
        self.annotations(self.mapping(metadata.get("annotations"), "metadata.annotations"))
        spec = self.mapping(manifest.get("spec"), "spec")
        self.only(spec, "spec", POD_SPEC_FIELDS, **HODEI_POD_FIELDS)
        self.pod_security(self.mapping(spec.get("securityContext"), "spec.securityContext"))
        volumes = self.volumes(self.sequence(spec.get("volumes"), "spec.volumes"))
        names: set[str] = set()
        for kind in ("containers", "initContainers"):
            for i, container in enumerate(self.sequence(spec.get(kind), f"spec.{kind}")):
                field = f"spec.{kind}[{i}]"
                container = self.mapping(container, field)
                name = str(container.get("name", ""))
                if name in names:
                    raise self.fail(f"{field}.name", f"{name!r} is used twice", "unique names")
                names.add(name)
                if kind == "containers" and name == TEMPLATE_JOB_CONTAINER:
                    self.job_container(container, field, volumes)
                else:
                    self.sidecar(container, field, volumes)

    def labels(self, labels: Mapping[str, Any]) -> None:
        for key in labels:
            if _reserved(str(key)):
                raise self.fail(
                    f"metadata.labels.{key}",
                    "is one of Hodei's own labels (NetworkPolicies and the watch select on them)",
                    f"any other key than {', '.join(sorted(RESERVED_LABEL_KEYS))} "
                    f"and {RESERVED_LABEL_PREFIX}*",
                )
            for check, text, what in (
                (check_label_key, str(key), "key"),
                (check_label_value, str(labels[key]), "value"),
            ):
                try:
                    check(text)
                except NameRuleError as exc:
                    problem = f"{text!r} is not a label {what}"
                    raise self.fail(
                        f"metadata.labels.{key}", problem, str(exc).removeprefix("accepted: ")
                    ) from None

    def annotations(self, annotations: Mapping[str, Any]) -> None:
        for key in annotations:
            try:
                check_label_key(str(key))  # annotation keys follow the label key rule
            except NameRuleError as exc:
                problem = f"{key!r} is not an annotation key"
                raise self.fail(
                    f"metadata.annotations.{key}", problem, str(exc).removeprefix("accepted: ")
                ) from None

    def volumes(self, volumes: list[Any]) -> set[str]:
        names = set()
        for i, volume in enumerate(volumes):
            volume = self.mapping(volume, f"spec.volumes[{i}]")
            kinds = [k for k in volume if k != "name"]
            for kind in kinds:
                if kind not in RESTRICTED_VOLUME_TYPES:
                    raise self.fail(
                        f"spec.volumes[{i}].{kind}",
                        "is a volume type Pod Security restricted forbids",
                        ", ".join(RESTRICTED_VOLUME_TYPES),
                    )
            names.add(str(volume.get("name", "")))
        return names

    def env(self, container: Mapping[str, Any], field: str) -> None:
        """No env name nor envFrom prefix may start with HODEI_ (the agent's variables)."""
        for key, part, what in (("env", "name", "names"), ("envFrom", "prefix", "a prefix")):
            for i, item in enumerate(self.sequence(container.get(key), f"{field}.{key}")):
                value = str(self.mapping(item, f"{field}.{key}[{i}]").get(part, ""))
                if value.startswith(RESERVED_ENV_PREFIX):
                    raise self.fail(
                        f"{field}.{key}[{i}].{part}",
                        f"{value} is reserved for Hodei",
                        f"{what} not starting with {RESERVED_ENV_PREFIX}",
                    )

    def mounts(self, container: Mapping[str, Any], field: str, volumes: set[str]) -> None:
        mounts = self.sequence(container.get("volumeMounts"), f"{field}.volumeMounts")
        for i, mount in enumerate(mounts):
            name = str(self.mapping(mount, f"{field}.volumeMounts[{i}]").get("name", ""))
            if name not in volumes:
                raise self.fail(
                    f"{field}.volumeMounts[{i}].name",
                    f"{name!r} is not a volume of this template",
                    "the name of one of the template's spec.volumes",
                )

    def resources(self, container: Mapping[str, Any], field: str) -> None:
        resources = self.mapping(container.get("resources"), f"{field}.resources")
        for kind in ("requests", "limits"):
            amounts = self.mapping(resources.get(kind), f"{field}.resources.{kind}")
            for name, amount in amounts.items():
                try:
                    validate_quantity(str(amount))
                except QuantityError as exc:
                    raise self.fail(
                        f"{field}.resources.{kind}.{name}", str(exc), ACCEPTED_FORMS
                    ) from None

    def job_container(self, container: Mapping[str, Any], field: str, volumes: set[str]) -> None:
        self.only(container, field, JOB_CONTAINER_FIELDS, **HODEI_CONTAINER_FIELDS)
        self.resources(container, field)
        self.env(container, field)
        self.mounts(container, field, volumes)
        context = self.mapping(container.get("securityContext"), f"{field}.securityContext")
        self.container_security(context, f"{field}.securityContext")

    def sidecar(self, container: Mapping[str, Any], field: str, volumes: set[str]) -> None:
        name = str(container.get("name", ""))
        if name in RESERVED_CONTAINER_NAMES or name.startswith(RESERVED_NAME_PREFIX):
            where = "the job's container" if name == TEMPLATE_JOB_CONTAINER else "Hodei's"
            raise self.fail(
                f"{field}.name",
                f"{name!r} is {where} name",
                f"other names; not {', '.join(sorted(RESERVED_CONTAINER_NAMES))} "
                f"nor {RESERVED_NAME_PREFIX}*"
                + (" (only spec.containers may add to the job's container)" if name else ""),
            )
        self.env(container, field)
        self.mounts(container, field, volumes)
        self.resources(container, field)
        for i, port in enumerate(self.sequence(container.get("ports"), f"{field}.ports")):
            if self.mapping(port, f"{field}.ports[{i}]").get("hostPort"):
                raise self.fail(
                    f"{field}.ports[{i}].hostPort",
                    "is forbidden by Pod Security baseline and restricted",
                    "containerPort only",
                )
        context = self.mapping(container.get("securityContext"), f"{field}.securityContext")
        self.container_security(context, f"{field}.securityContext")

    # -- security: tighten only ----------------------------------------------------------

    def _confined(self, value: Any, field: str) -> None:
        kind = self.mapping(value, field).get("type")
        if kind not in _CONFINED_PROFILES:
            raise self.fail(
                f"{field}.type", f"{kind!r} loosens the baseline", "RuntimeDefault, Localhost"
            )

    def _selinux(self, value: Any, field: str) -> None:
        options = self.mapping(value, field)
        for key in ("user", "role"):
            if key in options:
                raise self.fail(
                    f"{field}.{key}", "is forbidden by Pod Security restricted", "type, level"
                )
        if "type" in options and options["type"] not in _SELINUX_TYPES:
            raise self.fail(
                f"{field}.type", f"{options['type']!r} is not allowed", ", ".join(_SELINUX_TYPES)
            )

    def _confinement(self, context: Mapping[str, Any], field: str) -> None:
        """seccomp, AppArmor and SELinux settings: pod and container alike."""
        if "seccompProfile" in context:
            self._confined(context["seccompProfile"], f"{field}.seccompProfile")
        if "appArmorProfile" in context:
            self._confined(context["appArmorProfile"], f"{field}.appArmorProfile")
        if "seLinuxOptions" in context:
            self._selinux(context["seLinuxOptions"], f"{field}.seLinuxOptions")

    def _must(self, context: Mapping[str, Any], field: str, key: str, wanted: Any) -> None:
        if key in context and context[key] != wanted:
            raise self.fail(
                f"{field}.{key}",
                f"{context[key]!r} loosens Hodei's restricted baseline",
                f"{str(wanted).lower()} (or leave it out)",
            )

    def _ids(self, context: Mapping[str, Any], field: str, keys: Sequence[str]) -> None:
        for key in keys:
            if key in context and (
                not isinstance(context[key], int)
                or isinstance(context[key], bool)
                or context[key] <= 0
            ):
                raise self.fail(
                    f"{field}.{key}", f"{context[key]!r} is root or not an id", "an integer > 0"
                )

    def pod_security(self, context: Mapping[str, Any]) -> None:
        field = "spec.securityContext"
        allowed = (
            "runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "supplementalGroups",
            "fsGroupChangePolicy", "seccompProfile", "appArmorProfile", "seLinuxOptions",
        )  # fmt: skip
        self.only(context, field, allowed)
        self._must(context, field, "runAsNonRoot", True)
        self._ids(context, field, ("runAsUser", "runAsGroup", "fsGroup"))
        for i, group in enumerate(
            self.sequence(context.get("supplementalGroups"), f"{field}.supplementalGroups")
        ):
            if not isinstance(group, int) or isinstance(group, bool) or group <= 0:
                raise self.fail(
                    f"{field}.supplementalGroups[{i}]",
                    f"{group!r} is not allowed",
                    "an integer > 0",
                )
        self._confinement(context, field)

    def container_security(self, context: Mapping[str, Any], field: str) -> None:
        allowed = (
            "allowPrivilegeEscalation", "privileged", "readOnlyRootFilesystem", "runAsNonRoot",
            "runAsUser", "runAsGroup", "capabilities", "seccompProfile", "appArmorProfile",
            "seLinuxOptions", "procMount",
        )  # fmt: skip
        self.only(context, field, allowed)
        self._must(context, field, "allowPrivilegeEscalation", False)
        self._must(context, field, "privileged", False)
        self._must(context, field, "readOnlyRootFilesystem", True)
        self._must(context, field, "runAsNonRoot", True)
        self._must(context, field, "procMount", "Default")
        self._ids(context, field, ("runAsUser", "runAsGroup"))
        capabilities = self.mapping(context.get("capabilities"), f"{field}.capabilities")
        if capabilities.get("add"):
            raise self.fail(
                f"{field}.capabilities.add",
                "adds capabilities to a container Hodei runs with ALL dropped",
                "capabilities.drop only",
            )
        self._confinement(context, field)


SchemaCheck = Callable[[Mapping[str, Any]], list[tuple[str, str]]]


def check_profile_name(name: str, source: str) -> None:
    """Raise :class:`TemplateError` unless ``name`` (a file's stem) can be a profile name:
    a DNS-1123 label, as ``hodei run --profile`` accepts."""
    try:
        check_dns_label(name)
    except NameRuleError as exc:
        accepted = str(exc).removeprefix("accepted: ")
        problem = f"{name!r} is not a profile name"
        raise TemplateError(source, "(file name)", problem, accepted) from None


def parse_template(
    name: str, source: str, manifest: Any, *, schema: SchemaCheck | None = None
) -> PodTemplate:
    """Accept ``manifest`` (a parsed YAML document) as profile ``name`` or raise TemplateError.

    ``schema`` returns ``(field path, problem)`` for each field the Kubernetes Pod schema
    does not know or whose type is wrong; the first one is reported.
    """
    check_profile_name(name, source)
    checker = _Checker(source)
    if isinstance(manifest, Mapping) and schema is not None:
        for field, problem in schema(manifest)[:1]:
            raise checker.fail(
                field, problem, "the fields of a Kubernetes Pod (kubectl explain pod)"
            )
    checker.manifest(manifest)
    return PodTemplate(name=name, source=source, manifest=manifest)


# -- merging (per worker pod) ------------------------------------------------------------


@dataclass(frozen=True)
class JobPodInputs:
    """What the merge needs besides the template: the job's own asks and the defaults."""

    resources: Resources  # the job's explicit requests/limits (None: not asked)
    default_resources: Resources  # HODEI_K8S_DEFAULT_*
    secret_env: Mapping[str, SecretKeyRef]


def _reserved(label: str) -> bool:
    return label in RESERVED_LABEL_KEYS or label.startswith(RESERVED_LABEL_PREFIX)


def _by_name(
    items: list[JsonObject], extra: list[JsonObject], key: str = "name"
) -> list[JsonObject]:
    """``items`` then the ``extra`` ones whose ``key`` is new (Hodei's entries win)."""
    seen = {item.get(key) for item in items}
    return [*items, *(item for item in extra if item.get(key) not in seen)]


def _security(base: Mapping[str, Any], tighter: Mapping[str, Any]) -> JsonObject:
    """Hodei's security context with the template's (already checked to only tighten)."""
    merged = {**base, **tighter}
    drop = [*(base.get("capabilities") or {}).get("drop", [])]
    drop += [c for c in (tighter.get("capabilities") or {}).get("drop", []) if c not in drop]
    if drop:
        merged["capabilities"] = {"drop": drop}
    return merged


def _resources(
    current: Mapping[str, Any], template: Mapping[str, Any], inputs: JobPodInputs
) -> JsonObject:
    """cpu/memory: the job's own ask, else the template's, else HODEI_K8S_DEFAULT_*.

    Other resources the template names (``nvidia.com/gpu``, ``ephemeral-storage``) are
    added as given.
    """
    requests = dict(current.get("requests") or {})
    limits = dict(current.get("limits") or {})
    t_requests = {k: str(v) for k, v in (template.get("requests") or {}).items()}
    t_limits = {k: str(v) for k, v in (template.get("limits") or {}).items()}
    job, defaults = inputs.resources, inputs.default_resources
    for kind, asked, default in (
        ("cpu", (job.cpu_request, job.cpu_limit), (defaults.cpu_request, defaults.cpu_limit)),
        (
            "memory",
            (job.memory_request, job.memory_limit),
            (defaults.memory_request, defaults.memory_limit),
        ),
    ):
        if kind not in t_requests and kind not in t_limits:
            continue
        request, limit = request_and_limit(
            asked[0],
            asked[1],
            t_requests.get(kind) or str(default[0]),
            t_limits.get(kind) or str(default[1]),
        )
        requests[kind], limits[kind] = request, limit
    requests.update({k: v for k, v in t_requests.items() if k not in ("cpu", "memory")})
    limits.update({k: v for k, v in t_limits.items() if k not in ("cpu", "memory")})
    merged: JsonObject = dict(current)
    if requests:
        merged["requests"] = requests
    if limits:
        merged["limits"] = limits
    return merged


def _env(
    hodei: list[JsonObject], template: list[JsonObject], secret_env: Mapping[str, SecretKeyRef]
) -> list[JsonObject]:
    """Hodei's ``HODEI_*`` entries, the template's, the job's secret refs (the job's win).

    Hodei's other entries (``HOME``) are defaults a template may replace.
    """
    secrets = [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.secret, "key": ref.key}}}
        for name, ref in secret_env.items()
    ]
    replaced = {var["name"] for var in [*template, *secrets]}
    own = [
        var
        for var in hodei
        if var["name"].startswith(RESERVED_ENV_PREFIX) or var["name"] not in replaced
    ]
    from_template = [var for var in template if var["name"] not in secret_env]
    return [*own, *from_template, *secrets]


def _job_container(
    container: JsonObject, template: Mapping[str, Any], inputs: JobPodInputs
) -> JsonObject:
    merged = dict(container)
    env = _env(list(container.get("env") or []), list(template.get("env") or []), inputs.secret_env)
    if env:
        merged["env"] = env
    if template.get("envFrom"):
        merged["envFrom"] = [*(container.get("envFrom") or []), *template["envFrom"]]
    if template.get("volumeMounts"):
        own = list(container.get("volumeMounts") or [])
        taken = {m["mountPath"] for m in own}
        for mount in template["volumeMounts"]:
            if mount["mountPath"] in taken:
                raise ValueError(
                    f"volumeMounts: {mount['mountPath']} is where Hodei mounts its own volume; "
                    "mount the template's volume elsewhere"
                )
        merged["volumeMounts"] = [*own, *template["volumeMounts"]]
    if template.get("resources"):
        merged["resources"] = _resources(
            container.get("resources") or {}, template["resources"], inputs
        )
    if template.get("securityContext"):
        merged["securityContext"] = _security(
            container.get("securityContext") or {}, template["securityContext"]
        )
    return merged


def _added_container(container: Mapping[str, Any], baseline: Mapping[str, Any]) -> JsonObject:
    """A sidecar or init container, held to the job container's security baseline."""
    merged = dict(container)
    merged["securityContext"] = _security(baseline, container.get("securityContext") or {})
    return merged


def apply_profile(
    pod: Mapping[str, Any], template: PodTemplate | None, inputs: JobPodInputs
) -> JsonObject:
    """Hodei's worker pod with the profile ``template`` (if any) and the job's secret env.

    Pure: returns a new dict; ``pod`` is as :func:`~.pods.build_pod` makes it. Raises
    ValueError when the template collides with the pod (a volume name or mount path Hodei
    uses); profiles are tried against a sample pod at startup, so this does not happen
    for a job. The rules, field by field, are in deploy/kubernetes/README.md:

    - ``metadata.labels``: the job's, then the template's, then Hodei's (never overridden);
      ``metadata.annotations``: the template's, Hodei's winning on the same key.
    - ``nodeSelector``, ``tolerations``, ``affinity``, ``topologySpreadConstraints``,
      ``priorityClassName``, ``runtimeClassName``: the template's (Hodei sets none).
    - ``volumes``: Hodei's, then the template's (same name: refused).
    - ``imagePullSecrets``: HODEI_K8S_IMAGE_PULL_SECRET's, then the template's new ones.
    - ``securityContext`` (pod and containers): Hodei's, tightened by the template's;
      capabilities dropped by either stay dropped.
    - job container: env per :func:`_env`, envFrom and volumeMounts appended, cpu/memory
      per :func:`_resources`.
    - ``containers`` (sidecars) after Hodei's, ``initContainers`` after Hodei's, each
      with Hodei's container security baseline under the template's own tightening.
    """
    metadata = dict(pod.get("metadata") or {})
    spec = dict(pod.get("spec") or {})
    containers = [dict(c) for c in spec.get("containers") or []]
    names = [c.get("name") for c in containers]
    job = names.index(JOB_CONTAINER_NAME if JOB_CONTAINER_NAME in names else CONTAINER_NAME)
    t_job = template.job_container() if template is not None else {}
    containers[job] = _job_container(containers[job], t_job, inputs)
    spec["containers"] = containers
    if template is not None:
        metadata = _metadata(metadata, template.metadata)
        spec = _pod_spec(spec, template)
    return {**pod, "metadata": metadata, "spec": spec}


def _metadata(metadata: JsonObject, template: Mapping[str, Any]) -> JsonObject:
    labels = dict(metadata.get("labels") or {})
    labels.update({str(k): str(v) for k, v in (template.get("labels") or {}).items()})
    # Hodei's own keys cannot come from a checked template; kept last all the same.
    labels.update({k: v for k, v in (metadata.get("labels") or {}).items() if _reserved(k)})
    merged = {**metadata, "labels": labels}
    annotations = {str(k): str(v) for k, v in (template.get("annotations") or {}).items()}
    annotations.update(metadata.get("annotations") or {})
    if annotations:
        merged["annotations"] = annotations
    return merged


def _named_clash(kind: str, own: list[JsonObject], added: list[Any], what: str) -> None:
    clash = {item.get("name") for item in own} & {item.get("name") for item in added}
    if clash:
        raise ValueError(f"{kind}: {', '.join(sorted(map(str, clash)))} is {what}; rename it")


def _pod_spec(spec: JsonObject, template: PodTemplate) -> JsonObject:
    t_spec = template.spec
    merged = dict(spec)
    merged.update({key: t_spec[key] for key in SCHEDULING_FIELDS if key in t_spec})
    if t_spec.get("volumes"):
        own = list(spec.get("volumes") or [])
        _named_clash("volumes", own, t_spec["volumes"], "Hodei's own volume name")
        merged["volumes"] = [*own, *t_spec["volumes"]]
    if t_spec.get("imagePullSecrets"):
        merged["imagePullSecrets"] = _by_name(
            list(spec.get("imagePullSecrets") or []), list(t_spec["imagePullSecrets"])
        )
    if t_spec.get("securityContext"):
        merged["securityContext"] = _security(
            spec.get("securityContext") or {}, t_spec["securityContext"]
        )
    # Added containers get the agent's container's context: the strictest Hodei runs.
    containers = list(spec["containers"])
    inits = list(spec.get("initContainers") or [])
    baseline = next(c for c in containers if c.get("name") == CONTAINER_NAME)["securityContext"]
    for kind, own, added in (
        ("containers", containers, template.sidecars()),
        ("initContainers", inits, list(t_spec.get("initContainers") or [])),
    ):
        _named_clash(kind, [*containers, *inits], added, "a container name Hodei uses")
        own.extend(_added_container(c, baseline) for c in added)
    merged["containers"] = containers
    if inits:
        merged["initContainers"] = inits
    return merged

"""Per-kind defaulting, validation and update rules applied before objects are stored.

Only what clients can observe is modelled: the defaults kube-apiserver fills in
(pod restartPolicy, container terminationMessagePath, namespace label, service
clusterIP ...), the required fields whose absence yields 422 Invalid, pods' immutable
spec, and status being owned by the ``status`` subresource.
"""

from __future__ import annotations

import base64
import itertools
import random
import re
from typing import Any

from . import errors
from .meta import clone

_ALLOWED_POD_SPEC_UPDATES = (
    "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# What resource.ParseQuantity accepts: one number, then a binary, decimal or exponent suffix.
_QUANTITY = re.compile(
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
)
_QUANTITY_MESSAGE = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def _key_problems(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    problems = []
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        problems.append(
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    if not name or len(name) > 63 or not _NAME_PART.match(name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return problems


def _metadata_causes(metadata: dict[str, Any]) -> list[tuple[str, str, str]]:
    causes = []
    for key, value in (metadata.get("labels") or {}).items():
        for problem in _key_problems(key):
            causes.append(
                ("metadata.labels", "FieldValueInvalid", f'Invalid value: "{key}": {problem}')
            )
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                (
                    "metadata.labels",
                    "FieldValueInvalid",
                    f'Invalid value: "{value}": a valid label must be an empty string or consist '
                    "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
                    "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                )
            )
    for key in metadata.get("annotations") or {}:
        for problem in _key_problems(key):
            causes.append(
                ("metadata.annotations", "FieldValueInvalid", f'Invalid value: "{key}": {problem}')
            )
    return causes


def validate_metadata(kind: str, obj: dict[str, Any], group: str = "") -> None:
    """422 for label keys/values and annotation keys the apiserver would refuse."""
    causes = _metadata_causes(obj.get("metadata") or {})
    if causes:
        raise errors.invalid(kind, obj["metadata"].get("name", ""), causes, group)


def check_quantities(kind: str, obj: dict[str, Any]) -> None:
    """400 for resource quantities that do not parse, as JSON decoding fails on them."""
    spec = obj.get("spec") or {}
    if kind == "Deployment":
        spec = (spec.get("template") or {}).get("spec") or {}
    for container in itertools.chain(
        spec.get("containers") or [], spec.get("initContainers") or []
    ):
        resources = (container or {}).get("resources") or {}
        for section in ("requests", "limits"):
            for value in (resources.get(section) or {}).values():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    continue
                if not isinstance(value, str) or not _QUANTITY.match(value):
                    raise errors.bad_request(
                        f'{kind} in version "v1" cannot be handled as a {kind}: {_QUANTITY_MESSAGE}'
                    )


def _invalid(kind: str, name: str, field: str, reason: str, text: str) -> errors.ApiError:
    return errors.invalid(kind, name, [(field, reason, text)])


def _image_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last and "@" not in last else ""
    return "Always" if tag in ("", "latest") and "@" not in image else "IfNotPresent"


def _qos_class(containers: list[dict[str, Any]]) -> str:
    requests: list[dict[str, Any]] = []
    limits: list[dict[str, Any]] = []
    for container in containers:
        resources = container.get("resources") or {}
        requests.append(resources.get("requests") or {})
        limits.append(resources.get("limits") or {})
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        lim.get(res) and (req.get(res) in (None, lim.get(res)))
        for req, lim in zip(requests, limits, strict=True)
        for res in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _validate_pod(pod: dict[str, Any]) -> None:
    name = pod["metadata"].get("name", "")
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    causes: list[tuple[str, str, str]] = []
    if not containers:
        causes.append(("spec.containers", "FieldValueRequired", "Required value"))
    for index, container in enumerate(containers):
        for field in ("name", "image"):
            if not container.get(field):
                causes.append(
                    (f"spec.containers[{index}].{field}", "FieldValueRequired", "Required value")
                )
    if causes:
        raise errors.invalid("Pod", name, causes)


def _default_pod(pod: dict[str, Any]) -> None:
    spec = pod.setdefault("spec", {})
    for container in itertools.chain(spec.get("initContainers") or [], spec["containers"]):
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("imagePullPolicy", _image_pull_policy(container["image"]))
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
        resources = container["resources"]
        for name, limit in (resources.get("limits") or {}).items():
            # Requests default to limits per resource (limits.cpu fills a missing requests.cpu).
            resources.setdefault("requests", {}).setdefault(name, limit)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault(
        "tolerations",
        [
            {
                "key": f"node.kubernetes.io/{taint}",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
            for taint in ("not-ready", "unreachable")
        ],
    )
    pod["status"] = {"phase": "Pending", "qosClass": _qos_class(spec["containers"])}


def _default_service(svc: dict[str, Any]) -> None:
    spec = svc.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") != "None":
        spec.setdefault("clusterIP", f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}")
        spec["clusterIPs"] = [spec["clusterIP"]]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    svc["status"] = {"loadBalancer": {}}


def _default_secret(secret: dict[str, Any]) -> None:
    secret.setdefault("type", "Opaque")
    string_data = secret.pop("stringData", None) or {}
    data = secret.setdefault("data", {})
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    if not data:
        secret.pop("data")


def _default_namespace(ns: dict[str, Any]) -> None:
    name = ns["metadata"].get("name", "")
    labels = ns["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = name
    ns["spec"] = {"finalizers": ["kubernetes"]}
    ns["status"] = {"phase": "Active"}


def prepare_create(plural: str, obj: dict[str, Any]) -> None:
    """Default and validate a new object in place (422 on missing required fields)."""
    if plural == "pods":
        _validate_pod(obj)
        _default_pod(obj)
    elif plural == "services":
        _default_service(obj)
    elif plural == "secrets":
        _default_secret(obj)
    elif plural == "namespaces":
        _default_namespace(obj)
    elif plural == "deployments":
        obj["metadata"]["generation"] = 1
        obj["status"] = {}
    elif plural in ("rolebindings", "clusterrolebindings") and not obj.get("roleRef"):
        raise _invalid(
            obj.get("kind", "RoleBinding"),
            obj["metadata"].get("name", ""),
            "roleRef.kind",
            "FieldValueNotSupported",
            'Unsupported value: ""',
        )


def _check_pod_spec(old: dict[str, Any], new: dict[str, Any]) -> None:
    old_spec, new_spec = clone(old.get("spec") or {}), clone(new.get("spec") or {})
    for spec in (old_spec, new_spec):
        for container in itertools.chain(
            spec.get("containers") or [], spec.get("initContainers") or []
        ):
            container.pop("image", None)
        for field in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
            spec.pop(field, None)
    if old_spec != new_spec:
        raise _invalid(
            "Pod",
            old["metadata"]["name"],
            "spec",
            "FieldValueForbidden",
            _ALLOWED_POD_SPEC_UPDATES.removeprefix("spec: "),
        )


def prepare_update(
    plural: str, subresource: str, old: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    """The object to store for an update of ``old`` to ``new`` through (sub)resource."""
    if subresource == "status":
        result = clone(old)
        result["status"] = clone(new.get("status") or {})
        if plural == "namespaces":
            result["status"].setdefault("phase", old.get("status", {}).get("phase", "Active"))
        return result
    if "status" in old:  # the main resource cannot change status
        new["status"] = clone(old["status"])
    if plural == "pods":
        _check_pod_spec(old, new)
    elif plural == "namespaces":
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = old["metadata"][
            "name"
        ]
        new["spec"] = clone(old.get("spec") or {})
    elif plural in ("rolebindings", "clusterrolebindings") and new.get("roleRef") != old.get(
        "roleRef"
    ):
        raise _invalid(
            old["kind"],
            old["metadata"]["name"],
            "roleRef",
            "FieldValueInvalid",
            f"Invalid value: {new.get('roleRef')!r}: cannot change roleRef",
        )
    elif plural == "secrets":
        _default_secret(new)
    elif plural == "deployments" and new.get("spec") != old.get("spec"):
        new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
    elif plural == "deployments":
        new["metadata"]["generation"] = old["metadata"].get("generation", 1)
    return new

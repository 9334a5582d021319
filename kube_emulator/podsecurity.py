"""The Pod Security Standard "restricted" profile (baseline included), as a pure checker.

``violations(pod_spec)`` returns one message per rule the pod breaks, in the words of the
Pod Security admission controller's checks (Kubernetes 1.33, "latest" version). The
emulator's admission applies it (:func:`admit`) to pods created in a namespace labelled
``pod-security.kubernetes.io/enforce: restricted``, dry runs included, as kube-apiserver's
PodSecurity admission does; the deploy tests also run it directly on the worker pods the
provider builds and on the control plane's pod template. Only the ``restricted`` level is
enforced: a namespace with another level (or none) admits every pod.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from . import errors

Spec = Mapping[str, Any]

_ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
_SECCOMP_OK = {"RuntimeDefault", "Localhost"}


def _containers(spec: Spec) -> Iterator[Mapping[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or ()


def _host_and_privilege(spec: Spec) -> Iterator[str]:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            yield f"host namespaces: {key}=true"
    pod_sc = spec.get("securityContext") or {}
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        yield "hostProcess: pod windowsOptions.hostProcess=true"
    for sysctl in pod_sc.get("sysctls") or ():
        if sysctl.get("name") not in _SAFE_SYSCTLS:
            yield f"forbidden sysctl {sysctl.get('name')}"
    for c in _containers(spec):
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if sc.get("privileged"):
            yield f"privileged: container {name}"
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            yield f"hostProcess: container {name}"
        if sc.get("procMount", "Default") != "Default":
            yield f"procMount: container {name} uses {sc['procMount']}"
        for port in c.get("ports") or ():
            if port.get("hostPort"):
                yield f"hostPort: container {name} uses {port['hostPort']}"


def _volumes(spec: Spec) -> Iterator[str]:
    for volume in spec.get("volumes") or ():
        kinds = set(volume) - {"name"}
        if not kinds <= _ALLOWED_VOLUMES:
            yield f"restricted volume types: volume {volume.get('name')} uses {sorted(kinds)}"


def _selinux_and_apparmor(spec: Spec) -> Iterator[str]:
    contexts = [("pod", spec.get("securityContext") or {})] + [
        (f"container {c.get('name')}", c.get("securityContext") or {}) for c in _containers(spec)
    ]
    for where, sc in contexts:
        selinux = sc.get("seLinuxOptions") or {}
        if (
            selinux.get("type", "") not in _SELINUX_TYPES
            or selinux.get("user")
            or selinux.get("role")
        ):
            yield f"seLinuxOptions: {where} sets a forbidden type, user or role"
        apparmor = sc.get("appArmorProfile") or {}
        if apparmor and apparmor.get("type") not in _SECCOMP_OK:
            yield f"appArmorProfile: {where} uses {apparmor.get('type')}"


def _non_root(spec: Spec) -> Iterator[str]:
    pod_sc = spec.get("securityContext") or {}
    if pod_sc.get("runAsUser") == 0:
        yield "runAsUser=0: pod"
    for c in _containers(spec):
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if sc.get("runAsUser") == 0:
            yield f"runAsUser=0: container {name}"
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            yield f"runAsNonRoot != true: container {name} (set it on the pod or the container)"


def _seccomp(spec: Spec) -> Iterator[str]:
    pod_type = ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    if pod_type is not None and pod_type not in _SECCOMP_OK:
        yield f"seccompProfile: pod uses {pod_type}"
    for c in _containers(spec):
        own = ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
        if own is not None and own not in _SECCOMP_OK:
            yield f"seccompProfile: container {c.get('name')} uses {own}"
        elif own is None and pod_type not in _SECCOMP_OK:
            yield f"seccompProfile: container {c.get('name')} has none (RuntimeDefault/Localhost)"


def _escalation_and_capabilities(spec: Spec) -> Iterator[str]:
    for c in _containers(spec):
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if sc.get("allowPrivilegeEscalation") is not False:
            yield f"allowPrivilegeEscalation != false: container {name}"
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or ()):
            yield f"unrestricted capabilities: container {name} must drop ALL"
        added = set(caps.get("add") or ()) - {"NET_BIND_SERVICE"}
        if added:
            yield f"unrestricted capabilities: container {name} adds {sorted(added)}"


def violations(pod_spec: Spec) -> list[str]:
    """Every rule of the "restricted" profile ``pod_spec`` (a PodSpec dict) breaks."""
    return [
        *_host_and_privilege(pod_spec),
        *_volumes(pod_spec),
        *_selinux_and_apparmor(pod_spec),
        *_non_root(pod_spec),
        *_seccomp(pod_spec),
        *_escalation_and_capabilities(pod_spec),
    ]


ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"


def admit(namespace_labels: Mapping[str, str], pod: Mapping[str, Any]) -> None:
    """Raise the 403 kube-apiserver answers when ``pod`` breaks its namespace's enforced level."""
    if namespace_labels.get(ENFORCE_LABEL) != "restricted":
        return
    broken = violations(pod.get("spec") or {})
    if broken:
        name = (pod.get("metadata") or {}).get("name", "")
        message = (
            f"pods {errors.repr_name(name)} is forbidden: violates PodSecurity "
            f'"restricted:latest": {", ".join(broken)}'
        )
        raise errors.ApiError(403, "Forbidden", message, details={"name": name, "kind": "pods"})

"""ResourceQuota: what a namespace's pods use, and the admission check on pod create.

kube-apiserver's ResourceQuota admission plugin refuses a pod that would take a
namespace past a quota's ``spec.hard`` with ``403 Forbidden`` and the message
``pods "NAME" is forbidden: exceeded quota: QUOTA, requested: R, used: U, limited: L``
(each of R, U, L a comma-separated ``resource=quantity`` list of the exceeded resources,
sorted), and a pod that does not say what a quota limits with ``failed quota: QUOTA:
must specify R``. The quota controller keeps ``status.hard``/``status.used``, which
``kubectl describe quota`` prints. Pods count until they end (phase Succeeded or
Failed). Supported resources: ``pods``, ``cpu``/``requests.cpu``, ``memory``/
``requests.memory``, ``limits.cpu``, ``limits.memory``; other keys are kept and ignored.
Pure functions over plain objects, so the rules are tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hodei.domain.quantities import cpu_millicores, memory_bytes

from . import errors

Obj = dict[str, Any]

# Quota resource name -> (section of a container's resources, resource there).
_COMPUTE = {
    "cpu": ("requests", "cpu"),
    "requests.cpu": ("requests", "cpu"),
    "memory": ("requests", "memory"),
    "requests.memory": ("requests", "memory"),
    "limits.cpu": ("limits", "cpu"),
    "limits.memory": ("limits", "memory"),
}
TRACKED = frozenset({"pods", *_COMPUTE})


def _amount(resource: str, value: Any) -> int:
    """A quantity as an integer in the resource's unit: millicores or bytes."""
    text = str(value)
    return cpu_millicores(text) if resource.endswith("cpu") else memory_bytes(text)


def format_amount(resource: str, amount: int) -> str:
    """An integer amount back as a canonical quantity (``1``, ``500m``, ``128Mi``)."""
    if resource == "pods":
        return str(amount)
    if resource.endswith("cpu"):
        return str(amount // 1000) if amount % 1000 == 0 else f"{amount}m"
    for suffix, size in (
        ("Ei", 2**60),
        ("Pi", 2**50),
        ("Ti", 2**40),
        ("Gi", 2**30),
        ("Mi", 2**20),
        ("Ki", 2**10),
    ):
        if amount and amount % size == 0:
            return f"{amount // size}{suffix}"
    return str(amount)


def counts(pod: Mapping[str, Any]) -> bool:
    """Whether a pod still counts against quotas (until it ends)."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def pod_usage(pod: Mapping[str, Any]) -> dict[str, int | None]:
    """What one pod uses of each tracked resource; ``None`` when a container leaves a
    compute resource unset (the pod then cannot be admitted under a quota on it)."""
    usage: dict[str, int | None] = {"pods": 1}
    containers = (pod.get("spec") or {}).get("containers") or []
    for name, (section, resource) in _COMPUTE.items():
        total: int | None = 0
        for container in containers:
            value = ((container.get("resources") or {}).get(section) or {}).get(resource)
            if value is None or total is None:
                total = None
                continue
            total += _amount(name, value)
        usage[name] = total
    return usage


def used(hard: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The namespace's use of each resource ``hard`` limits (unset amounts count as 0)."""
    totals = {name: 0 for name in hard if name in TRACKED}
    for pod in pods:
        if not counts(pod):
            continue
        for name, amount in pod_usage(pod).items():
            if name in totals:
                totals[name] += amount or 0
    return totals


def status(quota: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> Obj:
    """The ``status`` the quota controller would write: ``hard`` as given, ``used`` now."""
    hard = dict((quota.get("spec") or {}).get("hard") or {})
    totals = used(hard, pods)
    return {
        "hard": hard,
        "used": {name: format_amount(name, totals.get(name, 0)) for name in hard},
    }


def admit(pod: Mapping[str, Any], quotas: Iterable[Mapping[str, Any]], pods: list[Obj]) -> None:
    """Raise the apiserver's 403 if creating ``pod`` would exceed one of ``quotas``,
    given the namespace's existing ``pods``."""
    name = (pod.get("metadata") or {}).get("name") or ""
    wanted = pod_usage(pod)
    for quota in sorted(quotas, key=lambda q: q["metadata"]["name"]):
        quota_name = quota["metadata"]["name"]
        hard = {
            k: v for k, v in ((quota.get("spec") or {}).get("hard") or {}).items() if k in TRACKED
        }
        missing = sorted(k for k in hard if wanted.get(k) is None)
        if missing:
            raise _forbidden(name, f"failed quota: {quota_name}: must specify {','.join(missing)}")
        totals = used(hard, pods)
        over = sorted(
            k for k, limit in hard.items() if totals[k] + (wanted[k] or 0) > _limit(k, limit)
        )
        if over:
            requested = ",".join(f"{k}={format_amount(k, wanted[k] or 0)}" for k in over)
            in_use = ",".join(f"{k}={format_amount(k, totals[k])}" for k in over)
            limited = ",".join(f"{k}={hard[k]}" for k in over)
            raise _forbidden(
                name,
                f"exceeded quota: {quota_name}, requested: {requested}, used: {in_use}, "
                f"limited: {limited}",
            )


def _limit(resource: str, value: Any) -> int:
    return int(str(value)) if resource == "pods" else _amount(resource, value)


def _forbidden(pod_name: str, detail: str) -> errors.ApiError:
    return errors.ApiError(
        403,
        "Forbidden",
        f'pods "{pod_name}" is forbidden: {detail}',
        details={"name": pod_name, "kind": "pods"},
    )

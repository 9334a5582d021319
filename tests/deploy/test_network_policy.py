"""What the shipped NetworkPolicies allow, decided by the evaluator for the pods that really exist.

Worker pods come from the provider's own pod builder, the control plane's pods from the
Deployment's template, namespaces from namespace.yaml: if any of them changes its labels,
these tests see the policies stop matching.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from hodei.config.settings import KubernetesSettings
from hodei.domain.ids import new_job_id, new_worker_id
from hodei.providers.base import WorkerRequest
from hodei.providers.kubernetes import pods
from tests.deploy.manifests import find, namespace_labels, of_kind
from tests.deploy.policy_eval import (
    External,
    Pod,
    egress_allowed,
    ingress_allowed,
    selector_matches,
)

PROTOCOLS = ("TCP", "UDP", "SCTP")
PORTS = (22, 53, 80, 443, 2379, 6443, 8080, 9090, 50051)


def _policies() -> list[dict[str, Any]]:
    return of_kind("NetworkPolicy")


def _worker_pod(**request: object) -> Pod:
    settings = KubernetesSettings()
    req = WorkerRequest(
        worker_id=new_worker_id(),
        job_id=new_job_id(),
        token="t",
        server_address="hodei-control-plane.hodei-system.svc:50051",
        **request,  # type: ignore[arg-type]
    )
    manifest = pods.build_pod(pods.WorkerPodSpec.from_request(req, settings, instance="cp-1"))
    namespace = manifest["metadata"]["namespace"]
    return Pod(namespace, manifest["metadata"]["labels"], namespace_labels(namespace))


def _control_plane_pod() -> Pod:
    template = find("Deployment", "hodei-control-plane")["spec"]["template"]
    return Pod("hodei-system", template["metadata"]["labels"], namespace_labels("hodei-system"))


def _destinations() -> dict[str, Pod | External]:
    worker = _worker_pod()
    return {
        "control plane": _control_plane_pod(),
        "other pod in hodei-system": Pod(
            "hodei-system", {"app": "other"}, namespace_labels("hodei-system")
        ),
        "control plane labels elsewhere": Pod(
            "default",
            _control_plane_pod().labels,
            {"kubernetes.io/metadata.name": "default"},
        ),
        "cluster DNS": Pod(
            "kube-system", {"k8s-app": "kube-dns"}, {"kubernetes.io/metadata.name": "kube-system"}
        ),
        "another worker": worker,
        "API server address": External("10.96.0.1"),
        "internet": External("203.0.113.7"),
    }


@pytest.mark.parametrize("image", [None, "python:3.12"])  # one container, or the launcher's three
def test_worker_pods_of_the_provider_are_selected_by_the_egress_policy(image: str | None) -> None:
    worker = _worker_pod(labels={"team": "a"}, image=image)
    egress = find("NetworkPolicy", "hodei-worker-egress")
    assert egress["metadata"]["namespace"] == worker.namespace
    assert selector_matches(egress["spec"]["podSelector"], worker.labels)


def test_egress_of_worker_pods_is_exactly_dns_control_plane_grpc_and_https() -> None:
    worker, policies = _worker_pod(), _policies()
    allowed = {
        (name, protocol, port)
        for (name, dest), protocol, port in itertools.product(
            _destinations().items(), PROTOCOLS, PORTS
        )
        if egress_allowed(policies, worker, dest, protocol, port)
    }
    expected = {
        (name, protocol, port)
        for name in _destinations()
        for protocol, port in (("UDP", 53), ("TCP", 53), ("TCP", 443))
    } | {("control plane", "TCP", 50051)}
    assert allowed == expected


def test_nothing_may_connect_to_a_worker_pod() -> None:
    worker, policies = _worker_pod(), _policies()
    for source, protocol, port in itertools.product(_destinations().values(), PROTOCOLS, PORTS):
        assert not ingress_allowed(policies, worker, source, protocol, port)


def test_other_pods_in_the_workers_namespace_are_fully_isolated() -> None:
    stray = Pod("hodei-workers", {"run": "test-worker"}, namespace_labels("hodei-workers"))
    policies = _policies()
    for dest, protocol, port in itertools.product(_destinations().values(), PROTOCOLS, PORTS):
        assert not egress_allowed(policies, stray, dest, protocol, port)
        assert not ingress_allowed(policies, stray, dest, protocol, port)


def _sources() -> dict[str, Pod | External]:
    """Who might connect to the control plane, labelled as they really are."""

    def ns(name: str, **labels: str) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": name, **labels}

    worker = _worker_pod()
    return {
        "worker pod": worker,
        "client pod": Pod("ci", {"app": "runner"}, ns("ci", **{"hodei.io/client": "true"})),
        "prometheus": Pod("monitoring", {"app": "prometheus"}, ns("monitoring")),
        "pod in default": Pod("default", {"app": "x"}, ns("default")),
        "other pod in hodei-workers": Pod(
            "hodei-workers", {"run": "debug"}, namespace_labels("hodei-workers")
        ),
        "worker labels elsewhere": Pod("default", worker.labels, ns("default")),
        "other pod in hodei-system": Pod(
            "hodei-system", {"app": "other"}, namespace_labels("hodei-system")
        ),
        "kube-system": Pod("kube-system", {"k8s-app": "kube-dns"}, ns("kube-system")),
        "outside address": External("203.0.113.7"),
        "node-range address": External("10.0.0.12"),
    }


def test_control_plane_ingress_is_exactly_grpc_from_workers_and_clients_http_from_monitoring() -> (
    None
):
    control_plane, policies = _control_plane_pod(), _policies()
    allowed = {
        (name, protocol, port)
        for (name, source), protocol, port in itertools.product(
            _sources().items(), PROTOCOLS, PORTS
        )
        if ingress_allowed(policies, control_plane, source, protocol, port)
    }
    assert allowed == {
        ("worker pod", "TCP", 50051),
        ("client pod", "TCP", 50051),
        ("prometheus", "TCP", 9090),
    }


def test_other_pods_in_the_control_plane_namespace_receive_nothing() -> None:
    stray = Pod("hodei-system", {"app": "other"}, namespace_labels("hodei-system"))
    policies = _policies()
    for source, protocol, port in itertools.product(_sources().values(), PROTOCOLS, PORTS):
        assert not ingress_allowed(policies, stray, source, protocol, port)


def test_the_control_plane_may_still_reach_the_kubernetes_api() -> None:
    assert egress_allowed(_policies(), _control_plane_pod(), External("10.96.0.1"), "TCP", 443)


# The evaluator itself, on policies whose answers are known.
def _policy(spec: dict[str, Any], namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_evaluator_allows_everything_for_unselected_pods() -> None:
    policy = _policy({"podSelector": {"matchLabels": {"a": "1"}}, "policyTypes": ["Egress"]})
    pod = Pod("ns", {"a": "2"})
    assert egress_allowed([policy], pod, External("1.2.3.4"), "TCP", 80)
    assert not egress_allowed([policy], Pod("ns", {"a": "1"}), External("1.2.3.4"), "TCP", 80)


def test_evaluator_pod_selector_alone_means_the_policy_namespace() -> None:
    policy = _policy(
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"db": "1"}}}]}],
        }
    )
    pod = Pod("ns", {})
    assert egress_allowed([policy], pod, Pod("ns", {"db": "1"}), "TCP", 5432)
    assert not egress_allowed([policy], pod, Pod("other", {"db": "1"}), "TCP", 5432)
    assert not egress_allowed([policy], pod, External("1.2.3.4"), "TCP", 5432)


def test_evaluator_ip_blocks_ports_ranges_and_expressions() -> None:
    policy = _policy(
        {
            "podSelector": {
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]
            },
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                    "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}],
                }
            ],
        }
    )
    web = Pod("ns", {"tier": "web"})
    assert egress_allowed([policy], web, External("10.2.3.4"), "TCP", 8050)
    assert not egress_allowed([policy], web, External("10.1.3.4"), "TCP", 8050)
    assert not egress_allowed([policy], web, External("10.2.3.4"), "TCP", 8101)
    assert not egress_allowed([policy], web, External("10.2.3.4"), "UDP", 8050)
    assert egress_allowed([policy], Pod("ns", {"tier": "db"}), External("8.8.8.8"), "TCP", 1)


def test_evaluator_default_policy_types_is_ingress_only_without_egress_rules() -> None:
    policy = _policy({"podSelector": {}})
    pod = Pod("ns", {})
    assert not ingress_allowed([policy], pod, Pod("ns", {}), "TCP", 80)
    assert egress_allowed([policy], pod, Pod("ns", {}), "TCP", 80)


def test_worker_pods_under_a_profile_are_still_selected_by_the_egress_policy() -> None:
    from hodei.providers.kubernetes.profiles import parse_profile, profile_pod, sample_request

    settings = KubernetesSettings()
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  labels: {app.example/tier: gpu, team: b}\n"
    template = parse_profile("labelled", "labelled.yaml", text, settings)
    manifest = profile_pod(sample_request("labelled"), settings, template, instance="cp-1")
    labels: dict[str, str] = manifest["metadata"]["labels"]
    assert labels["app.example/tier"] == "gpu"
    egress = find("NetworkPolicy", "hodei-worker-egress")
    assert selector_matches(egress["spec"]["podSelector"], labels)

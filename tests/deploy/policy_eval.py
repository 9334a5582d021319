"""A small NetworkPolicy evaluator (networking.k8s.io/v1 semantics), for the deploy tests.

No cluster here enforces NetworkPolicies, so the tests decide what the shipped policies
allow the way a network plugin would: a pod is isolated in a direction when a policy of
its namespace selects it and lists that direction in ``policyTypes``; an isolated pod's
traffic is allowed when some rule of some selecting policy matches both the peer and the
port. Peers are pods (namespace + labels) or addresses outside the cluster.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it: its namespace (name and labels) and its labels."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class External:
    """An address outside the cluster's pods (e.g. a public DNS resolver)."""

    ip: str


Peer = Pod | External


def selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """LabelSelector semantics: matchLabels AND every matchExpression; {} matches all."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr["key"], expr["operator"], expr.get("values") or ()
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown selector operator {op!r}")
    return True


def _policy_types(policy: Obj) -> set[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    # The API server's default: Ingress always, Egress when egress rules exist.
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def _selecting(policies: Iterable[Obj], pod: Pod, direction: str) -> list[Obj]:
    return [
        p
        for p in policies
        if p["metadata"].get("namespace") == pod.namespace
        and direction in _policy_types(p)
        and selector_matches((p.get("spec") or {}).get("podSelector") or {}, pod.labels)
    ]


def _peer_matches(peer_rule: Obj, policy_namespace: str, peer: Peer) -> bool:
    if "ipBlock" in peer_rule:
        if not isinstance(peer, External):
            return False  # pod addresses are out of scope for these tests
        block = peer_rule["ipBlock"]
        address = ipaddress.ip_address(peer.ip)
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(c) for c in block.get("except") or ())
    if isinstance(peer, External):
        return False  # pod/namespace selectors only ever match pods
    ns_selector = peer_rule.get("namespaceSelector")
    pod_selector = peer_rule.get("podSelector")
    if ns_selector is None and peer.namespace != policy_namespace:
        return False
    if ns_selector is not None and not selector_matches(ns_selector, peer.namespace_labels):
        return False
    return selector_matches(pod_selector or {}, peer.labels)


def _port_matches(port_rule: Obj, protocol: str, port: int) -> bool:
    if port_rule.get("protocol", "TCP") != protocol:
        return False
    if "port" not in port_rule:
        return True
    wanted = port_rule["port"]
    if isinstance(wanted, str):
        raise ValueError(f"named port {wanted!r}: the evaluator needs numbers")
    end = port_rule.get("endPort", wanted)
    return bool(wanted <= port <= end)


def _rule_matches(
    rule: Obj, peers_key: str, namespace: str, peer: Peer, protocol: str, port: int
) -> bool:
    peers = rule.get(peers_key)
    if peers and not any(_peer_matches(p, namespace, peer) for p in peers):
        return False
    ports = rule.get("ports")
    return not ports or any(_port_matches(p, protocol, port) for p in ports)


def egress_allowed(policies: Iterable[Obj], pod: Pod, to: Peer, protocol: str, port: int) -> bool:
    """May ``pod`` open a connection to ``to`` on ``protocol``/``port``?"""
    selecting = _selecting(list(policies), pod, "Egress")
    if not selecting:
        return True
    return any(
        _rule_matches(rule, "to", pod.namespace, to, protocol, port)
        for policy in selecting
        for rule in (policy.get("spec") or {}).get("egress") or ()
    )


def ingress_allowed(
    policies: Iterable[Obj], pod: Pod, source: Peer, protocol: str, port: int
) -> bool:
    """May ``source`` open a connection to ``pod`` on ``protocol``/``port``?"""
    selecting = _selecting(list(policies), pod, "Ingress")
    if not selecting:
        return True
    return any(
        _rule_matches(rule, "from", pod.namespace, source, protocol, port)
        for policy in selecting
        for rule in (policy.get("spec") or {}).get("ingress") or ()
    )

"""Label and field selectors: parsing and matching, without I/O.

The grammar follows ``k8s.io/apimachinery/pkg/labels`` (``=``, ``==``, ``!=``, ``in``,
``notin``, ``key``, ``!key``, comma meaning AND) and ``pkg/fields`` (``=``, ``==``,
``!=`` on a per-kind list of supported field paths). Parse errors raise
`SelectorError`, which the server turns into 400 BadRequest as kube-apiserver does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_KEY = re.compile(
    r"^([a-z0-9A-Z]([-a-z0-9A-Z.]*[a-z0-9A-Z])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class SelectorError(ValueError):
    """The selector text does not parse."""


@dataclass(frozen=True)
class Requirement:
    """One label requirement; ``op`` is one of =, !=, in, notin, exists, !."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a label set satisfies this requirement."""
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # != and notin also match objects without the key, as in Kubernetes.
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; empty matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether ``labels`` satisfies every requirement."""
        labels = labels or {}
        return all(req.matches(labels) for req in self.requirements)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unable to parse requirement: unbalanced ')' in {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise SelectorError(f"unable to parse requirement: unbalanced '(' in {text!r}")
    parts.append("".join(current))
    return parts


def _check_key(key: str) -> str:
    if not _KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise SelectorError(f'unable to parse requirement: invalid label key "{key}"')
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise SelectorError(f'unable to parse requirement: invalid label value: "{value}"')
    return value


_SET_OP = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ_OP = re.compile(r"^(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^=!\s]*)$")


def _parse_requirement(text: str) -> Requirement:
    text = text.strip()
    if not text:
        raise SelectorError("unable to parse requirement: found '', expected: identifier")
    match = _SET_OP.match(text)
    if match:
        raw_values = [v.strip() for v in match["values"].split(",")]
        values = frozenset(_check_value(v) for v in raw_values)
        return Requirement(_check_key(match["key"]), match["op"], values)
    match = _EQ_OP.match(text)
    if match:
        op = "=" if match["op"] in ("=", "==") else "!="
        value = _check_value(match["value"])
        return Requirement(_check_key(match["key"]), op, frozenset((value,)))
    if text.startswith("!"):
        return Requirement(_check_key(text[1:].strip()), "!")
    return Requirement(_check_key(text), "exists")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``labelSelector`` query text; empty or None selects everything."""
    if text is None or not text.strip():
        return LabelSelector()
    return LabelSelector(tuple(_parse_requirement(part) for part in _split_top_level(text)))


def selector_from_match(spec: Mapping[str, Any] | None) -> LabelSelector:
    """Build a selector from a ``metav1.LabelSelector`` object (matchLabels/matchExpressions)."""
    if not spec:
        return LabelSelector()
    reqs = [
        Requirement(k, "=", frozenset((v,))) for k, v in (spec.get("matchLabels") or {}).items()
    ]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in spec.get("matchExpressions") or []:
        reqs.append(
            Requirement(expr["key"], ops[expr["operator"]], frozenset(expr.get("values") or ()))
        )
    return LabelSelector(tuple(reqs))


# --- field selectors -------------------------------------------------------------------

_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
SUPPORTED_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        *_COMMON_FIELDS,
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "events": (
        *_COMMON_FIELDS,
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "secrets": (*_COMMON_FIELDS, "type"),
    "namespaces": (*_COMMON_FIELDS, "status.phase"),
    "nodes": (*_COMMON_FIELDS, "spec.unschedulable"),
}


@dataclass(frozen=True)
class FieldRequirement:
    """``path`` equals (or, with ``negate``, differs from) ``value``."""

    path: str
    value: str
    negate: bool = False


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of field requirements."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object satisfies every requirement."""
        for req in self.requirements:
            equal = field_value(obj, req.path) == req.value
            if equal == req.negate:
                return False
        return True


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string form of a field path, "" when absent (as the real field sets do)."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def parse_field_selector(text: str | None, resource: str) -> FieldSelector:
    """Parse ``fieldSelector`` text for ``resource`` (a plural); unknown fields are errors."""
    if text is None or not text.strip():
        return FieldSelector()
    supported = SUPPORTED_FIELDS.get(resource, _COMMON_FIELDS)
    reqs: list[FieldRequirement] = []
    for part in text.split(","):
        part = part.strip()
        match = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", part)
        if not match:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, value = match.group(1), match.group(2), match.group(3)
        if path not in supported:
            raise SelectorError(f"field label not supported: {path}")
        reqs.append(FieldRequirement(path, value, negate=(op == "!=")))
    return FieldSelector(tuple(reqs))


def compile_filter(
    label_text: str | None, field_text: str | None, resource: str
) -> Callable[[Mapping[str, Any]], bool]:
    """One predicate for both selectors of a list or watch request."""
    labels = parse_label_selector(label_text)
    fields = parse_field_selector(field_text, resource)
    if not labels.requirements and not fields.requirements:
        return lambda obj: True

    def predicate(obj: Mapping[str, Any]) -> bool:
        return labels.matches(obj.get("metadata", {}).get("labels")) and fields.matches(obj)

    return predicate

"""Label and field selector parsing/matching (semantics from the Kubernetes docs:
concepts/overview/working-with-objects/labels and field-selectors)."""

from __future__ import annotations

import pytest

from kube_emulator.selectors import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
    selector_from_match,
)

LABELS = {"app": "web", "tier": "frontend", "env": "prod"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),  # != matches objects without the key
        ("env in (prod, staging)", True),
        ("env in (dev)", False),
        ("env notin (dev,qa)", True),
        ("env notin (prod)", False),
        ("missing notin (a)", True),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("!tier", False),
        ("app=web,tier=frontend", True),
        ("app=web,tier=backend", False),
        ("app in (web),!missing,env", True),
        ("  app = web ", True),
        ("example.com/key=v", False),
    ],
)
def test_label_selector_semantics(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


def test_empty_selector_matches_objects_without_labels() -> None:
    assert parse_label_selector(None).matches(None)
    assert not parse_label_selector("a").matches(None)


@pytest.mark.parametrize("text", ["app=web=x", "env in (a", "env in a)", "Bad Key=1", "a=-x-"])
def test_invalid_label_selectors_raise(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(text)


def test_match_labels_and_expressions() -> None:
    selector = selector_from_match(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod"]},
                {"key": "gone", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.matches(LABELS)
    assert not selector.matches({"app": "web", "env": "dev"})


POD = {
    "metadata": {"name": "p1", "namespace": "ns1"},
    "spec": {"nodeName": "node-a"},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metadata.name=p1", True),
        ("metadata.name==p1", True),
        ("metadata.name!=p1", False),
        ("metadata.namespace=ns1,status.phase=Running", True),
        ("status.phase!=Running", False),
        ("spec.nodeName=node-a", True),
        ("spec.nodeName=", False),
        ("status.phase=Pending", False),
    ],
)
def test_pod_field_selectors(text: str, expected: bool) -> None:
    assert parse_field_selector(text, "pods").matches(POD) is expected


def test_unbound_pod_matches_empty_node_name() -> None:
    assert parse_field_selector("spec.nodeName=", "pods").matches({"metadata": {}, "spec": {}})


def test_unsupported_field_is_an_error_naming_it() -> None:
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.foo"):
        parse_field_selector("spec.foo=1", "pods")
    with pytest.raises(SelectorError):
        parse_field_selector("status.phase=Running", "configmaps")

"""Patch semantics: RFC 7386 merge patch, RFC 6902 JSON patch, strategic merge patch."""

from __future__ import annotations

from typing import Any

import pytest

from kube_emulator.patch import PatchError, json_patch, merge_patch, strategic_merge

POD: dict[str, Any] = {
    "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}},
    "spec": {
        "containers": [
            {"name": "main", "image": "busybox:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "side", "image": "nginx"},
        ]
    },
}


def test_merge_patch_rfc7386_examples() -> None:
    # Example from RFC 7386 section 3.
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": None},
        "tags": ["example"],
    }
    assert merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_merge_patch_replaces_lists() -> None:
    result = merge_patch(POD, {"spec": {"containers": [{"name": "main", "image": "x"}]}})
    assert result["spec"]["containers"] == [{"name": "main", "image": "x"}]


def test_strategic_merge_merges_containers_by_name() -> None:
    result = strategic_merge(
        POD, {"spec": {"containers": [{"name": "main", "image": "busybox:2"}]}}
    )
    main, side = result["spec"]["containers"]
    assert main == {"name": "main", "image": "busybox:2", "env": [{"name": "X", "value": "1"}]}
    assert side == {"name": "side", "image": "nginx"}
    assert POD["spec"]["containers"][0]["image"] == "busybox:1"  # input untouched


def test_strategic_merge_directives() -> None:
    patch = {
        "metadata": {"labels": {"a": None}},
        "spec": {
            "$setElementOrder/containers": [{"name": "main"}],
            "containers": [{"name": "side", "$patch": "delete"}],
        },
    }
    result = strategic_merge(POD, patch)
    assert result["metadata"]["labels"] == {"b": "2"}
    assert [c["name"] for c in result["spec"]["containers"]] == ["main"]


def test_json_patch_operations() -> None:
    ops = [
        {"op": "add", "path": "/metadata/labels/c", "value": "3"},
        {"op": "remove", "path": "/metadata/labels/a"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:3"},
        {"op": "add", "path": "/spec/containers/-", "value": {"name": "third", "image": "i"}},
        {"op": "copy", "from": "/metadata/name", "path": "/metadata/annotations"},
        {"op": "test", "path": "/metadata/name", "value": "p"},
    ]
    result = json_patch(POD, ops)
    assert result["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert result["spec"]["containers"][0]["image"] == "busybox:3"
    assert result["spec"]["containers"][2]["name"] == "third"
    assert result["metadata"]["annotations"] == "p"


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/metadata/name", "value": "q"}],
        [{"op": "remove", "path": "/metadata/missing"}],
        [{"op": "replace", "path": "/nope/x", "value": 1}],
        [{"op": "frobnicate", "path": "/a"}],
        {"op": "add"},
    ],
)
def test_json_patch_errors(ops: object) -> None:
    with pytest.raises(PatchError):
        json_patch(POD, ops)

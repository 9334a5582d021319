"""Loading the shipped deployment files, for the deploy tests."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "kubernetes"
INSTALL_SH = DEPLOY / "install.sh"
README = DEPLOY / "README.md"
DOCKERFILE = REPO / "Dockerfile"
# The seed's order, then the optional control plane.
PROVIDER_FILES = ("namespace.yaml", "rbac.yaml", "network-policy.yaml", "configmap.yaml")
# The operator's pod profiles: in the kustomization; install.sh creates it only when missing.
POD_TEMPLATES_FILE = "pod-templates.yaml"
KUSTOMIZATION_FILES = (*PROVIDER_FILES, POD_TEMPLATES_FILE)
ALL_FILES = (*KUSTOMIZATION_FILES, "control-plane.yaml")

Obj = dict[str, Any]


@functools.cache
def _parsed(name: str) -> tuple[Obj, ...]:
    with (DEPLOY / name).open() as f:
        return tuple(doc for doc in yaml.safe_load_all(f) if doc)


def load(name: str) -> list[Obj]:
    """Every document of one manifest file (a fresh copy: tests may change it)."""
    return copy.deepcopy(list(_parsed(name)))


def all_objects(files: tuple[str, ...] = ALL_FILES) -> list[Obj]:
    """Every object of the given files, in order."""
    return [obj for name in files for obj in load(name)]


def find(kind: str, name: str, files: tuple[str, ...] = ALL_FILES) -> Obj:
    """The one object of that kind and name; fails the test when absent."""
    matches = [o for o in all_objects(files) if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected exactly one {kind} {name}, found {len(matches)}"
    return matches[0]


def of_kind(kind: str, files: tuple[str, ...] = ALL_FILES) -> list[Obj]:
    """All objects of a kind."""
    return [o for o in all_objects(files) if o["kind"] == kind]


def namespace_labels(name: str) -> dict[str, str]:
    """A shipped namespace's labels plus the one the API server adds to every namespace."""
    labels = dict(find("Namespace", name)["metadata"].get("labels", {}))
    labels["kubernetes.io/metadata.name"] = name
    return labels

"""Offline check of a manifest against the Kubernetes object schema the client ships.

A pod template with a misspelt field (``nodeSelecter``) would be silently dropped by a
lenient reader and rejected by the API server only when a job runs. The generated model
classes of ``kubernetes_asyncio`` carry the Kubernetes OpenAPI schema of the client's
version (each class's ``openapi_types`` and ``attribute_map``), so walking a manifest
along them finds unknown fields and wrong shapes at startup, without a cluster and
without another dependency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client as k8s

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(([^,]+), (.+)\)$")
_SCALARS: Mapping[str, tuple[type, ...]] = {
    "str": (str, int, float),  # quantities and int-or-string fields are typed "str" too
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "datetime": (str,),
    "date": (str,),
}
_WORDS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}


def _model(name: str) -> Any:
    return getattr(k8s, name, None)


def _walk(value: Any, type_name: str, path: str, problems: list[tuple[str, str]]) -> None:
    if value is None or type_name == "object":
        return
    match = _LIST.match(type_name)
    if match:
        if not isinstance(value, list):
            problems.append((path, f"is a {type(value).__name__}, expected a list"))
            return
        for i, item in enumerate(value):
            _walk(item, match.group(1), f"{path}[{i}]", problems)
        return
    match = _DICT.match(type_name)
    if match:
        if not isinstance(value, Mapping):
            problems.append((path, f"is a {type(value).__name__}, expected a mapping"))
            return
        for key, item in value.items():
            _walk(item, match.group(2), f"{path}.{key}", problems)
        return
    if type_name in _SCALARS:
        wanted = _SCALARS[type_name]
        if (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted):
            problems.append((path, f"is {value!r}, expected a {_WORDS.get(type_name, type_name)}"))
        return
    model = _model(type_name)
    if model is None:
        return  # a type this client does not describe: the API server will judge it
    if not isinstance(value, Mapping):
        problems.append((path, f"is a {type(value).__name__}, expected a mapping"))
        return
    by_json = {json: python for python, json in model.attribute_map.items()}
    for key, item in value.items():
        field = f"{path}.{key}" if path else str(key)
        python = by_json.get(key)
        if python is None:
            problems.append((field, "is not a field of the Kubernetes schema (misspelt?)"))
            continue
        _walk(item, model.openapi_types[python], field, problems)


def pod_schema_problems(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field path, problem)`` for each field of ``manifest`` a v1 Pod does not have.

    Paths look like ``spec.containers[0].volumeMount``. Values typed ``object`` in the
    schema (int-or-string) are not looked into; the API server's dry run judges values.
    """
    problems: list[tuple[str, str]] = []
    _walk(manifest, "V1Pod", "", problems)
    return problems

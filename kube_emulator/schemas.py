"""Unknown-field checks for ``fieldValidation=Strict|Warn``, from published JSON schemas.

kubectl sends ``fieldValidation=Strict`` with apply/create/replace; kube-apiserver then
refuses objects carrying fields its schema does not declare (``strict decoding error:
unknown field "spec.foo"``) and, with Warn, accepts them with a ``Warning`` header. The
schemas are those the ``kubernetes-validate`` package ships (strict variants, which set
``additionalProperties: false``); validators are built once per kind. Only unknown
fields are reported here: required fields and enums are the admission rules' business.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

try:  # a test dependency; without it the emulator simply skips these checks
    import importlib_resources
    import jsonschema
    from referencing import Registry, Resource
except ImportError:  # pragma: no cover - exercised only without the test extra
    jsonschema = None  # type: ignore[assignment]

_ADDITIONAL = re.compile(r"\('(?P<fields>[^)]*)' (?:was|were) unexpected\)")


def _schema_dir(version: str) -> Any:
    root = importlib_resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
    return root.joinpath(f"v{version}.0-local-strict")


@functools.lru_cache(maxsize=64)
def _validator(api_version: str, kind: str, version: str) -> Any:
    if jsonschema is None:
        return None
    directory = _schema_dir(version)
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = directory.joinpath(f"{kind.lower()}-{group_version}.json")
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    definitions = json.loads(directory.joinpath("_definitions.json").read_text())
    registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _path(error: Any) -> str:
    parts: list[str] = []
    for part in error.absolute_path:
        if isinstance(part, int):
            parts[-1] = f"{parts[-1]}[{part}]" if parts else f"[{part}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _leaves(error: Any) -> list[Any]:
    if error.context:
        return [leaf for sub in error.context for leaf in _leaves(sub)]
    return [error]


def unknown_fields(obj: dict[str, Any], kubernetes_version: str) -> list[str]:
    """Dotted paths of fields the kind's schema does not declare (``spec.foo``)."""
    validator = _validator(str(obj.get("apiVersion")), str(obj.get("kind")), kubernetes_version)
    if validator is None:
        return []
    found: list[str] = []
    for error in validator.iter_errors(obj):
        for leaf in _leaves(error):
            if leaf.validator != "additionalProperties":
                continue
            match = _ADDITIONAL.search(leaf.message)
            if not match:
                continue
            prefix = _path(leaf)
            for field in match["fields"].split("', '"):
                found.append(f"{prefix}.{field}" if prefix else field)
    return sorted(set(found))

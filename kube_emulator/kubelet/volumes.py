"""ConfigMap and Secret volumes: the files the kubelet projects into a pod's volume.

A ``configMap`` or ``secret`` volume holds one file per key of the object (``items``
choose keys and give them paths), mode ``defaultMode`` (0644 unless set). The kubelet
writes them with its atomic writer: the files live in a timestamped directory, ``..data``
links to it and each top-level name links into ``..data``, so a reader sees a whole
update or none; programs that read such mounts (Hodei's pod profiles among them) must
skip the dot-entries, and the emulator reproduces the layout so they are tested against
it. A missing object or key that is not ``optional`` keeps the pod's containers from
being created: the kubelet keeps them waiting (``ContainerCreating``) and reports
``MountVolume.SetUp failed for volume ...``. :func:`volume_files` is pure (objects are
read through the lookup given); :func:`write_volume` does the writing.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kube_emulator.kubelet.env import ObjectLookup

DEFAULT_MODE = 0o644
DATA_LINK = "..data"


class MountError(Exception):
    """A volume that cannot be set up; ``str()`` is the kubelet's message."""


def _object_files(kind: str, obj: Mapping[str, Any]) -> dict[str, bytes]:
    if kind == "secret":
        return {str(k): base64.b64decode(str(v)) for k, v in (obj.get("data") or {}).items()}
    files = {str(k): str(v).encode() for k, v in (obj.get("data") or {}).items()}
    files.update(
        {str(k): base64.b64decode(str(v)) for k, v in (obj.get("binaryData") or {}).items()}
    )
    return files


def _source(volume: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    for kind in ("configMap", "secret"):
        if kind in volume:
            return ("secret" if kind == "secret" else "configmap"), volume[kind] or {}
    return None


def volume_files(
    pod: Mapping[str, Any], lookup: ObjectLookup
) -> dict[str, tuple[dict[str, bytes], int]]:
    """Volume name -> (relative path -> content, file mode) for each configMap/secret volume.

    Raises :class:`MountError` naming the volume and the missing object or key.
    """
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    found: dict[str, tuple[dict[str, bytes], int]] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        source = _source(volume)
        if source is None:
            continue
        kind, ref = source
        name = str(ref.get("secretName" if kind == "secret" else "name", ""))
        optional = bool(ref.get("optional"))
        get = lookup.get_secret if kind == "secret" else lookup.get_configmap
        obj = get(namespace, name)
        failed = f'MountVolume.SetUp failed for volume "{volume["name"]}" : '
        if obj is None:
            if not optional:
                raise MountError(f'{failed}{kind} "{name}" not found')
            obj = {}
        data = _object_files(kind, obj)
        items = ref.get("items")
        if items:
            files = {}
            for item in items:
                key = str(item["key"])
                if key not in data:
                    if optional:
                        continue
                    kind_name = "configmap" if kind == "configmap" else "secret"
                    raise MountError(f"{failed}{kind_name} references non-existent key {key}")
                files[str(item["path"])] = data[key]
        else:
            files = data
        found[str(volume["name"])] = (files, int(ref.get("defaultMode", DEFAULT_MODE)))
    return found


def write_volume(directory: Path, files: Mapping[str, bytes], mode: int) -> None:
    """Lay ``files`` out in ``directory`` as the kubelet's atomic writer does."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    payload = directory / stamp
    payload.mkdir()
    for relative, content in files.items():
        target = payload / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
    for path in [payload, *payload.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    link = directory / DATA_LINK
    tmp = directory / f"{DATA_LINK}_tmp"
    tmp.symlink_to(stamp)
    os.replace(tmp, link)
    for top in {relative.split("/", 1)[0] for relative in files}:
        entry = directory / top
        if not entry.is_symlink():
            entry.symlink_to(f"{DATA_LINK}/{top}")
    directory.chmod(0o755)

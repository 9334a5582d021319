"""Image references and the kubelet's pull messages, without I/O.

No registry is reachable, so "pulling" means looking the image up in the emulator's list
of known images. A miss is reported the way kubelet + containerd report a missing image:
first ``ErrImagePull`` with the runtime's error, then ``ImagePullBackOff`` whose message
(Kubernetes ≥1.32) repeats the last pull error after the back-off notice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"

_DEFAULT_REGISTRY = "docker.io"


def normalize(image: str) -> str:
    """The fully qualified reference containerd resolves ``image`` to.

    ``busybox`` → ``docker.io/library/busybox:latest``; ``org/app:1`` →
    ``docker.io/org/app:1``; ``localhost/x`` → ``localhost/x:latest``.
    """
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if not rest:
        name = f"{_DEFAULT_REGISTRY}/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"{_DEFAULT_REGISTRY}/{name}"
    if digest:
        return f"{name}@{digest}"
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def image_id(image: str) -> str:
    """A stable ``repo@sha256:…`` id for a known image (the emulator has no manifests)."""
    reference = normalize(image)
    repository = reference.split("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository = repository[: len(repository) - len(last)] + last.split(":", 1)[0]
    digest = hashlib.sha256(reference.encode()).hexdigest()
    return f"{repository}@sha256:{digest}"


@dataclass(frozen=True)
class ImageCatalog:
    """The images the node can "pull", compared by their normalized reference."""

    references: frozenset[str]

    @classmethod
    def of(cls, images: Iterable[str]) -> ImageCatalog:
        return cls(frozenset(normalize(image) for image in images))

    def has(self, image: str) -> bool:
        return normalize(image) in self.references


def pull_error_message(image: str) -> str:
    """The ``ErrImagePull`` message containerd gives for an image no registry has."""
    reference = normalize(image)
    return (
        f"rpc error: code = NotFound desc = failed to pull and unpack image "
        f'"{reference}": failed to resolve reference "{reference}": {reference}: not found'
    )


def back_off_message(image: str) -> str:
    """The ``ImagePullBackOff`` message: the back-off notice, then the last pull error."""
    return f'Back-off pulling image "{image}": {ERR_IMAGE_PULL}: {pull_error_message(image)}'

"""Image references as containerd resolves them, and the kubelet's pull failure messages."""

from __future__ import annotations

import pytest

from kube_emulator.kubelet.images import (
    ImageCatalog,
    back_off_message,
    image_id,
    normalize,
    pull_error_message,
)


@pytest.mark.parametrize(
    ("image", "reference"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("org/app", "docker.io/org/app:latest"),
        ("ghcr.io/org/app:v1", "ghcr.io/org/app:v1"),
        ("localhost/hodei", "localhost/hodei:latest"),
        ("registry:5000/app", "registry:5000/app:latest"),
        ("app@sha256:abc", "docker.io/library/app@sha256:abc"),
    ],
)
def test_normalize(image: str, reference: str) -> None:
    assert normalize(image) == reference


def test_catalog_matches_by_reference() -> None:
    catalog = ImageCatalog.of(["hodei:latest", "localhost/debian-python:bookworm"])
    assert catalog.has("hodei")
    assert catalog.has("docker.io/library/hodei:latest")
    assert catalog.has("localhost/debian-python:bookworm")
    assert not catalog.has("hodei:other")


def test_image_id_names_the_repository_and_a_digest() -> None:
    assert image_id("busybox:1.36").startswith("docker.io/library/busybox@sha256:")
    assert len(image_id("busybox").rsplit(":", 1)[1]) == 64


def test_pull_messages() -> None:
    assert pull_error_message("nosuch") == (
        "rpc error: code = NotFound desc = failed to pull and unpack image "
        '"docker.io/library/nosuch:latest": failed to resolve reference '
        '"docker.io/library/nosuch:latest": docker.io/library/nosuch:latest: not found'
    )
    assert back_off_message("nosuch") == (
        'Back-off pulling image "nosuch": ErrImagePull: ' + pull_error_message("nosuch")
    )

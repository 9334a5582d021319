"""What every part of the kubelet shares: the store, the runtime, the node and its timings."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kube_emulator.errors import ApiError
from kube_emulator.kubelet.images import ImageCatalog
from kube_emulator.kubelet.runtime.base import PodRuntime
from kube_emulator.kubelet.scheduler import Node
from kube_emulator.kubelet_api import PodStore

NODE_NAME = "emulator-node"
NODE_IP = "127.0.0.1"


@dataclass(frozen=True)
class Timings:
    """Delays the real kubelet measures in seconds to minutes, shortened for tests."""

    image_back_off: float = 1.0  # ErrImagePull -> ImagePullBackOff
    config_retry: float = 1.0  # retry of CreateContainerConfigError / CreateContainerError
    default_grace: float = 30.0  # terminationGracePeriodSeconds when the pod sets none


@dataclass(frozen=True)
class KubeletContext:
    """The node-wide pieces a pod worker needs."""

    store: PodStore
    runtime: PodRuntime
    catalog: ImageCatalog
    node: Node
    workdir: Path
    timings: Timings = Timings()

    def record_event(
        self,
        pod: Mapping[str, Any],
        reason: str,
        message: str,
        *,
        warning: bool = False,
        component: str = "kubelet",
    ) -> None:
        """Post an Event about ``pod``; events are best effort, as in a real cluster."""
        metadata = pod.get("metadata") or {}
        with contextlib.suppress(ApiError):
            self.store.record_event(
                metadata.get("namespace", "default"),
                involved=dict(pod),
                reason=reason,
                message=message,
                type="Warning" if warning else "Normal",
                component=component,
            )

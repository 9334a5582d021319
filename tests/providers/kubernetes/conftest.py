"""A control plane with the Kubernetes provider against the emulator and its kubelet,
for the end-to-end tests of this package (``cluster_factory``)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .helpers import MANIFESTS, Admin, no_pods

CONTROL_PLANE = ("hodei-system", "hodei-control-plane")


@dataclass
class Cluster:
    emulator: Any
    plane: Any
    admin: Admin

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("HODEI_API_TOKEN", None)
        env["HODEI_SERVER"] = self.plane.address
        return env

    def command(self, *args: str) -> list[str]:
        """``hodei run ARGS`` as an argv."""
        return [sys.executable, "-m", "hodei", "run", *args]

    async def hodei(self, *args: str) -> str:
        """Another ``hodei`` command's stdout (it must succeed)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hodei", *args, env=self.env(), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, args
        return out.decode()

    async def run(self, *args: str, within: float = 60) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *self.command(*args),
            env=self.env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), within)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def no_pods_left(self) -> list[str]:
        await no_pods(self.admin)
        return await self.admin.pod_names()


@pytest.fixture
async def cluster_factory(kube_emulator_factory: Any, control_plane_factory: Any) -> Any:
    admins: list[Any] = []

    async def make(**env: str) -> Cluster:
        emulator = kube_emulator_factory(
            kubelet=True, images=("hodei:latest",), serviceaccounts=(CONTROL_PLANE,)
        )
        emulator.apply_manifest(MANIFESTS / "namespace.yaml")
        emulator.apply_manifest(MANIFESTS / "rbac.yaml")
        settings = {
            "HODEI_K8S_ENABLED": "1",
            "HODEI_LOCAL_ENABLED": "0",
            "HODEI_K8S_KUBECONFIG": str(emulator.serviceaccount_kubeconfig(*CONTROL_PLANE)),
            "HODEI_K8S_PENDING_TIMEOUT": "4",
            **env,
        }
        plane = await control_plane_factory(env=settings)
        admin_cm = Admin.connect(Path(emulator.admin_kubeconfig))
        admin = await admin_cm.__aenter__()
        admins.append(admin_cm)
        return Cluster(emulator, plane, admin)

    yield make
    for cm in admins:
        await cm.__aexit__(None, None, None)


Make = Callable[..., Awaitable[Cluster]]

"""The in-process emulator handle used by tests, benchmarks and other fixtures.

`running_emulator` runs an emulator on its own event loop in a background thread, so
synchronous and asynchronous tests alike can talk to it over HTTPS, run the real
kubectl against it, inject faults and read request counts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from . import admission
from .faults import Faults
from .meta import clone
from .resources import by_kind
from .runtime import EmulatorRuntime, KubeletOptions
from .store import Store

T = TypeVar("T")
KUBECTL_TIMEOUT = 60.0


@dataclass(frozen=True)
class EmulatorConfig:
    """How to run one emulator."""

    workdir: Path
    kubelet: bool = False
    images: tuple[str, ...] = ()
    runtime: str = "process"
    node_cpu: str = "4"
    node_memory: str = "8Gi"
    node_labels: tuple[tuple[str, str], ...] = ()
    node_taints: tuple[str, ...] = ()  # KEY[=VALUE]:EFFECT each
    serviceaccounts: tuple[tuple[str, str], ...] = ()
    kubernetes_version: str = "1.33"


class RunningEmulator:
    """Handle on an emulator serving in a background thread."""

    def __init__(
        self, config: EmulatorConfig, runtime: EmulatorRuntime, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.config = config
        self._runtime = runtime
        self._loop = loop
        self.url = runtime.url
        self.admin_kubeconfig = runtime.write_admin_kubeconfig(config.workdir / "admin.kubeconfig")
        self._sa_kubeconfigs: dict[tuple[str, str], Path] = {}
        self._lock = threading.Lock()
        for namespace, name in config.serviceaccounts:
            self.serviceaccount_kubeconfig(namespace, name)
        assert runtime.faults is not None
        self.faults: Faults = runtime.faults
        self.store: Store = runtime.store
        self._kubectl_home = config.workdir / "kubectl-home"
        self._kubectl_home.mkdir(exist_ok=True)

    def serviceaccount_kubeconfig(self, namespace: str, name: str) -> Path:
        """A kubeconfig authenticating as that ServiceAccount (created on first use)."""
        with self._lock:
            path = self._sa_kubeconfigs.get((namespace, name))
            if path is None:
                path = self.config.workdir / f"sa-{namespace}-{name}.kubeconfig"
                self._runtime.write_serviceaccount_kubeconfig(path, namespace, name)
                self._sa_kubeconfigs[(namespace, name)] = path
            return path

    def request_counts(self) -> dict[tuple[str, str], int]:
        """Requests served so far per (verb, resource)."""
        return self._runtime.counter.snapshot()

    def reset_request_counts(self) -> None:
        """Start counting from zero."""
        self._runtime.counter.reset()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the emulator loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a synchronous function (e.g. a store method) on the emulator loop."""

        async def invoke() -> T:
            return fn(*args, **kwargs)

        return self.run(invoke())

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        input: str | None = None,
        check: bool = False,
        timeout: float = KUBECTL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl (admin by default) with HOME and KUBECONFIG kept private."""
        command, env = self._kubectl_command(args, kubeconfig)
        return subprocess.run(
            command,
            input=input,
            capture_output=True,
            text=True,
            env=env,
            check=check,
            timeout=timeout,
        )

    def kubectl_process(self, *args: str) -> subprocess.Popen[str]:
        """Start the real kubectl (admin) without waiting, its stdout a text pipe: for
        commands that follow (``logs -f``, ``get -w``) while the test changes things."""
        command, env = self._kubectl_command(args, None)
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )

    def _kubectl_command(
        self, args: tuple[str, ...], kubeconfig: Path | None
    ) -> tuple[list[str], dict[str, str]]:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise FileNotFoundError("kubectl is not installed")
        env = dict(os.environ)
        env.update(
            HOME=str(self._kubectl_home), KUBECONFIG=str(kubeconfig or self.admin_kubeconfig)
        )
        return [kubectl, *args], env  # the cache goes under the private HOME

    def apply_manifest(self, path: Path) -> None:
        """Create or update every object of a (multi-document) YAML file, as admin."""
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        self.call(apply_objects, self.store, documents)


def apply_objects(store: Store, documents: list[dict[str, Any]]) -> None:
    """Create each object, or replace the existing one, through the admission rules."""
    for document in documents:
        if document.get("kind") == "List":
            apply_objects(store, list(document.get("items") or []))
            continue
        rtype = by_kind(document.get("apiVersion", ""), document.get("kind", ""))
        if rtype is None:
            raise ValueError(
                f"unsupported kind {document.get('apiVersion')}/{document.get('kind')}"
            )
        obj = clone(document)
        namespace = obj.get("metadata", {}).get("namespace") or (
            "default" if rtype.namespaced else None
        )
        admission.check_quantities(rtype.kind, obj)
        admission.validate_metadata(rtype.kind, obj, rtype.group)
        existing = store.get(rtype, namespace, obj["metadata"]["name"])
        if existing is None:
            admission.prepare_create(rtype.plural, obj)
            store.create(rtype, namespace, obj)
        else:
            new = admission.prepare_update(rtype.plural, "", existing, obj)
            store.replace(rtype, namespace, obj["metadata"]["name"], new)


@contextmanager
def running_emulator(config: EmulatorConfig) -> Iterator[RunningEmulator]:
    """Serves HTTPS on 127.0.0.1:0 in a background thread with its own event loop."""
    config.workdir.mkdir(parents=True, exist_ok=True)
    kubelet = (
        KubeletOptions(
            config.images,
            config.runtime,
            config.node_cpu,
            config.node_memory,
            config.node_labels,
            config.node_taints,
        )
        if config.kubelet
        else None
    )
    runtime = EmulatorRuntime(
        config.workdir, kubernetes_version=config.kubernetes_version, kubelet=kubelet
    )
    loop = asyncio.new_event_loop()
    started: concurrent.futures.Future[None] = concurrent.futures.Future()

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            try:
                await runtime.start()
            except BaseException as exc:
                started.set_exception(exc)
                raise
            started.set_result(None)

        try:
            loop.run_until_complete(boot())
        except BaseException:
            loop.close()
            return
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=serve, name="kube-emulator", daemon=True)
    thread.start()
    started.result(timeout=60)
    try:
        yield RunningEmulator(config, runtime, loop)
    finally:
        try:
            asyncio.run_coroutine_threadsafe(runtime.stop(), loop).result(timeout=60)
        finally:
            _cancel_remaining(loop)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    async def cancel_all() -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout=30)


@contextmanager
def temporary_emulator(**kwargs: Any) -> Iterator[RunningEmulator]:
    """`running_emulator` with a temporary workdir (benchmarks, scripts)."""
    with (
        tempfile.TemporaryDirectory(prefix="kube-emulator-") as workdir,
        running_emulator(EmulatorConfig(workdir=Path(workdir), **kwargs)) as emulator,
    ):
        yield emulator

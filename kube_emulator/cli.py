"""``scripts/kube-emulator``: run one emulator in the foreground until SIGTERM/SIGINT.

Kubeconfig files are written only once the server accepts requests, so a script can
wait for the admin kubeconfig to appear and then use it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .runtime import EmulatorRuntime, KubeletOptions


def _serviceaccount(value: str) -> tuple[str, str, Path]:
    target, sep, path = value.partition("=")
    namespace, slash, name = target.partition("/")
    if not sep or not slash or not namespace or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAMESPACE/NAME=FILE, got {value!r}")
    return namespace, name, Path(path)


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted KEY=VALUE")
    return key, value


def _taint(text: str) -> str:
    from kube_emulator.kubelet.scheduler import Taint

    try:
        Taint.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of the emulator."""
    parser = argparse.ArgumentParser(
        prog="kube-emulator", description="Kubernetes API emulator for tests (HTTPS on 127.0.0.1)."
    )
    parser.add_argument("--kubeconfig", type=Path, required=True, help="admin kubeconfig to write")
    parser.add_argument(
        "--serviceaccount-kubeconfig",
        type=_serviceaccount,
        action="append",
        default=[],
        metavar="NAMESPACE/NAME=FILE",
        help="write a kubeconfig authenticating as that ServiceAccount (repeatable)",
    )
    parser.add_argument("--kubelet", action="store_true", help="run pods (scheduler + kubelet)")
    parser.add_argument("--image", action="append", default=[], help="image the kubelet can pull")
    parser.add_argument("--runtime", choices=("process", "podman"), default="process")
    parser.add_argument("--node-cpu", default="4")
    parser.add_argument("--node-memory", default="8Gi")
    parser.add_argument(
        "--node-label",
        type=_label,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label of the node besides the well-known ones (repeatable)",
    )
    parser.add_argument(
        "--node-taint",
        type=_taint,
        action="append",
        default=[],
        metavar="KEY[=VALUE]:EFFECT",
        help="a taint of the node, as kubectl taint writes it (repeatable)",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: free)")
    parser.add_argument("--kubernetes-version", default="1.33")
    parser.add_argument("--workdir", type=Path, help="runtime files (default: a temp dir)")
    return parser


async def serve(args: argparse.Namespace, workdir: Path) -> None:
    """Run until a termination signal arrives."""
    kubelet = (
        KubeletOptions(
            tuple(args.image),
            args.runtime,
            args.node_cpu,
            args.node_memory,
            tuple(args.node_label),
            tuple(args.node_taint),
        )
        if args.kubelet
        else None
    )
    runtime = EmulatorRuntime(
        workdir, kubernetes_version=args.kubernetes_version, kubelet=kubelet, port=args.port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runtime.start()
    try:
        for namespace, name, path in args.serviceaccount_kubeconfig:
            runtime.write_serviceaccount_kubeconfig(path, namespace, name)
        runtime.write_admin_kubeconfig(args.kubeconfig)
        logging.getLogger("kube_emulator").info("serving %s", runtime.url)
        await stop.wait()
    finally:
        await runtime.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.workdir is not None:
        asyncio.run(serve(args, args.workdir))
        return 0
    with tempfile.TemporaryDirectory(prefix="kube-emulator-") as workdir:
        asyncio.run(serve(args, Path(workdir)))
    return 0

"""``hodei k8s verify``: the deployment README's verification, run against the cluster.

The command reads the cluster the Kubernetes provider would use (the same variables:
``HODEI_K8S_KUBECONFIG``, ``HODEI_K8S_CONTEXT``, ``HODEI_K8S_NAMESPACE``,
``HODEI_K8S_SERVICE_ACCOUNT``; flags override them), prints one line per check with the
fix under each failure, and exits 1 when a check failed, 2 when the cluster could not be
read at all.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from typing import Any

from hodei.config.settings import KubernetesSettings, SettingsError, load_kubernetes_settings
from hodei.providers.kubernetes.verify import (
    CONTROL_PLANE_ACCOUNT,
    SYSTEM_NAMESPACE,
    CheckResult,
    Layout,
    Status,
    exit_code,
)

EXIT_UNREADABLE = 2


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``hodei k8s verify`` to the CLI's subcommands."""
    k8s = subparsers.add_parser(
        "k8s", help="Kubernetes deployment tools", description="Kubernetes deployment tools."
    )
    commands = k8s.add_subparsers(dest="k8s_command", metavar="COMMAND", required=True)
    verify = commands.add_parser(
        "verify",
        help="check that deploy/kubernetes is installed and the provider has its permissions",
        description=(
            "Check namespaces, ServiceAccounts, Role, RoleBinding, NetworkPolicies and the "
            "ConfigMap, ask the API server whether the control plane's identity may do "
            "what the provider needs, and whether each operator pod profile's pod would be "
            "admitted (server-side dry run). One line per check; exit 1 when one fails."
        ),
    )
    verify.add_argument("--kubeconfig", help="kubeconfig file (default: HODEI_K8S_KUBECONFIG)")
    verify.add_argument("--context", help="kubeconfig context (default: HODEI_K8S_CONTEXT)")
    verify.add_argument(
        "--namespace", help="workers namespace (default: HODEI_K8S_NAMESPACE, hodei-workers)"
    )
    verify.add_argument(
        "--system-namespace",
        default=SYSTEM_NAMESPACE,
        help=f"control plane namespace (default: {SYSTEM_NAMESPACE})",
    )
    verify.add_argument(
        "--control-plane-account",
        default=CONTROL_PLANE_ACCOUNT,
        help=f"control plane ServiceAccount (default: {CONTROL_PLANE_ACCOUNT})",
    )
    verify.set_defaults(func=run_verify)


def _settings(args: argparse.Namespace) -> KubernetesSettings:
    settings = load_kubernetes_settings(os.environ)
    overrides = {
        "kubeconfig": args.kubeconfig,
        "context": args.context,
        "namespace": args.namespace,
    }
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v})


def _summary(results: list[CheckResult]) -> str:
    counts = {status: 0 for status in Status}
    for result in results:
        counts[result.status] += 1
    parts = [f"{counts[s]} {s.value}" for s in Status if counts[s] or s is Status.FAIL]
    return f"{len(results)} checks: " + ", ".join(parts)


def run_verify(args: argparse.Namespace) -> int:
    """Run the checks and print them; the exit code says whether the install is right."""
    # Imported here so the rest of the CLI starts without loading the Kubernetes client.
    from hodei.providers.kubernetes._client_verify import VerifyError, verify_cluster
    from hodei.providers.kubernetes.errors import KubernetesConfigError

    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"hodei k8s verify: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    layout = dataclasses.replace(
        Layout.from_settings(settings),
        system_namespace=args.system_namespace,
        control_plane_account=args.control_plane_account,
    )
    try:
        results = asyncio.run(verify_cluster(settings, layout))
    except (KubernetesConfigError, VerifyError) as exc:
        print(f"hodei k8s verify: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    for result in results:
        print(result.line())
    print(_summary(results))
    return exit_code(results)

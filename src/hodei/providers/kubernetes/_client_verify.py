"""The Kubernetes reads behind ``hodei k8s verify``.

Reads what :mod:`.verify` judges, with the provider's own client configuration
(:func:`.client.load_client_config`, so kubeconfig, context and in-cluster credentials are
resolved exactly as the provider resolves them). Permissions are asked of the API server
rather than inferred from the RBAC objects: a SubjectAccessReview for the control plane's
ServiceAccount, or, when the caller may not create those (e.g. the control plane itself),
a SelfSubjectAccessReview for the caller. Objects come back as JSON-shaped dicts.

Operator pod profiles are read from ``HODEI_K8S_POD_TEMPLATES_DIR`` when set, else from
the ConfigMap ``hodei-pod-templates`` the in-cluster control plane mounts, and each
profile's worker pod is sent as a server-side dry run (``dryRun=All``: admission runs,
nothing is stored), which needs only the ``create pods`` the provider's Role grants.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable
from typing import Any, cast

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from hodei.config.settings import KubernetesSettings
from hodei.providers.kubernetes.client import load_client_config
from hodei.providers.kubernetes.profiles import (
    Profiles,
    load_profiles,
    profile_pod,
    profiles_from_configmap,
    sample_request,
)
from hodei.providers.kubernetes.templates import TemplateError
from hodei.providers.kubernetes.verify import (
    API_TOKEN_SECRET,
    CONTROL_PLANE,
    POD_TEMPLATES,
    PROVIDER_CONFIG,
    PROVIDER_ROLE,
    Access,
    CheckResult,
    ClusterState,
    JsonObject,
    Layout,
    ProfileFinding,
    ProfileFindings,
    expected_access,
    expected_network_policies,
    run_checks,
)

READ_TIMEOUT = 60.0  # seconds for all the reads together: a silent API must not hang the CLI


class VerifyError(Exception):
    """The cluster could not be read at all (unreachable, not authenticated, not allowed)."""


async def verify_cluster(settings: KubernetesSettings, layout: Layout) -> list[CheckResult]:
    """Read the cluster ``settings`` points at and run every check against ``layout``."""
    configuration = await load_client_config(settings)
    try:
        async with asyncio.timeout(READ_TIMEOUT), k8s.ApiClient(configuration=configuration) as api:
            state = await read_cluster_state(api, layout)
            state = dataclasses.replace(state, profiles=await read_profiles(api, settings, layout))
    except aiohttp.ClientError as exc:
        raise VerifyError(f"cannot reach the Kubernetes API: {exc}") from exc
    except TimeoutError:
        raise VerifyError(
            f"the Kubernetes API at {configuration.host} did not answer within {READ_TIMEOUT:.0f} s"
        ) from None
    return run_checks(layout, state)


async def _maybe(api: k8s.ApiClient, read: Awaitable[Any]) -> JsonObject | None:
    """The object ``read`` returns, as a dict, or None when it does not exist."""
    try:
        obj = await read
    except ApiException as exc:
        if exc.status == 404:
            return None
        if exc.status in (401, 403):
            raise VerifyError(
                f"the Kubernetes API refused a read: {exc.reason} ({exc.status}). "
                "Verifying reads namespaces, RBAC objects and NetworkPolicies, which the "
                "control plane's own account may not: run it with admin credentials "
                "(--kubeconfig/--context of a cluster administrator)"
            ) from exc
        raise
    result: JsonObject = api.sanitize_for_serialization(obj)
    return result


async def read_cluster_state(api: k8s.ApiClient, layout: Layout) -> ClusterState:
    """Everything :func:`.verify.run_checks` looks at."""
    core, rbac = k8s.CoreV1Api(api), k8s.RbacAuthorizationV1Api(api)
    system, workers = layout.system_namespace, layout.workers_namespace
    namespaces = {name: await _maybe(api, core.read_namespace(name)) for name in (system, workers)}
    accounts = {
        f"{ns}/{name}": await _maybe(api, core.read_namespaced_service_account(name, ns))
        for ns, name in ((workers, layout.worker_account), (system, layout.control_plane_account))
    }
    access, identity = await review_access(api, layout)
    secret_readable = True
    try:
        secret = await _maybe(api, core.read_namespaced_secret(API_TOKEN_SECRET, system))
    except VerifyError:
        secret, secret_readable = None, False
    return ClusterState(
        namespaces=namespaces,
        service_accounts=accounts,
        role=await _maybe(api, rbac.read_namespaced_role(PROVIDER_ROLE, workers)),
        role_binding=await _maybe(api, rbac.read_namespaced_role_binding(PROVIDER_ROLE, workers)),
        network_policies=await _read_network_policies(api, layout),
        config_map=await _maybe(api, core.read_namespaced_config_map(PROVIDER_CONFIG, system)),
        access=access,
        access_identity=identity,
        deployment=await _maybe(
            api, k8s.AppsV1Api(api).read_namespaced_deployment(CONTROL_PLANE, system)
        ),
        service=await _maybe(api, core.read_namespaced_service(CONTROL_PLANE, system)),
        api_token_secret=secret,
        secret_readable=secret_readable,
    )


async def _read_network_policies(api: k8s.ApiClient, layout: Layout) -> dict[str, JsonObject]:
    networking = k8s.NetworkingV1Api(api)
    found: dict[str, JsonObject] = {}
    for name in expected_network_policies(layout):
        policy = await _maybe(
            api,
            networking.read_namespaced_network_policy(name, layout.workers_namespace),
        )
        if policy is not None:
            found[name] = policy
    return found


def _attributes(question: Access) -> k8s.V1ResourceAttributes:
    return k8s.V1ResourceAttributes(
        namespace=question.namespace,
        verb=question.verb,
        group=question.group,
        resource=question.resource,
        subresource=question.subresource or None,
    )


async def review_access(api: k8s.ApiClient, layout: Layout) -> tuple[dict[Access, bool], str]:
    """Answers for :func:`.verify.expected_access`, and whose access they describe."""
    authz = k8s.AuthorizationV1Api(api)
    questions = expected_access(layout)
    groups = [
        "system:serviceaccounts",
        f"system:serviceaccounts:{layout.system_namespace}",
        "system:authenticated",
    ]
    answers: dict[Access, bool] = {}
    try:
        for question in questions:
            review = k8s.V1SubjectAccessReview(
                spec=k8s.V1SubjectAccessReviewSpec(
                    user=layout.control_plane_user,
                    groups=groups,
                    resource_attributes=_attributes(question),
                )
            )
            result = await authz.create_subject_access_review(review)
            answers[question] = bool(result.status and result.status.allowed)
        return answers, layout.control_plane_user
    except ApiException as exc:
        if exc.status not in (403, 404):
            raise
    # Not allowed to ask about others (e.g. running as the control plane): ask about ourselves.
    for question in questions:
        self_review = k8s.V1SelfSubjectAccessReview(
            spec=k8s.V1SelfSubjectAccessReviewSpec(resource_attributes=_attributes(question))
        )
        self_result = await authz.create_self_subject_access_review(self_review)
        answers[question] = bool(self_result.status and self_result.status.allowed)
    return answers, "the current user"


def _api_message(exc: ApiException) -> str:
    """The Status message the API server answered with, else its reason."""
    try:
        message = json.loads(exc.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or f"{exc.status} {exc.reason}")


class _Unreadable(Exception):
    """The profiles' ConfigMap could not be read; ``str()`` says which."""


async def _configured_profiles(
    api: k8s.ApiClient, settings: KubernetesSettings, layout: Layout
) -> tuple[str, Profiles]:
    if settings.pod_templates_dir is not None:
        return settings.pod_templates_dir, load_profiles(settings.pod_templates_dir, settings)
    where = f"ConfigMap {layout.system_namespace}/{POD_TEMPLATES}"
    core = k8s.CoreV1Api(api)
    try:
        found = await _maybe(
            api, core.read_namespaced_config_map(POD_TEMPLATES, layout.system_namespace)
        )
    except VerifyError as exc:  # these credentials may not read it: say so, not "none"
        raise _Unreadable(f"{where} is not readable with these credentials") from exc
    if found is None:
        return "", Profiles()
    return where, profiles_from_configmap(found.get("data") or {}, where, settings)


async def read_profiles(
    api: k8s.ApiClient, settings: KubernetesSettings, layout: Layout
) -> ProfileFindings:
    """Each profile and whether its worker pod passes admission (a dry-run create)."""
    try:
        where, profiles = await _configured_profiles(api, settings, layout)
    except TemplateError as exc:
        return ProfileFindings(settings.pod_templates_dir or "", error=str(exc))
    except _Unreadable as exc:
        return ProfileFindings("", note=str(exc))
    core = k8s.CoreV1Api(api)
    found = []
    for name in profiles.names:
        template = profiles.templates[name]
        body = profile_pod(sample_request(name), settings, template, instance="verify")
        try:
            await core.create_namespaced_pod(
                layout.workers_namespace, cast(Any, body), dry_run="All"
            )
        except ApiException as exc:
            found.append(ProfileFinding(name, template.source, False, _api_message(exc)))
        else:
            found.append(ProfileFinding(name, template.source, True))
    return ProfileFindings(where, tuple(found))

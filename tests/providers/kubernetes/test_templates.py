"""Pod profiles: what a template may say (each refusal) and how it merges, field by field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hodei.config.settings import KubernetesSettings
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Resources, SecretKeyRef
from hodei.providers.base import WorkerRequest
from hodei.providers.kubernetes._client_schema import pod_schema_problems
from hodei.providers.kubernetes.pods import WorkerPodSpec, build_pod
from hodei.providers.kubernetes.profiles import job_inputs
from hodei.providers.kubernetes.templates import (
    PodTemplate,
    TemplateError,
    apply_profile,
    parse_template,
)

SETTINGS = KubernetesSettings(enabled=True, image_pull_secrets=("regcred",))


def request(**changes: Any) -> WorkerRequest:
    values: dict[str, Any] = {
        "worker_id": WorkerId("w-1"),
        "job_id": JobId("j-1"),
        "token": "tok",
        "server_address": "cp:50051",
        "labels": {"team": "data", "tier": "job"},
    }
    values.update(changes)
    return WorkerRequest(**values)


def manifest(spec: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "spec": spec or {}}
    if metadata:
        doc["metadata"] = metadata
    return doc


def template(spec: dict[str, Any] | None = None, **metadata: Any) -> PodTemplate:
    return parse_template("gpu", "gpu.yaml", manifest(spec, **metadata), schema=pod_schema_problems)


def merged(tmpl: PodTemplate | None, **changes: Any) -> dict[str, Any]:
    req = request(**changes)
    pod = build_pod(WorkerPodSpec.from_request(req, SETTINGS, instance="cp1"))
    return apply_profile(pod, tmpl, job_inputs(req, SETTINGS))


def job_container(pod: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod["spec"]["containers"][0]
    assert container["name"] == "worker"
    return container


def refused(doc: Any) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        parse_template("gpu", "/etc/hodei/pod-templates/gpu.yaml", doc, schema=pod_schema_problems)
    assert str(info.value).startswith("pod template /etc/hodei/pod-templates/gpu.yaml: ")
    return info.value


# -- merge rules ---------------------------------------------------------------------------


def test_no_template_leaves_the_pod_as_built() -> None:
    req = request()
    pod = build_pod(WorkerPodSpec.from_request(req, SETTINGS, instance="cp1"))
    assert apply_profile(copy.deepcopy(pod), None, job_inputs(req, SETTINGS)) == pod


def test_labels_template_over_job_hodei_over_all() -> None:
    pod = merged(template(labels={"tier": "gpu", "cost-center": "ml"}))
    labels = pod["metadata"]["labels"]
    assert labels["team"] == "data"  # the job's
    assert labels["tier"] == "gpu"  # the template's wins over the job's
    assert labels["cost-center"] == "ml"
    assert labels["app.kubernetes.io/managed-by"] == "hodei"
    assert labels["hodei.io/worker-id"] == "w-1"


def test_annotations_copied() -> None:
    pod = merged(template(annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}))
    assert pod["metadata"]["annotations"] == {
        "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"
    }


def test_metadata_name_is_ignored() -> None:
    pod = merged(template(name="anything"))
    assert pod["metadata"]["name"] == "hodei-worker-w-1"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("nodeSelector", {"pool": "gpu"}),
        ("tolerations", [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]),
        (
            "affinity",
            {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "zone", "operator": "In", "values": ["a"]}
                                ]
                            }
                        ]
                    }
                }
            },
        ),
        ("priorityClassName", "batch-low"),
        ("runtimeClassName", "gvisor"),
        (
            "topologySpreadConstraints",
            [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}],
        ),
    ],
)
def test_scheduling_fields_copied(key: str, value: Any) -> None:
    assert merged(template({key: value}))["spec"][key] == value


def test_volumes_appended_and_mounted_in_the_job_container() -> None:
    pod = merged(
        template(
            {
                "volumes": [
                    {"name": "settings", "configMap": {"name": "app-settings"}},
                    {"name": "creds", "secret": {"secretName": "app-creds"}},
                ],
                "containers": [
                    {
                        "name": "job",
                        "volumeMounts": [
                            {"name": "settings", "mountPath": "/etc/app", "readOnly": True},
                            {"name": "creds", "mountPath": "/var/run/creds"},
                        ],
                    }
                ],
            }
        )
    )
    assert pod["spec"]["volumes"] == [
        {"name": "tmp", "emptyDir": {}},
        {"name": "settings", "configMap": {"name": "app-settings"}},
        {"name": "creds", "secret": {"secretName": "app-creds"}},
    ]
    assert job_container(pod)["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "settings", "mountPath": "/etc/app", "readOnly": True},
        {"name": "creds", "mountPath": "/var/run/creds"},
    ]
    assert len(pod["spec"]["containers"]) == 1  # "job" adds to the job's container


def test_env_and_env_from_in_the_job_container() -> None:
    pod = merged(
        template(
            {
                "containers": [
                    {
                        "name": "job",
                        "env": [
                            {"name": "MODE", "value": "gpu"},
                            {"name": "HOME", "value": "/work"},
                            {
                                "name": "DB_URL",
                                "valueFrom": {"configMapKeyRef": {"name": "db", "key": "url"}},
                            },
                            {
                                "name": "API_KEY",
                                "valueFrom": {"secretKeyRef": {"name": "api", "key": "key"}},
                            },
                        ],
                        "envFrom": [{"configMapRef": {"name": "common"}}],
                    }
                ]
            }
        ),
        secret_env={"API_KEY": SecretKeyRef("mine", "k"), "TOKEN": SecretKeyRef("t", "v")},
    )
    container = job_container(pod)
    names = [var["name"] for var in container["env"]]
    # Hodei's HODEI_* first; HOME replaced by the template's; the job's secret refs win.
    assert names == [
        "HODEI_SERVER_ADDRESS",
        "HODEI_WORKER_ID",
        "HODEI_WORKER_TOKEN",
        "MODE",
        "HOME",
        "DB_URL",
        "API_KEY",
        "TOKEN",
    ]
    env = {var["name"]: var for var in container["env"]}
    assert env["HOME"] == {"name": "HOME", "value": "/work"}
    assert env["API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "mine", "key": "k"}}
    assert env["TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "t", "key": "v"}}
    assert env["DB_URL"]["valueFrom"] == {"configMapKeyRef": {"name": "db", "key": "url"}}
    assert container["envFrom"] == [{"configMapRef": {"name": "common"}}]


def test_secret_env_without_a_template() -> None:
    pod = merged(None, secret_env={"PASSWORD": SecretKeyRef("db-creds", "password")})
    env = job_container(pod)["env"]
    assert env[-1] == {
        "name": "PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}},
    }
    assert all("value" not in var or var["name"] != "PASSWORD" for var in env)


def test_image_pull_secrets_merged_with_the_setting() -> None:
    pod = merged(template({"imagePullSecrets": [{"name": "gpu-registry"}, {"name": "regcred"}]}))
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "gpu-registry"}]


def resources_template(**resources: Any) -> PodTemplate:
    return template({"containers": [{"name": "job", "resources": resources}]})


def test_template_resources_replace_the_defaults() -> None:
    pod = merged(
        resources_template(
            requests={"cpu": "2", "memory": "4Gi"},
            limits={"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 1},
        )
    )
    assert job_container(pod)["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"},
    }


def test_job_flags_win_over_template_resources() -> None:
    pod = merged(
        resources_template(requests={"cpu": "2", "memory": "4Gi"}, limits={"cpu": "4"}),
        resources=Resources(cpu_request="500m", cpu_limit="500m"),
    )
    resources = job_container(pod)["resources"]
    assert resources["requests"]["cpu"] == "500m"
    assert resources["limits"]["cpu"] == "500m"
    assert resources["requests"]["memory"] == "4Gi"  # the template's: the job gave none
    assert resources["limits"]["memory"] == "4Gi"  # default 512Mi raised to the request


def test_template_request_only_keeps_the_default_limit_when_larger() -> None:
    pod = merged(resources_template(requests={"memory": "256Mi"}))
    assert job_container(pod)["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "1000m", "memory": "512Mi"},
    }


def test_security_context_only_tightens() -> None:
    pod = merged(
        template(
            {
                "securityContext": {
                    "seccompProfile": {"type": "Localhost", "localhostProfile": "strict.json"},
                    "supplementalGroups": [2000],
                },
                "containers": [
                    {
                        "name": "job",
                        "securityContext": {"capabilities": {"drop": ["NET_RAW"]}},
                    }
                ],
            }
        )
    )
    pod_context = pod["spec"]["securityContext"]
    assert pod_context["seccompProfile"] == {"type": "Localhost", "localhostProfile": "strict.json"}
    assert pod_context["runAsNonRoot"] is True and pod_context["runAsUser"] == 10001
    assert pod_context["supplementalGroups"] == [2000]
    context = job_container(pod)["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL", "NET_RAW"]}
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True


def test_sidecars_and_init_containers_get_the_baseline() -> None:
    pod = merged(
        template(
            {
                "volumes": [{"name": "shared", "emptyDir": {}}],
                "initContainers": [
                    {
                        "name": "fetch",
                        "image": "busybox",
                        "command": ["true"],
                        "volumeMounts": [{"name": "shared", "mountPath": "/data"}],
                    }
                ],
                "containers": [
                    {
                        "name": "proxy",
                        "image": "proxy:1",
                        "securityContext": {"runAsUser": 2000},
                    }
                ],
            }
        )
    )
    assert [c["name"] for c in pod["spec"]["containers"]] == ["worker", "proxy"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["fetch"]
    proxy = pod["spec"]["containers"][1]
    assert proxy["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 2000,
    }
    fetch = pod["spec"]["initContainers"][0]
    assert fetch["securityContext"]["allowPrivilegeEscalation"] is False
    assert fetch["volumeMounts"] == [{"name": "shared", "mountPath": "/data"}]


def test_hodei_fields_survive_any_template() -> None:
    pod = merged(template({"nodeSelector": {"pool": "gpu"}}))
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert job_container(pod)["command"] == ["hodei", "worker"]


def test_collision_with_hodei_volume_raises() -> None:
    tmpl = template({"volumes": [{"name": "tmp", "emptyDir": {}}]})
    with pytest.raises(ValueError, match="tmp is Hodei's own volume name"):
        merged(tmpl)


def test_mount_over_hodei_mount_raises() -> None:
    tmpl = template(
        {
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "containers": [
                {"name": "job", "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}]}
            ],
        }
    )
    with pytest.raises(ValueError, match="/tmp is where Hodei mounts"):
        merged(tmpl)


# -- refusals ------------------------------------------------------------------------------


def test_not_a_pod() -> None:
    error = refused({"apiVersion": "apps/v1", "kind": "Deployment"})
    assert error.field == "kind"
    assert "apiVersion: v1, kind: Pod" in error.accepted
    assert refused(["a", "list"]).field == "(document)"


def test_unknown_field_against_the_schema() -> None:
    error = refused(manifest({"nodeSelecter": {"pool": "gpu"}}))
    assert error.field == "spec.nodeSelecter"
    assert "not a field of the Kubernetes schema" in error.problem
    nested = refused(manifest({"containers": [{"name": "job", "volumeMount": []}]}))
    assert nested.field == "spec.containers[0].volumeMount"
    wrong_type = refused(manifest({"tolerations": {"key": "x"}}))
    assert wrong_type.field == "spec.tolerations"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("restartPolicy", "Always", "always Never"),
        ("automountServiceAccountToken", True, "always false"),
        ("serviceAccountName", "admin", "HODEI_K8S_SERVICE_ACCOUNT"),
        ("activeDeadlineSeconds", 10, "--timeout"),
        ("hostNetwork", True, "restricted"),
        ("hostPID", True, "restricted"),
    ],
)
def test_hodei_pod_fields_refused(field: str, value: Any, reason: str) -> None:
    error = refused(manifest({field: value}))
    assert error.field == f"spec.{field}"
    assert reason in error.problem
    assert error.accepted == "remove it"


def test_field_outside_the_list_refused_with_the_list() -> None:
    error = refused(manifest({"dnsPolicy": "None"}))
    assert error.field == "spec.dnsPolicy"
    assert "nodeSelector" in error.accepted and "initContainers" in error.accepted


@pytest.mark.parametrize(
    "key", ["app.kubernetes.io/managed-by", "app.kubernetes.io/component", "hodei.io/job-id"]
)
def test_hodei_labels_refused(key: str) -> None:
    error = refused(manifest(labels={key: "x"}))
    assert error.field == f"metadata.labels.{key}"


@pytest.mark.parametrize(
    ("container", "field"),
    [
        ({"name": "job", "command": ["sh"]}, "spec.containers[0].command"),
        ({"name": "job", "image": "other"}, "spec.containers[0].image"),
        ({"name": "job", "args": ["x"]}, "spec.containers[0].args"),
        ({"name": "job", "ports": []}, "spec.containers[0].ports"),
        (
            {"name": "job", "env": [{"name": "HODEI_WORKER_TOKEN", "value": "x"}]},
            "spec.containers[0].env[0].name",
        ),
        (
            {"name": "job", "envFrom": [{"prefix": "HODEI_", "configMapRef": {"name": "c"}}]},
            "spec.containers[0].envFrom[0].prefix",
        ),
        (
            {"name": "job", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]},
            "spec.containers[0].volumeMounts[0].name",
        ),
        ({"name": "worker", "image": "x"}, "spec.containers[0].name"),
        ({"name": "hodei-extra", "image": "x"}, "spec.containers[0].name"),
        (
            {"name": "proxy", "image": "x", "ports": [{"containerPort": 80, "hostPort": 80}]},
            "spec.containers[0].ports[0].hostPort",
        ),
        (
            {"name": "proxy", "image": "x", "resources": {"requests": {"cpu": "fast"}}},
            "spec.containers[0].resources.requests.cpu",
        ),
    ],
)
def test_job_container_and_sidecar_refusals(container: dict[str, Any], field: str) -> None:
    assert refused(manifest({"containers": [container]})).field == field


def test_init_container_named_job_refused() -> None:
    error = refused(manifest({"initContainers": [{"name": "job", "image": "x"}]}))
    assert error.field == "spec.initContainers[0].name"
    assert "only spec.containers" in error.accepted


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ({"privileged": True}, "privileged"),
        ({"allowPrivilegeEscalation": True}, "allowPrivilegeEscalation"),
        ({"readOnlyRootFilesystem": False}, "readOnlyRootFilesystem"),
        ({"runAsNonRoot": False}, "runAsNonRoot"),
        ({"runAsUser": 0}, "runAsUser"),
        ({"capabilities": {"add": ["NET_ADMIN"]}}, "capabilities.add"),
        ({"seccompProfile": {"type": "Unconfined"}}, "seccompProfile.type"),
        ({"procMount": "Unmasked"}, "procMount"),
        ({"seLinuxOptions": {"user": "root"}}, "seLinuxOptions.user"),
    ],
)
def test_container_security_may_not_loosen(context: dict[str, Any], field: str) -> None:
    doc = manifest({"containers": [{"name": "proxy", "image": "p", "securityContext": context}]})
    error = refused(doc)
    assert error.field == f"spec.containers[0].securityContext.{field}"


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ({"runAsNonRoot": False}, "runAsNonRoot"),
        ({"runAsUser": 0}, "runAsUser"),
        ({"seccompProfile": {"type": "Unconfined"}}, "seccompProfile.type"),
        ({"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}, "sysctls"),
    ],
)
def test_pod_security_may_not_loosen(context: dict[str, Any], field: str) -> None:
    error = refused(manifest({"securityContext": context}))
    assert error.field == f"spec.securityContext.{field}"


def test_host_path_volume_refused() -> None:
    error = refused(manifest({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}))
    assert error.field == "spec.volumes[0].hostPath"
    assert "configMap" in error.accepted and "secret" in error.accepted


def test_profile_name_must_be_a_dns_label() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template("GPU_pool", "GPU_pool.yaml", manifest())
    assert info.value.field == "(file name)"


# -- jobs in their own image: the profile's "job" goes to Hodei's "job" container ------------


def test_any_image_job_container_gets_the_profile_and_secret_env() -> None:
    pod = merged(
        template(
            {
                "volumes": [{"name": "settings", "configMap": {"name": "app"}}],
                "containers": [
                    {
                        "name": "job",
                        "env": [{"name": "MODE", "value": "gpu"}],
                        "volumeMounts": [{"name": "settings", "mountPath": "/etc/app"}],
                        "resources": {"limits": {"nvidia.com/gpu": 1}},
                    },
                    {"name": "proxy", "image": "proxy:1"},
                ],
            }
        ),
        image="python:3.12",
        secret_env={"TOKEN": SecretKeyRef("api", "token")},
    )
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert list(containers) == ["worker", "job", "proxy"]
    job, agent = containers["job"], containers["worker"]
    assert job["env"] == [
        {"name": "MODE", "value": "gpu"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
    ]
    assert {"name": "settings", "mountPath": "/etc/app"} in job["volumeMounts"]
    assert job["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert all(var["name"] != "TOKEN" for var in agent["env"])  # the agent gets none of it
    assert "nvidia.com/gpu" not in agent["resources"]["limits"]
    # Sidecars take the agent's (strictest) baseline: read-only root filesystem.
    assert containers["proxy"]["securityContext"]["readOnlyRootFilesystem"] is True
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["launcher"]


def test_any_image_collisions_are_found() -> None:
    volume = template({"volumes": [{"name": "hodei-launcher", "emptyDir": {}}]})
    merged(volume)  # the one-container pod has no such volume...
    with pytest.raises(ValueError, match="hodei-launcher is Hodei's own volume name"):
        merged(volume, image="python:3.12")  # ...the any-image pod has
    with pytest.raises(TemplateError, match="'launcher' is Hodei's name"):
        parse_template("p", "p.yaml", manifest({"initContainers": [{"name": "launcher"}]}))


def test_resource_quantities_checked_offline() -> None:
    doc = manifest({"containers": [{"name": "job", "resources": {"limits": {"memory": "lots"}}}]})
    error = refused(doc)
    assert error.field == "spec.containers[0].resources.limits.memory"
    assert "128Mi" in error.accepted


@pytest.mark.parametrize(
    ("metadata", "field", "words"),
    [
        ({"labels": {"team": "data science"}}, "metadata.labels.team", "not a label value"),
        ({"labels": {"-team": "a"}}, "metadata.labels.-team", "not a label key"),
        ({"annotations": {"a b": "x"}}, "metadata.annotations.a b", "not an annotation key"),
    ],
)
def test_labels_and_annotations_follow_kubernetes_rules(
    metadata: dict[str, Any], field: str, words: str
) -> None:
    error = refused(manifest(**metadata))
    assert error.field == field
    assert words in error.problem
    assert error.accepted.startswith("a Kubernetes label key") or error.accepted.startswith(
        "a Kubernetes label value"
    )

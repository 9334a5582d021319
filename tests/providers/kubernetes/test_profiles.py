"""Loading HODEI_K8S_POD_TEMPLATES_DIR: files, ConfigMap mounts, refusals, picking a profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from hodei.config.settings import KubernetesSettings
from hodei.domain.ids import WorkerId
from hodei.domain.jobs import JobSpec, SecretKeyRef, SpecError
from hodei.providers.base import ProviderError
from hodei.providers.kubernetes import KubernetesConfigError, KubernetesProvider, create_provider
from hodei.providers.kubernetes.pods import pod_name
from hodei.providers.kubernetes.profiles import load_profiles
from hodei.providers.kubernetes.templates import TemplateError
from hodei.providers.local import LocalProvider

from .fake_api import FakePodApi
from .helpers import worker_request

SETTINGS = KubernetesSettings(enabled=True)
GPU = """\
apiVersion: v1
kind: Pod
metadata:
  labels: {pool: gpu}
spec:
  nodeSelector: {pool: gpu}
  tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
"""
DEFAULT = """\
apiVersion: v1
kind: Pod
spec:
  priorityClassName: batch
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_no_directory_means_no_profiles() -> None:
    profiles = load_profiles(None, SETTINGS)
    assert profiles.names == []
    assert profiles.pick(None) is None
    with pytest.raises(SpecError, match="HODEI_K8S_POD_TEMPLATES_DIR is not set"):
        profiles.pick("gpu")


def test_files_become_profiles_and_default_applies_without_a_name(tmp_path: Path) -> None:
    directory = write(
        tmp_path, {"gpu.yaml": GPU, "default.yaml": DEFAULT, "README.md": "not a profile"}
    )
    profiles = load_profiles(str(directory), SETTINGS)
    assert profiles.names == ["default", "gpu"]
    default = profiles.pick(None)
    assert default is not None and default.name == "default"
    gpu = profiles.pick("gpu")
    assert gpu is not None and gpu.spec["nodeSelector"] == {"pool": "gpu"}
    with pytest.raises(SpecError) as info:
        profiles.pick("tpu")
    assert str(info.value) == "profile 'tpu' does not exist; profiles: default, gpu"


def test_a_configmap_mount_layout_is_read(tmp_path: Path) -> None:
    """The kubelet mounts a ConfigMap as ..data -> ..<timestamp>/ and NAME -> ..data/NAME."""
    stamp = write(tmp_path / "..2026_11_29_09_00_00.1", {"gpu.yaml": GPU})
    (tmp_path / "..data").symlink_to(stamp.name)
    (tmp_path / "gpu.yaml").symlink_to("..data/gpu.yaml")
    assert load_profiles(str(tmp_path), SETTINGS).names == ["gpu"]


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("kind: Pod\nspec: [unclosed\n", "(file)", "not valid YAML"),
        ("apiVersion: v1\nkind: Service\n", "kind", "not a Pod"),
        (GPU + "---\n" + DEFAULT, "(file)", "2 YAML documents"),
        (
            "apiVersion: v1\nkind: Pod\nspec:\n  nodeSelecter: {a: b}\n",
            "spec.nodeSelecter",
            "schema",
        ),
        (
            "apiVersion: v1\nkind: Pod\nspec:\n  restartPolicy: Always\n",
            "spec.restartPolicy",
            "Hodei",
        ),
        (
            "apiVersion: v1\nkind: Pod\nspec:\n  volumes: [{name: tmp, emptyDir: {}}]\n",
            "spec",
            "tmp is Hodei's own volume name",
        ),
        (
            "apiVersion: v1\nkind: Pod\nspec:\n  volumes: [{name: hodei-launcher, emptyDir: {}}]\n",
            "spec",
            "hodei-launcher is Hodei's own volume name",  # only jobs in their own image have it
        ),
    ],
)
def test_a_bad_file_stops_loading_naming_file_and_field(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    write(tmp_path, {"ok.yaml": GPU, "bad.yaml": text})
    with pytest.raises(TemplateError) as info:
        load_profiles(str(tmp_path), SETTINGS)
    assert info.value.source == str(tmp_path / "bad.yaml")
    assert info.value.field == field
    assert words in str(info.value)


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="HODEI_K8S_POD_TEMPLATES_DIR: is not a directory"):
        load_profiles(str(tmp_path / "absent"), SETTINGS)


async def test_create_provider_refuses_a_bad_profile_at_startup(tmp_path: Path) -> None:
    write(tmp_path, {"gpu.yaml": "apiVersion: v1\nkind: Pod\nspec:\n  hostNetwork: true\n"})
    settings = KubernetesSettings(enabled=True, pod_templates_dir=str(tmp_path))
    with pytest.raises(KubernetesConfigError, match=r"gpu.yaml: spec.hostNetwork: is set by Hodei"):
        await create_provider(settings, instance="i")


async def test_the_provider_checks_the_profile_at_submit_and_applies_it(tmp_path: Path) -> None:
    write(tmp_path, {"gpu.yaml": GPU, "default.yaml": DEFAULT})
    profiles = load_profiles(str(tmp_path), SETTINGS)
    api = FakePodApi()
    provider = KubernetesProvider(settings=SETTINGS, api=api, instance="t", profiles=profiles)
    provider.check_spec(JobSpec(command=("true",), profile="gpu"))
    provider.check_spec(JobSpec(command=("true",)))
    with pytest.raises(SpecError, match="profile 'tpu' does not exist; profiles: default, gpu"):
        provider.check_spec(JobSpec(command=("true",), profile="tpu"))
    await provider.create_worker(worker_request(worker_id=WorkerId("w-1"), profile="gpu"))
    await provider.create_worker(worker_request(worker_id=WorkerId("w-2")))
    gpu_pod, default_pod = api.pods[pod_name("w-1")], api.pods[pod_name("w-2")]
    assert gpu_pod["spec"]["nodeSelector"] == {"pool": "gpu"}
    assert "priorityClassName" not in gpu_pod["spec"]
    assert default_pod["spec"]["priorityClassName"] == "batch"
    with pytest.raises(ProviderError, match="profile 'tpu' does not exist"):
        await provider.create_worker(worker_request(worker_id=WorkerId("w-3"), profile="tpu"))
    assert pod_name("w-3") not in api.pods


def test_the_local_provider_refuses_profiles_and_secret_env(tmp_path: Path) -> None:
    local = LocalProvider(max_workers=1, state_dir=tmp_path)
    local.check_spec(JobSpec(command=("true",)))
    with pytest.raises(SpecError, match=r"secret_env \(PASSWORD\): the local provider has no"):
        local.check_spec(
            JobSpec(command=("true",), secret_env={"PASSWORD": SecretKeyRef("db", "pw")})
        )
    with pytest.raises(SpecError, match="pod profiles are for the Kubernetes provider"):
        local.check_spec(JobSpec(command=("true",), profile="gpu"))


def test_a_terminal_is_refused_for_a_job_in_its_own_image_stdin_and_workdir_are_not() -> None:
    provider = KubernetesProvider(settings=SETTINGS, api=FakePodApi(), instance="t")
    own = JobSpec(command=("cat",), image="busybox:1", stdin=True, workdir="/srv")
    provider.check_spec(own)
    # In the worker image the agent runs the command itself: a terminal is fine there.
    provider.check_spec(JobSpec(command=("sh",), image=SETTINGS.worker_image, tty=True))
    with pytest.raises(SpecError, match="image: -t is not available for a job in its own image"):
        provider.check_spec(JobSpec(command=("sh",), image="busybox:1", tty=True))

"""Reading the operator's pod profiles from ``HODEI_K8S_POD_TEMPLATES_DIR`` at startup.

The directory holds one ``NAME.yaml`` Pod manifest per profile (in-cluster, the
ConfigMap ``hodei-pod-templates`` mounted as files: its ``..data`` links and other
dot-files are skipped, as are files not ending in ``.yaml``). Each file is parsed,
checked against the Kubernetes Pod schema offline and judged by
:func:`~.templates.parse_template`, then tried on a sample worker pod, so a profile that
cannot work stops startup with the file and the field named instead of failing jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hodei.config.settings import KubernetesSettings
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Resources, SecretKeyRef, SpecError
from hodei.providers.base import WorkerRequest
from hodei.providers.kubernetes._client_schema import pod_schema_problems
from hodei.providers.kubernetes.pods import WorkerPodSpec, build_pod
from hodei.providers.kubernetes.templates import (
    JobPodInputs,
    PodTemplate,
    TemplateError,
    apply_profile,
    parse_template,
)

DEFAULT_PROFILE = "default"
SUFFIX = ".yaml"


@dataclass(frozen=True)
class Profiles:
    """The accepted profiles by name; ``default`` applies to jobs that name none."""

    templates: Mapping[str, PodTemplate] = field(default_factory=dict)
    directory: str | None = None

    @property
    def names(self) -> list[str]:
        return sorted(self.templates)

    def pick(self, name: str | None) -> PodTemplate | None:
        """The template for a job's ``profile`` (None: ``default`` if present); SpecError
        when the job names one that does not exist."""
        if name is None:
            return self.templates.get(DEFAULT_PROFILE)
        template = self.templates.get(name)
        if template is None:
            raise SpecError(self.unknown(name))
        return template

    def unknown(self, name: str) -> str:
        if not self.templates:
            where = (
                f"{self.directory} holds none"
                if self.directory
                else "HODEI_K8S_POD_TEMPLATES_DIR is not set"
            )
            return f"profile {name!r} does not exist: no pod profiles are configured ({where})"
        return f"profile {name!r} does not exist; profiles: {', '.join(self.names)}"


def job_inputs(request: WorkerRequest, settings: KubernetesSettings) -> JobPodInputs:
    """The merge's inputs for one job attempt."""
    return JobPodInputs(
        resources=request.resources,
        default_resources=Resources(
            cpu_request=settings.default_cpu_request,
            cpu_limit=settings.default_cpu_limit,
            memory_request=settings.default_memory_request,
            memory_limit=settings.default_memory_limit,
        ),
        secret_env=request.secret_env,
    )


SAMPLE_IMAGE = "registry.example/any-image:1"


def sample_request(profile: str | None = None, *, image: str | None = None) -> WorkerRequest:
    """A representative job attempt, to try profiles on (startup, ``hodei k8s verify``).

    With ``image`` it is a job in its own image (the pod with the launcher and a job
    container); without, a job in the Hodei image (one container)."""
    return WorkerRequest(
        image=image,
        worker_id=WorkerId("profile-check"),
        job_id=JobId("profile-check"),
        token="sample",
        server_address="hodei-control-plane.hodei-system.svc:50051",
        profile=profile,
        secret_env={"SAMPLE_SECRET": SecretKeyRef("sample", "key")},
    )


def profile_pod(
    request: WorkerRequest,
    settings: KubernetesSettings,
    template: PodTemplate | None,
    *,
    instance: str,
) -> dict[str, Any]:
    """The worker pod for ``request`` under ``template``; ValueError on a collision."""
    pod = build_pod(WorkerPodSpec.from_request(request, settings, instance=instance))
    return apply_profile(pod, template, job_inputs(request, settings))


def parse_profile(name: str, source: str, text: str, settings: KubernetesSettings) -> PodTemplate:
    """Parse, check and try one profile's YAML ``text``; raises :class:`TemplateError`.

    ``source`` names where the text came from (a file, a ConfigMap key) in messages."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        problem = f"is not valid YAML: {' '.join(str(exc).split())}"
        raise TemplateError(source, "(file)", problem, "one YAML Pod manifest") from None
    documents = [d for d in documents if d is not None]
    if len(documents) != 1:
        problem = f"holds {len(documents)} YAML documents"
        raise TemplateError(source, "(file)", problem, "exactly one Pod manifest")
    template = parse_template(name, source, documents[0], schema=pod_schema_problems)
    try:
        for image in (None, SAMPLE_IMAGE):  # both pod shapes
            profile_pod(sample_request(name, image=image), settings, template, instance=name)
    except ValueError as exc:
        raise TemplateError(source, "spec", str(exc), "names Hodei does not use") from None
    return template


def load_template(path: Path, settings: KubernetesSettings) -> PodTemplate:
    """Read and judge one ``NAME.yaml`` file; raises :class:`TemplateError`."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(source, "(file)", f"cannot be read: {exc}", "a readable file") from None
    return parse_profile(path.name[: -len(SUFFIX)], source, text, settings)


def profiles_from_configmap(
    data: Mapping[str, str], source: str, settings: KubernetesSettings
) -> Profiles:
    """The profiles a ConfigMap's ``data`` holds (keys ``NAME.yaml``; others are skipped),
    as the control plane reads them once mounted; raises :class:`TemplateError`."""
    templates = {}
    for key in sorted(data):
        if key.endswith(SUFFIX) and not key.startswith("."):
            name = key[: -len(SUFFIX)]
            templates[name] = parse_profile(name, f"{source} key {key}", data[key], settings)
    return Profiles(templates, source)


def load_profiles(directory: str | None, settings: KubernetesSettings) -> Profiles:
    """Every profile in ``directory`` (None: no profiles); raises :class:`TemplateError`."""
    if directory is None:
        return Profiles()
    root = Path(directory)
    if not root.is_dir():
        raise TemplateError(
            directory,
            "HODEI_K8S_POD_TEMPLATES_DIR",
            "is not a directory",
            "a directory of NAME.yaml",
        )
    templates = {}
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not path.name.endswith(SUFFIX) or not path.is_file():
            continue
        template = load_template(path, settings)
        templates[template.name] = template
    return Profiles(templates, directory)

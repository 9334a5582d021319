"""Finding the client configuration: explicit path, KUBECONFIG, ~/.kube/config, context."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hodei.config.settings import KubernetesSettings
from hodei.providers.kubernetes.client import load_client_config
from hodei.providers.kubernetes.errors import KubernetesConfigError


def write_kubeconfig(path: Path, *, server: str, contexts: tuple[str, ...] = ("main",)) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "secret-token"}}],
        "contexts": [{"name": name, "context": {"cluster": "c", "user": "u"}} for name in contexts],
        "current-context": contexts[0],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_explicit_kubeconfig_and_context(tmp_path: Path) -> None:
    cfg = write_kubeconfig(
        tmp_path / "k.yaml", server="https://127.0.0.1:6443", contexts=("main", "other")
    )
    settings = KubernetesSettings(kubeconfig=str(cfg), context="other")
    configuration = await load_client_config(settings, env={})
    assert configuration.host == "https://127.0.0.1:6443"
    assert configuration.api_key["BearerToken"] == "Bearer secret-token"


async def test_missing_explicit_kubeconfig_names_the_variable(tmp_path: Path) -> None:
    settings = KubernetesSettings(kubeconfig=str(tmp_path / "absent.yaml"))
    with pytest.raises(
        KubernetesConfigError, match=r"HODEI_K8S_KUBECONFIG=.*absent.yaml: no such file"
    ):
        await load_client_config(settings, env={})


async def test_unknown_context_lists_the_known_ones(tmp_path: Path) -> None:
    cfg = write_kubeconfig(tmp_path / "k.yaml", server="https://h:1", contexts=("a", "b"))
    settings = KubernetesSettings(kubeconfig=str(cfg), context="prod")
    with pytest.raises(KubernetesConfigError) as info:
        await load_client_config(settings, env={})
    assert "HODEI_K8S_CONTEXT=prod" in str(info.value)
    assert "available: a, b" in str(info.value)


async def test_kubeconfig_variable_then_home(tmp_path: Path) -> None:
    from_var = write_kubeconfig(tmp_path / "var.yaml", server="https://from-var:1")
    write_kubeconfig(tmp_path / "home" / ".kube" / "config", server="https://from-home:1")
    env = {"KUBECONFIG": str(from_var), "HOME": str(tmp_path / "home")}
    assert (await load_client_config(KubernetesSettings(), env=env)).host == "https://from-var:1"
    env = {"HOME": str(tmp_path / "home")}
    assert (await load_client_config(KubernetesSettings(), env=env)).host == "https://from-home:1"


async def test_kubeconfig_variable_pointing_nowhere(tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(tmp_path / "nope"), "HOME": str(tmp_path)}
    with pytest.raises(KubernetesConfigError, match=r"KUBECONFIG=.*nope: no such file"):
        await load_client_config(KubernetesSettings(), env=env)


async def test_nothing_configured_says_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(KubernetesConfigError) as info:
        await load_client_config(KubernetesSettings(), env={"HOME": str(tmp_path)})
    text = str(info.value)
    assert "KUBERNETES_SERVICE_HOST unset" in text
    assert "HODEI_K8S_KUBECONFIG" in text
    assert str(tmp_path / ".kube" / "config") in text


async def test_garbage_kubeconfig(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters: [unclosed\n")
    with pytest.raises(KubernetesConfigError, match="not a usable kubeconfig"):
        await load_client_config(KubernetesSettings(kubeconfig=str(bad)), env={})


def test_public_surface() -> None:
    import hodei.providers.kubernetes as package

    assert sorted(package.__all__) == [
        "KubernetesApiError",
        "KubernetesConfigError",
        "KubernetesError",
        "KubernetesProvider",
        "create_provider",
        "load_client_config",
    ]
    for name in package.__all__:
        assert getattr(package, name) is not None


async def test_create_provider_stops_on_a_bad_configuration(tmp_path: Path) -> None:
    from hodei.providers.kubernetes import create_provider

    settings = KubernetesSettings(enabled=True, kubeconfig=str(tmp_path / "missing"))
    with pytest.raises(KubernetesConfigError, match="HODEI_K8S_KUBECONFIG"):
        await create_provider(settings, instance="x")

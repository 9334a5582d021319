import pytest

from hodei.config.settings import (
    ClientTls,
    KubernetesSettings,
    ServerSettings,
    ServerTls,
    SettingsError,
    load_client_settings,
    load_kubernetes_settings,
    load_server_settings,
    load_worker_settings,
)


def test_server_defaults() -> None:
    settings = load_server_settings({})
    assert settings == ServerSettings()
    assert (settings.grpc_address, settings.http_address) == (
        "127.0.0.1:50051",
        "127.0.0.1:9090",
    )
    assert settings.tls is None and settings.worker_tls is None
    assert settings.database_url is None and settings.api_token is None
    assert settings.insecure is False and settings.local_enabled is True
    assert settings.local_max_workers == 16 and settings.server_address is None


def test_kubernetes_defaults_are_the_documented_ones() -> None:
    k = load_kubernetes_settings({})
    assert k == KubernetesSettings()
    assert (
        k.enabled,
        k.namespace,
        k.kubeconfig,
        k.context,
        k.service_account,
        k.image_pull_secrets,
    ) == (False, "hodei-workers", None, None, "hodei-worker", ())
    assert (
        k.default_cpu_request,
        k.default_memory_request,
        k.default_cpu_limit,
        k.default_memory_limit,
    ) == ("100m", "128Mi", "1000m", "512Mi")
    assert k.worker_image == "hodei:latest"


def test_values_are_parsed() -> None:
    settings = load_server_settings(
        {
            "HODEI_GRPC_ADDRESS": "127.0.0.1:0",
            "HODEI_HTTP_ADDRESS": "[::]:9091",
            "HODEI_DATABASE_URL": "sqlite:///tmp/x.db",
            "HODEI_API_TOKEN": "t",
            "HODEI_INSECURE": "yes",
            "HODEI_SERVER_ADDRESS": "cp:50051",
            "HODEI_INSTANCE": "prod-1",
            "HODEI_LOCAL_ENABLED": "0",
            "HODEI_LOCAL_MAX_WORKERS": "4",
            "HODEI_K8S_ENABLED": "true",
            "HODEI_K8S_NAMESPACE": "jobs",
            "HODEI_K8S_IMAGE_PULL_SECRET": "a, b",
            "HODEI_K8S_MAX_WORKERS": "7",
            "HODEI_K8S_PENDING_TIMEOUT": "2.5",
            "HODEI_K8S_DEFAULT_CPU_REQUEST": "250m",
        }
    )
    assert (
        settings.database_url == "sqlite:///tmp/x.db"
        and settings.insecure
        and not settings.local_enabled
    )
    assert settings.local_max_workers == 4 and settings.instance == "prod-1"
    k = settings.kubernetes
    assert (
        k.enabled,
        k.namespace,
        k.image_pull_secrets,
        k.max_workers,
        k.pending_timeout,
        k.default_cpu_request,
    ) == (True, "jobs", ("a", "b"), 7, 2.5, "250m")


def test_empty_value_means_default() -> None:
    assert load_server_settings({"HODEI_GRPC_ADDRESS": ""}).grpc_address == "127.0.0.1:50051"


INVALID = [
    ("HODEI_GRPC_ADDRESS", "50051", "HOST:PORT"),
    ("HODEI_HTTP_ADDRESS", "host:99999", "HOST:PORT"),
    ("HODEI_DATABASE_URL", "postgres://db", "sqlite:///"),
    ("HODEI_API_TOKEN", "   ", "non-empty"),
    ("HODEI_INSECURE", "maybe", "1, 0, true"),
    ("HODEI_SERVER_ADDRESS", "nope", "HOST:PORT"),
    ("HODEI_INSTANCE", "Bad_Name", "DNS-1123 label"),
    ("HODEI_LOCAL_ENABLED", "2", "1, 0, true"),
    ("HODEI_LOCAL_MAX_WORKERS", "0", "whole number"),
    ("HODEI_K8S_ENABLED", "maybe", "1, 0, true"),
    ("HODEI_K8S_NAMESPACE", "Hodei", "DNS-1123 label"),
    ("HODEI_K8S_KUBECONFIG", " ", "non-empty"),
    ("HODEI_K8S_CONTEXT", " ", "non-empty"),
    ("HODEI_K8S_SERVICE_ACCOUNT", "UPPER", "DNS-1123 subdomain"),
    ("HODEI_K8S_IMAGE_PULL_SECRET", "ok,Not_ok", "DNS-1123 subdomain"),
    ("HODEI_K8S_DEFAULT_CPU_REQUEST", "abc", "Kubernetes quantity"),
    ("HODEI_K8S_DEFAULT_MEMORY_REQUEST", "lots", "Kubernetes quantity"),
    ("HODEI_K8S_DEFAULT_CPU_LIMIT", "1x", "Kubernetes quantity"),
    ("HODEI_K8S_DEFAULT_MEMORY_LIMIT", "-", "Kubernetes quantity"),
    ("HODEI_WORKER_IMAGE", " ", "non-empty"),
    ("HODEI_K8S_MAX_WORKERS", "-3", "whole number"),
    ("HODEI_K8S_PENDING_TIMEOUT", "soon", "seconds"),
    ("HODEI_K8S_PENDING_TIMEOUT", "inf", "seconds"),
    ("HODEI_K8S_QPS", "0", "seconds"),
    ("HODEI_K8S_BURST", "x", "whole number"),
]


@pytest.mark.parametrize(("variable", "value", "accepted"), INVALID)
def test_invalid_value_names_variable_value_and_accepted(
    variable: str, value: str, accepted: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_server_settings({variable: value})
    message = str(info.value)
    assert variable in message and repr(value) in message and accepted in message
    assert (info.value.variable, info.value.value) == (variable, value)


def test_client_settings() -> None:
    assert load_client_settings({}).server is None
    client = load_client_settings({"HODEI_SERVER": "127.0.0.1:50051", "HODEI_API_TOKEN": "t"})
    assert (client.server, client.api_token) == ("127.0.0.1:50051", "t")
    with pytest.raises(SettingsError, match="HODEI_SERVER"):
        load_client_settings({"HODEI_SERVER": "nope"})


@pytest.mark.parametrize("value", ["http://hodei.example:50051", "grpc://127.0.0.1:50051"])
def test_a_scheme_in_hodei_server_is_refused_with_the_address_to_give(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_client_settings({"HODEI_SERVER": value})
    scheme, _, address = value.partition("://")
    assert f"a scheme ({scheme}://) is not accepted" in str(info.value)
    assert f"e.g. {address}" in str(info.value) and "HODEI_SERVER" in str(info.value)


def test_worker_settings_require_all_three() -> None:
    env = {
        "HODEI_SERVER_ADDRESS": "127.0.0.1:1",
        "HODEI_WORKER_ID": "w-1",
        "HODEI_WORKER_TOKEN": "t",
    }
    worker = load_worker_settings(env)
    assert (worker.server_address, worker.worker_id, worker.token) == ("127.0.0.1:1", "w-1", "t")
    for name in env:
        with pytest.raises(SettingsError, match=name):
            load_worker_settings({**env, name: ""})
    with pytest.raises(SettingsError, match="HOST:PORT"):
        load_worker_settings({**env, "HODEI_SERVER_ADDRESS": "x"})


def test_server_tls_needs_both_files_and_reads_the_client_ca() -> None:
    env = {"HODEI_TLS_CERT_FILE": "/c.pem", "HODEI_TLS_KEY_FILE": "/k.pem"}
    settings = load_server_settings({**env, "HODEI_TLS_CLIENT_CA_FILE": "/ca.pem"})
    assert settings.tls == ServerTls("/c.pem", "/k.pem", "/ca.pem")
    # Workers verify the server with HODEI_TLS_CA_FILE, or the system roots without it.
    assert settings.worker_tls == ClientTls(ca_file=None)
    assert settings.kubernetes.worker_tls is True
    with_ca = load_server_settings({**env, "HODEI_TLS_CA_FILE": "/sca.pem"})
    assert with_ca.worker_tls == ClientTls(ca_file="/sca.pem")
    with pytest.raises(SettingsError, match=r"HODEI_TLS_KEY_FILE.*together"):
        load_server_settings({"HODEI_TLS_CERT_FILE": "/c.pem"})
    with pytest.raises(SettingsError, match=r"HODEI_TLS_CERT_FILE.*together"):
        load_server_settings({"HODEI_TLS_KEY_FILE": "/k.pem"})
    with pytest.raises(SettingsError, match=r"HODEI_TLS_CLIENT_CA_FILE.*only with TLS on"):
        load_server_settings({"HODEI_TLS_CLIENT_CA_FILE": "/ca.pem"})


def test_client_tls_is_on_with_a_ca_a_certificate_or_hodei_tls() -> None:
    assert load_client_settings({}).tls is None
    assert load_client_settings({"HODEI_TLS": "1"}).tls == ClientTls()
    assert load_client_settings({"HODEI_TLS_CA_FILE": "/ca"}).tls == ClientTls(ca_file="/ca")
    mtls = {"HODEI_TLS_CERT_FILE": "/c", "HODEI_TLS_KEY_FILE": "/k"}
    assert load_client_settings(mtls).tls == ClientTls(None, "/c", "/k")
    assert load_client_settings({"HODEI_TLS_CA_FILE": "/ca", "HODEI_TLS": "0"}).tls is None
    with pytest.raises(SettingsError, match=r"HODEI_TLS=.maybe"):
        load_client_settings({"HODEI_TLS": "maybe"})
    with pytest.raises(SettingsError, match="HODEI_TLS_KEY_FILE"):
        load_client_settings({"HODEI_TLS_CERT_FILE": "/c"})
    agent = load_worker_settings(
        {
            "HODEI_SERVER_ADDRESS": "h:1",
            "HODEI_WORKER_ID": "w",
            "HODEI_WORKER_TOKEN": "t",
            "HODEI_TLS": "1",
            "HODEI_TLS_CA_FILE": "/ca",
        }
    )
    assert agent.tls == ClientTls(ca_file="/ca")


def test_worker_pods_ca_configmap() -> None:
    assert load_kubernetes_settings({}).tls_ca_configmap is None
    assert (
        load_kubernetes_settings({"HODEI_K8S_TLS_CA_CONFIGMAP": "hodei-ca"}).tls_ca_configmap
        == "hodei-ca"
    )
    with pytest.raises(SettingsError, match="HODEI_K8S_TLS_CA_CONFIGMAP"):
        load_kubernetes_settings({"HODEI_K8S_TLS_CA_CONFIGMAP": "Bad_Name"})


def test_agent_certificate_as_pem_text() -> None:
    env = {"HODEI_TLS": "1", "HODEI_TLS_CLIENT_CERT": "CERT", "HODEI_TLS_CLIENT_KEY": "KEY"}
    assert load_client_settings(env).tls == ClientTls(cert_pem="CERT", key_pem="KEY")
    with pytest.raises(SettingsError, match="HODEI_TLS_CLIENT_KEY"):
        load_client_settings({"HODEI_TLS": "1", "HODEI_TLS_CLIENT_CERT": "CERT"})

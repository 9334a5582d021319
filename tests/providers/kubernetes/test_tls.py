"""Jobs on worker pods over TLS: the pods verify the control plane with the CA that the
ConfigMap hodei-ca (as install.sh creates it) gives them, mounted read-only."""

from __future__ import annotations

from typing import Any

import pytest

from hodei.cli.client import HodeiClient
from hodei.config.settings import ClientTls
from hodei.domain.jobs import JobSpec
from hodei.domain.states import JobState
from tests.fixtures.certs import TlsFiles

from .conftest import Make

pytestmark = pytest.mark.slow


async def _job_on_a_pod(cluster_factory: Make, tls_files: TlsFiles, **extra: str) -> Any:
    """Run ``echo over-tls`` through a TLS control plane whose pods get the CA from the
    ConfigMap hodei-ca; returns (final state, output)."""
    env = {**tls_files.server_env(), "HODEI_K8S_TLS_CA_CONFIGMAP": "hodei-ca", **extra}
    del env["HODEI_TLS_CA_FILE"]  # in-cluster, workers get the CA from the ConfigMap only
    cluster = await cluster_factory(**env)
    created = cluster.emulator.kubectl(
        "create", "configmap", "hodei-ca", "-n", "hodei-workers",
        f"--from-file=ca.crt={tls_files.ca.cert_file}",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    ca = str(tls_files.ca.cert_file)
    tls = ClientTls(ca, str(tls_files.client_cert), str(tls_files.client_key))
    async with HodeiClient(cluster.plane.address, tls=tls) as client:
        job = await client.submit(JobSpec(shell="echo over-tls"))
        async for update in client.watch(job.id):
            if update.state.terminal:
                break
        output = b"".join([c.data async for c in client.logs(job.id)])
    return update.state, output


async def test_a_job_runs_on_a_pod_that_dials_the_control_plane_over_tls(
    cluster_factory: Make, tls_files: TlsFiles
) -> None:
    assert await _job_on_a_pod(cluster_factory, tls_files) == (JobState.SUCCEEDED, b"over-tls\n")


async def test_a_job_runs_on_a_pod_under_mtls(cluster_factory: Make, tls_files: TlsFiles) -> None:
    """With client certificates required, the pod's agent presents the one the control
    plane issued for its worker."""
    mtls = {"HODEI_TLS_CLIENT_CA_FILE": str(tls_files.ca.cert_file)}
    assert await _job_on_a_pod(cluster_factory, tls_files, **mtls) == (
        JobState.SUCCEEDED,
        b"over-tls\n",
    )

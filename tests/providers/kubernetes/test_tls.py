"""Jobs on worker pods over TLS: the pods verify the control plane with the CA that the
ConfigMap hodei-ca (as install.sh creates it) gives them, mounted read-only."""

from __future__ import annotations

import pytest

from hodei.cli.client import HodeiClient
from hodei.config.settings import ClientTls
from hodei.domain.jobs import JobSpec
from hodei.domain.states import JobState
from tests.fixtures.certs import TlsFiles

from .conftest import Make

pytestmark = pytest.mark.slow


async def test_a_job_runs_on_a_pod_that_dials_the_control_plane_over_tls(
    cluster_factory: Make, tls_files: TlsFiles
) -> None:
    env = {**tls_files.server_env(), "HODEI_K8S_TLS_CA_CONFIGMAP": "hodei-ca"}
    del env["HODEI_TLS_CA_FILE"]  # in-cluster, workers get the CA from the ConfigMap only
    cluster = await cluster_factory(**env)
    created = cluster.emulator.kubectl(
        "create", "configmap", "hodei-ca", "-n", "hodei-workers",
        f"--from-file=ca.crt={tls_files.ca.cert_file}",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    tls = ClientTls(ca_file=str(tls_files.ca.cert_file))
    async with HodeiClient(cluster.plane.address, tls=tls) as client:
        job = await client.submit(JobSpec(shell="echo over-tls"))
        async for update in client.watch(job.id):
            if update.state.terminal:
                break
        output = b"".join([c.data async for c in client.logs(job.id)])
    assert (update.state, output) == (JobState.SUCCEEDED, b"over-tls\n")

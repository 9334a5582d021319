"""TLS on the control plane's gRPC and HTTP ports: jobs over TLS, each refusal, rotation.

Certificates are made per test (tests/fixtures/certs.py). Clients are the CLI's own
client (:class:`HodeiClient`) and, for HTTP, the ``ssl`` module.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import pytest

from hodei.cli.client import ClientError, HodeiClient
from hodei.config.settings import ClientTls, load_server_settings
from hodei.domain.jobs import JobSpec
from hodei.domain.states import JobState
from hodei.providers.fake import FakeProvider
from hodei.server.auth import ListenError
from hodei.server.tls import TlsError
from hodei.server.worker_ca import META_KEY, WorkerCa
from tests.fixtures.certs import LOOPBACK_NAMES, TlsFiles, make_ca
from tests.fixtures.control_plane import MakeControlPlane, base_env
from tests.fixtures.relay import Relay
from tests.server.helpers import NetworkLocalProvider


async def _job_over(client: HodeiClient, spec: JobSpec) -> tuple[JobState, bytes]:
    job = await client.submit(spec)
    async for update in client.watch(job.id):
        if update.state.terminal:
            break
    out = b"".join([c.data async for c in client.logs(job.id)])
    return update.state, out


@pytest.mark.slow
async def test_a_job_runs_over_tls_and_nothing_secret_crosses_the_wire(
    control_plane_factory: MakeControlPlane, tls_files: TlsFiles, tmp_path: Path
) -> None:
    """The local agent dials the control plane through a recording relay, and so does the
    client: the API token, the worker's token, the job's env value and its output are
    all on that path, and none of them is readable."""
    secret = "s3cr3t-value-" + os.urandom(8).hex()
    token = "api-" + os.urandom(8).hex()
    async with Relay() as relay:
        # Workers dial the relay too: the one-time token and the job's env go through it.
        env = {
            **tls_files.server_env(),
            "HODEI_API_TOKEN": token,
            "HODEI_SERVER_ADDRESS": relay.address,
        }
        workers = NetworkLocalProvider(
            max_workers=2,
            state_dir=tmp_path / "workers",
            agent_tls=load_server_settings({**base_env(tmp_path), **env}).worker_tls,
        )
        plane = await control_plane_factory(providers=[workers], env=env)
        relay.target = plane.address
        tls = ClientTls(ca_file=str(tls_files.ca.cert_file))
        async with HodeiClient(relay.address, api_token=token, tls=tls) as client:
            state, out = await _job_over(
                client, JobSpec(shell='echo "out:$SECRET"', env={"SECRET": secret})
            )
        assert (state, out) == (JobState.SUCCEEDED, f"out:{secret}\n".encode())
        assert relay.connections >= 2  # the client's and the agent's
        wire = bytes(relay.recorded)
        assert len(wire) > 1000
        for needle in (secret, token, "out:", "echo", "SECRET"):
            assert needle.encode() not in wire, needle


@pytest.mark.slow
async def test_without_tls_the_relay_reads_everything(
    control_plane_factory: MakeControlPlane, tmp_path: Path
) -> None:
    """The relay test's control: in plaintext, the same relay sees the values."""
    secret = "s3cr3t-value-" + os.urandom(8).hex()
    async with Relay() as relay:
        workers = NetworkLocalProvider(max_workers=2, state_dir=tmp_path / "workers")
        plane = await control_plane_factory(
            providers=[workers], env={"HODEI_SERVER_ADDRESS": relay.address}
        )
        relay.target = plane.address
        async with HodeiClient(relay.address) as client:
            state, _ = await _job_over(
                client, JobSpec(shell="echo $SECRET", env={"SECRET": secret})
            )
        assert state is JobState.SUCCEEDED
        assert secret.encode() in bytes(relay.recorded)


async def test_plaintext_client_against_tls_server_is_told_so(
    control_plane_factory: MakeControlPlane, fake_provider: FakeProvider, tls_files: TlsFiles
) -> None:
    plane = await control_plane_factory(providers=[fake_provider], env=tls_files.server_env())
    async with HodeiClient(plane.address, env_name="HODEI_SERVER") as client:
        with pytest.raises(ClientError) as caught:
            await client.list_jobs()
    assert caught.value.unreachable
    assert "speaks TLS but this client connected in plaintext" in str(caught.value)
    assert "HODEI_TLS_CA_FILE" in str(caught.value)


async def test_wrong_ca_is_told_so(
    control_plane_factory: MakeControlPlane, fake_provider: FakeProvider, tls_files: TlsFiles
) -> None:
    plane = await control_plane_factory(providers=[fake_provider], env=tls_files.server_env())
    wrong = ClientTls(ca_file=str(tls_files.other_ca.cert_file))
    async with HodeiClient(plane.address, tls=wrong) as client:
        with pytest.raises(ClientError) as caught:
            await client.list_jobs()
    assert caught.value.unreachable
    assert "not signed by a CA this client trusts" in str(caught.value)
    assert str(tls_files.other_ca.cert_file) in str(caught.value)


async def test_tls_client_against_plaintext_server_is_told_so(
    control_plane_factory: MakeControlPlane, fake_provider: FakeProvider, tls_files: TlsFiles
) -> None:
    plane = await control_plane_factory(providers=[fake_provider])
    tls = ClientTls(ca_file=str(tls_files.ca.cert_file))
    async with HodeiClient(plane.address, tls=tls) as client:
        with pytest.raises(ClientError) as caught:
            await client.list_jobs()
    assert "does not speak TLS" in str(caught.value)


async def test_mtls_requires_a_client_certificate(
    control_plane_factory: MakeControlPlane, fake_provider: FakeProvider, tls_files: TlsFiles
) -> None:
    env = {**tls_files.server_env(), "HODEI_TLS_CLIENT_CA_FILE": str(tls_files.ca.cert_file)}
    plane = await control_plane_factory(providers=[fake_provider], env=env)
    ca = str(tls_files.ca.cert_file)
    async with HodeiClient(plane.address, tls=ClientTls(ca_file=ca)) as client:
        with pytest.raises(ClientError) as caught:
            await client.list_jobs()
    assert caught.value.unreachable
    assert "may require a client certificate" in str(caught.value)
    assert "this client sent none" in str(caught.value)
    # A certificate from another CA is refused the same way.
    stranger_cert, stranger_key = tls_files.other_ca.issue(
        tls_files.client_cert.parent / "stranger", client=True
    )
    stranger = ClientTls(ca, str(stranger_cert), str(stranger_key))
    async with HodeiClient(plane.address, tls=stranger) as client:
        with pytest.raises(ClientError, match=r"client certificate.*stranger\.crt may not be"):
            await client.list_jobs()
    mine = ClientTls(ca, str(tls_files.client_cert), str(tls_files.client_key))
    async with HodeiClient(plane.address, tls=mine) as client:
        assert await client.list_jobs() == []


async def test_unreadable_client_files_name_the_variable(
    tls_files: TlsFiles, tmp_path: Path
) -> None:
    with pytest.raises(ClientError, match=r"cannot read HODEI_TLS_CA_FILE=.*missing\.crt"):
        HodeiClient("127.0.0.1:1", tls=ClientTls(ca_file=str(tmp_path / "missing.crt")))


async def test_server_refuses_mismatched_or_missing_files(
    control_plane_factory: MakeControlPlane,
    fake_provider: FakeProvider,
    tls_files: TlsFiles,
    tmp_path: Path,
) -> None:
    _, other_key = tls_files.ca.issue(
        tmp_path / "other", dns=LOOPBACK_NAMES["dns"], ips=LOOPBACK_NAMES["ips"]
    )
    env = {**tls_files.server_env(), "HODEI_TLS_KEY_FILE": str(other_key)}
    with pytest.raises(TlsError, match=r"HODEI_TLS_CERT_FILE=.*HODEI_TLS_KEY_FILE=.*private key"):
        await control_plane_factory(providers=[fake_provider], env=env)
    env = {**tls_files.server_env(), "HODEI_TLS_CERT_FILE": str(tmp_path / "none.crt")}
    with pytest.raises(TlsError, match=r"cannot read HODEI_TLS_CERT_FILE=.*none\.crt"):
        await control_plane_factory(providers=[fake_provider], env=env)


async def test_beyond_loopback_without_tls_refuses_to_start(
    control_plane_factory: MakeControlPlane, fake_provider: FakeProvider
) -> None:
    env = {"HODEI_GRPC_ADDRESS": "0.0.0.0:0", "HODEI_API_TOKEN": "t"}
    with pytest.raises(ListenError, match=r"HODEI_GRPC_ADDRESS=0.0.0.0:0 without TLS"):
        await control_plane_factory(providers=[fake_provider], env=env)
    env = {"HODEI_HTTP_ADDRESS": "0.0.0.0:0"}
    with pytest.raises(ListenError, match=r"HODEI_HTTP_ADDRESS=0.0.0.0:0 without TLS"):
        await control_plane_factory(providers=[fake_provider], env=env)


async def test_beyond_loopback_with_tls_or_insecure_starts(
    control_plane_factory: MakeControlPlane, fake_provider: FakeProvider, tls_files: TlsFiles
) -> None:
    env = {
        **tls_files.server_env(),
        "HODEI_GRPC_ADDRESS": "0.0.0.0:0",
        "HODEI_HTTP_ADDRESS": "0.0.0.0:0",
        "HODEI_API_TOKEN": "t",
    }
    assert (await control_plane_factory(providers=[fake_provider], env=env)).grpc_port > 0
    insecure = {"HODEI_GRPC_ADDRESS": "0.0.0.0:0", "HODEI_INSECURE": "1"}
    assert (await control_plane_factory(providers=[fake_provider], env=insecure)).grpc_port > 0


def _replace(path: Path, new: Path) -> None:
    """Rotate the way a mounted Secret does: the new file appears under the old name."""
    os.replace(new, path)


async def _https_issuer(port: int, ca_file: Path) -> str:
    context = ssl.create_default_context(cafile=str(ca_file))
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    cert = writer.get_extra_info("peercert")
    writer.write(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
    body = await reader.read()
    writer.close()
    assert body.startswith(b"HTTP/1.0 200") and body.endswith(b"ok\n")
    return str(dict(x[0] for x in cert["issuer"])["commonName"])


async def test_certificates_are_reloaded_when_the_files_change(
    control_plane_factory: MakeControlPlane,
    fake_provider: FakeProvider,
    tls_files: TlsFiles,
    tmp_path: Path,
) -> None:
    """A new certificate (from a new CA) replaces the files: new gRPC and HTTP connections
    get it, without a restart; an open client keeps working."""
    plane = await control_plane_factory(providers=[fake_provider], env=tls_files.server_env())
    old_ca = ClientTls(ca_file=str(tls_files.ca.cert_file))
    new = make_ca(tmp_path, "Rotated CA")
    new_ca = ClientTls(ca_file=str(new.cert_file))
    assert await _https_issuer(plane.http_port, tls_files.ca.cert_file) == "Hodei test CA"
    async with HodeiClient(plane.address, tls=old_ca) as before:
        assert await before.list_jobs() == []
        cert, key = new.issue(tmp_path / "rotated", **LOOPBACK_NAMES)  # type: ignore[arg-type]
        # The key first, then the certificate: between the two the pair does not match,
        # and the server keeps the old one instead of failing.
        _replace(tls_files.server_key, key)
        async with HodeiClient(plane.address, tls=old_ca) as during:
            assert await during.list_jobs() == []
        _replace(tls_files.server_cert, cert)
        async with HodeiClient(plane.address, tls=new_ca) as after:
            assert await after.list_jobs() == []
        async with HodeiClient(plane.address, tls=old_ca) as stale:
            with pytest.raises(ClientError, match="not signed by a CA this client trusts"):
                await stale.list_jobs()
        assert await before.list_jobs() == []  # its connection was made before: still fine
    assert await _https_issuer(plane.http_port, new.cert_file) == "Rotated CA"


@pytest.mark.slow
async def test_a_job_runs_under_mtls_and_a_worker_certificate_cannot_use_the_jobs_api(
    control_plane_factory: MakeControlPlane, tls_files: TlsFiles, tmp_path: Path
) -> None:
    """Every connection needs a client certificate: the CLI presents one signed by
    HODEI_TLS_CLIENT_CA_FILE, the local agent one from the control plane's worker CA.
    A worker's certificate opens no jobs API call."""
    env = {**tls_files.server_env(), "HODEI_TLS_CLIENT_CA_FILE": str(tls_files.ca.cert_file)}
    plane = await control_plane_factory(env=env)
    ca = str(tls_files.ca.cert_file)
    client_tls = ClientTls(ca, str(tls_files.client_cert), str(tls_files.client_key))
    async with HodeiClient(plane.address, tls=client_tls) as client:
        state, out = await _job_over(client, JobSpec(shell="echo mutual"))
    assert (state, out) == (JobState.SUCCEEDED, b"mutual\n")
    stored = await plane.store.get_meta(META_KEY)
    assert stored is not None
    worker = WorkerCa.from_pem(stored).issue("w-stolen")
    stolen = ClientTls(ca, cert_pem=worker.cert_pem, key_pem=worker.key_pem)
    async with HodeiClient(plane.address, tls=stolen) as client:
        with pytest.raises(ClientError) as caught:
            await client.list_jobs()
    assert caught.value.code == "PERMISSION_DENIED"
    assert "a worker's certificate may not call the jobs API" in str(caught.value)

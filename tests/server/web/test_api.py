"""``/api/v1`` against a started control plane (scripted workers over real gRPC)."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hodei.api import shapes
from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc
from hodei.domain.ids import JobId
from hodei.domain.logs import LogChunk, LogStream
from hodei.providers.fake import FakeProvider
from hodei.server.app import ControlPlane
from tests.fixtures.certs import TlsFiles
from tests.fixtures.control_plane import MakeControlPlane
from tests.server.helpers import submit, wait_done

TOKEN = "s3cret-token"


@pytest.fixture
async def http(control_plane: ControlPlane) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{control_plane.http_port}") as session:
        yield session


async def get(http: aiohttp.ClientSession, path: str, status: int = 200, **kw: Any) -> Any:
    async with http.get(path, **kw) as response:
        body = await response.json()
        assert response.status == status, body
        return body


async def test_jobs_are_listed_newest_first_with_the_cli_json_shape(
    control_plane: ControlPlane,
    job_client: jobs_pb2_grpc.JobServiceStub,
    http: aiohttp.ClientSession,
) -> None:
    first = await submit(job_client, "echo", "one", labels={"team": "ml"})
    second = await submit(job_client, "exit", "3")
    await wait_done(job_client, first.id)
    await wait_done(job_client, second.id)
    page = await get(http, "/api/v1/jobs")
    assert [j["id"] for j in page["items"]] == [second.id, first.id]
    assert page["next"] is None
    stored = await control_plane.jobs.get(second.id)
    assert stored is not None
    expected = shapes.job_dict(stored)
    assert {k: page["items"][0][k] for k in expected} == expected
    assert page["items"][0]["state"] == "FAILED" and page["items"][0]["exit_code"] == 3


async def test_list_filters_by_state_any_case_and_label_and_pages(
    job_client: jobs_pb2_grpc.JobServiceStub, http: aiohttp.ClientSession
) -> None:
    ids = []
    for n in range(5):
        job = await submit(
            job_client, "echo", str(n), labels={"n": "even" if n % 2 == 0 else "odd"}
        )
        await wait_done(job_client, job.id)
        ids.append(job.id)
    failed = await submit(job_client, "exit", "1")
    await wait_done(job_client, failed.id)

    even = await get(http, "/api/v1/jobs?label=n=even")
    assert [j["id"] for j in even["items"]] == [ids[4], ids[2], ids[0]]
    only_failed = await get(http, "/api/v1/jobs?state=failed")
    assert [j["id"] for j in only_failed["items"]] == [failed.id]
    both = await get(http, "/api/v1/jobs?state=FAILED&state=succeeded&label=n=odd")
    assert [j["id"] for j in both["items"]] == [ids[3], ids[1]]

    page1 = await get(http, "/api/v1/jobs?limit=4")
    assert [j["id"] for j in page1["items"]] == [failed.id, ids[4], ids[3], ids[2]]
    assert page1["next"] == ids[2]
    page2 = await get(http, f"/api/v1/jobs?limit=4&after={page1['next']}")
    assert [j["id"] for j in page2["items"]] == [ids[1], ids[0]]
    assert page2["next"] is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("state=DONE", "state: 'DONE' is not a job state; accepted: QUEUED, STARTING"),
        ("label=team", "label: 'team' is not a selector; give KEY=VALUE"),
        ("limit=0", "limit: '0' is not accepted; give a whole number 1..500"),
        ("limit=many", "limit: 'many' is not accepted"),
    ],
)
async def test_bad_list_parameters_are_named(
    http: aiohttp.ClientSession, query: str, message: str
) -> None:
    body = await get(http, f"/api/v1/jobs?{query}", status=400)
    assert body["error"].startswith(message)


async def test_unknown_job_is_404(http: aiohttp.ClientSession) -> None:
    body = await get(http, "/api/v1/jobs/j-nope", status=404)
    assert body == {"error": "job 'j-nope' not found"}


async def test_logs_come_in_order_base64_with_streams_and_say_when_complete(
    job_client: jobs_pb2_grpc.JobServiceStub, http: aiohttp.ClientSession
) -> None:
    job = await submit(job_client, "stderr", "oops")
    await wait_done(job_client, job.id)
    body = await get(http, f"/api/v1/jobs/{job.id}/logs")
    assert [(c["stream"], base64.b64decode(c["data"])) for c in body["chunks"]] == [
        ("stderr", b"oops\n")
    ]
    assert body["ended"] is True and body["more"] is False
    assert body["next"] == body["chunks"][-1]["sequence"]
    again = await get(http, f"/api/v1/jobs/{job.id}/logs?after={body['next']}")
    assert again == {"chunks": [], "next": body["next"], "more": False, "ended": True}


async def test_large_logs_are_paged_by_bytes_and_the_raw_log_is_whole(
    control_plane: ControlPlane,
    job_client: jobs_pb2_grpc.JobServiceStub,
    http: aiohttp.ClientSession,
) -> None:
    job = await submit(job_client, "echo", "start")
    await wait_done(job_client, job.id)
    last = await control_plane.store.last_log_sequence(job.id)
    extra = [
        LogChunk(JobId(job.id), last + n, LogStream.STDOUT, bytes([n]) * 1000) for n in range(1, 11)
    ]
    await control_plane.store.append_logs(extra)
    seen = b""
    after, pages = 0, 0
    while True:
        body = await get(http, f"/api/v1/jobs/{job.id}/logs?after={after}&limit_bytes=2500")
        pages += 1
        seen += b"".join(base64.b64decode(c["data"]) for c in body["chunks"])
        after = body["next"]
        if not body["more"]:
            break
        assert sum(len(base64.b64decode(c["data"])) for c in body["chunks"]) <= 2500
    assert pages == 5  # "start\n" and two 1000-byte chunks, then two per page: 2+2+2+2+2
    expected = b"start\n" + b"".join(c.data for c in extra)
    assert seen == expected
    async with http.get(f"/api/v1/jobs/{job.id}/logs/raw") as response:
        assert response.status == 200
        assert response.headers["Content-Disposition"] == f'attachment; filename="{job.id}.log"'
        assert await response.read() == expected


async def test_cancel_cancels_a_running_job(
    job_client: jobs_pb2_grpc.JobServiceStub, http: aiohttp.ClientSession
) -> None:
    job = await submit(job_client, "sleep", "30")
    async with http.post(f"/api/v1/jobs/{job.id}/cancel", json={}) as response:
        assert response.status == 200
    done = await wait_done(job_client, job.id)
    assert done.state.value == "CANCELLED"
    assert (await get(http, f"/api/v1/jobs/{job.id}"))["state"] == "CANCELLED"


async def test_workers_are_listed_and_filtered_by_job(
    job_client: jobs_pb2_grpc.JobServiceStub, http: aiohttp.ClientSession
) -> None:
    a = await submit(job_client, "echo", "a")
    b = await submit(job_client, "echo", "b")
    await wait_done(job_client, a.id)
    await wait_done(job_client, b.id)
    everyone = await get(http, "/api/v1/workers")
    assert [w["job_id"] for w in everyone["items"]] == [b.id, a.id]
    mine = await get(http, f"/api/v1/workers?job={a.id}")
    assert [w["job_id"] for w in mine["items"]] == [a.id]
    assert mine["items"][0]["provider"] == "local" and mine["items"][0]["attempt"] == 1


async def test_with_a_token_only_the_bearer_or_the_session_cookie_gets_in(
    control_plane_factory: MakeControlPlane, fake_provider: FakeProvider
) -> None:
    plane = await control_plane_factory(providers=[fake_provider], env={"HODEI_API_TOKEN": TOKEN})
    base = f"http://127.0.0.1:{plane.http_port}"
    async with aiohttp.ClientSession(base) as anonymous:
        assert (await get(anonymous, "/api/v1/jobs", status=401))["error"].startswith(
            "missing or wrong API token"
        )
        await get(anonymous, "/api/v1/jobs", status=401, headers={"Authorization": "Bearer x"})
        assert await get(anonymous, "/api/v1/session", status=401) == {
            "auth_required": True,
            "authenticated": False,
        }
        # The probes and metrics are not behind the token.
        async with anonymous.get("/healthz") as response:
            assert response.status == 200
        # The page itself is public: it holds no data, only the login.
        async with anonymous.get("/") as response:
            assert response.status == 200
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(base, headers=bearer) as script:
        assert (await get(script, "/api/v1/jobs"))["items"] == []
    # unsafe=True: aiohttp keeps no cookies of IP-address hosts otherwise (browsers do).
    async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post("/api/v1/session", json={"token": "wrong"}) as response:
            assert response.status == 401
        async with browser.post("/api/v1/session", json={"token": TOKEN}) as response:
            assert response.status == 200
            cookie = response.cookies["hodei_session"]
            assert cookie["httponly"] is True and cookie["samesite"] == "Strict"
            assert TOKEN not in cookie.value
        assert (await get(browser, "/api/v1/jobs"))["items"] == []
        async with browser.delete("/api/v1/session") as response:
            assert response.status == 200
        await get(browser, "/api/v1/jobs", status=401)


async def test_first_page_of_ten_thousand_jobs_is_one_bounded_query(
    control_plane: ControlPlane, http: aiohttp.ClientSession
) -> None:
    """The page size bounds the work, whatever the store holds (figures: bench/console)."""
    from datetime import UTC, datetime

    from hodei.domain.jobs import Job, JobSpec
    from hodei.domain.states import JobState

    now = datetime.now(UTC)
    for n in range(300):
        await control_plane.store.save_job(
            Job(JobId(f"j-{n:05}"), JobSpec(command=("true",)), JobState.SUCCEEDED, now)
        )
    page = await get(http, "/api/v1/jobs?limit=50")
    assert len(page["items"]) == 50
    assert page["items"][0]["id"] == "j-00299" and page["next"] == "j-00250"


async def test_grpc_and_http_list_the_same_jobs(
    job_client: jobs_pb2_grpc.JobServiceStub, http: aiohttp.ClientSession
) -> None:
    job = await submit(job_client, "echo", "x")
    await wait_done(job_client, job.id)
    reply = await job_client.ListJobs(jobs_pb2.ListJobsRequest())
    page = await get(http, "/api/v1/jobs")
    assert [j.id for j in reply.jobs] == [j["id"] for j in page["items"]]


async def test_a_page_of_jobs_is_bounded_in_bytes(
    control_plane: ControlPlane, http: aiohttp.ClientSession
) -> None:
    from datetime import UTC, datetime

    from hodei.domain.jobs import Job, JobSpec
    from hodei.domain.states import JobState

    now = datetime.now(UTC)
    big = "x" * 100_000  # within the per-argument limit
    for n in range(60):
        spec = JobSpec(command=("echo", big, big, big, big, big, big, big, big))
        await control_plane.store.save_job(Job(JobId(f"j-{n:03}"), spec, JobState.SUCCEEDED, now))
    async with http.get("/api/v1/jobs?limit=60") as response:
        raw = await response.read()
    page = json.loads(raw)
    assert len(raw) <= 4 * 1024 * 1024 + 2_000_000  # the bound, plus the one job that crosses it
    assert 0 < len(page["items"]) < 60
    assert page["next"] == page["items"][-1]["id"]
    rest = await get(http, f"/api/v1/jobs?limit=60&after={page['next']}")
    assert len(page["items"]) + len(rest["items"]) <= 60


async def test_with_mtls_a_client_certificate_gets_in_and_probes_need_none(
    control_plane_factory: MakeControlPlane, fake_provider: FakeProvider, tls_files: TlsFiles
) -> None:
    env = {**tls_files.server_env(), "HODEI_TLS_CLIENT_CA_FILE": str(tls_files.ca.cert_file)}
    plane = await control_plane_factory(providers=[fake_provider], env=env)
    base = f"https://127.0.0.1:{plane.http_port}"

    def context(cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(tls_files.ca.cert_file))
        if cert is not None:
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    with_cert = aiohttp.TCPConnector(ssl=context(tls_files.client_cert, tls_files.client_key))
    async with aiohttp.ClientSession(base, connector=with_cert) as client:
        assert (await get(client, "/api/v1/jobs"))["items"] == []
        assert await get(client, "/api/v1/session") == {
            "auth_required": True,
            "authenticated": True,
        }
    async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(ssl=context())) as anon:
        await get(anon, "/api/v1/jobs", status=401)
        async with anon.get("/healthz") as response:  # probes and Prometheus: no certificate
            assert response.status == 200
    # A certificate from a CA the operator did not name (as a worker's is) fails the
    # handshake: it opens nothing.
    foreign_cert, foreign_key = tls_files.other_ca.issue(
        tls_files.server_cert.parent / "foreign", common_name="mallory", client=True
    )
    foreign = aiohttp.TCPConnector(ssl=context(foreign_cert, foreign_key))
    async with aiohttp.ClientSession(base, connector=foreign) as mallory:
        with pytest.raises(aiohttp.ClientError):
            await get(mallory, "/api/v1/jobs")

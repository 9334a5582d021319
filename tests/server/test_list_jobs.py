"""Listing is paged and bounded in bytes: no job, however large, breaks `hodei jobs list`."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from hodei.api.v1 import jobs_pb2
from hodei.cli.client import HodeiClient
from hodei.domain.ids import JobId
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.states import JobState
from hodei.server.app import ControlPlane
from tests.fixtures.stubs import job_stub


def legacy_job(number: int, argv_bytes: int) -> Job:
    """A job as one stored before specs were bounded (it never passed validation)."""
    spec = JobSpec(command=("echo", *["x" * 100_000] * (argv_bytes // 100_000)))
    return Job(
        JobId(f"j-legacy{number:04d}"),
        spec,
        JobState.SUCCEEDED,
        datetime.now(UTC),
        finished_at=datetime.now(UTC),
        exit_code=0,
    )


async def test_two_20_megabyte_jobs_do_not_break_the_listing(control_plane: ControlPlane) -> None:
    store = control_plane.store
    for number in range(2):
        await store.save_job(legacy_job(number, 20_000_000))
    for number in range(2, 12):
        await store.save_job(legacy_job(number, 900_000))
    async with HodeiClient(control_plane.address) as client:
        listed = await client.list_jobs(limit=50)
    assert [job.id for job in listed] == [f"j-legacy{n:04d}" for n in reversed(range(12))]
    assert listed[-1].spec.command == ("(left out of the listing: too large; see hodei jobs show)",)
    assert len(listed[0].spec.command) == 10  # 900 kB jobs are listed whole


async def test_pages_are_bounded_in_bytes_and_continue_with_the_token(
    control_plane: ControlPlane,
) -> None:
    for number in range(8):
        await control_plane.store.save_job(legacy_job(number, 900_000))
    async with grpc.aio.insecure_channel(control_plane.address) as channel:
        call = channel.unary_unary(
            "/hodei.v1.JobService/ListJobs",
            request_serializer=jobs_pb2.ListJobsRequest.SerializeToString,
            response_deserializer=jobs_pb2.ListJobsResponse.FromString,
        )
        first = await call(jobs_pb2.ListJobsRequest(limit=100))
        second = await call(jobs_pb2.ListJobsRequest(limit=100, page_token=first.next_page_token))
    assert first.ByteSize() <= 4 * 1024 * 1024
    assert [j.id for j in first.jobs] == [f"j-legacy{n:04d}" for n in (7, 6, 5, 4)]
    assert first.next_page_token == "j-legacy0004"
    assert [j.id for j in second.jobs] == [f"j-legacy{n:04d}" for n in (3, 2, 1, 0)]
    assert second.next_page_token == ""


@pytest.mark.parametrize("selector", [{'team"x': "a"}, {"team": "a\n"}, {"a/b/c": "x"}])
async def test_a_label_selector_that_is_no_label_is_invalid_argument(
    control_plane: ControlPlane, selector: dict[str, str]
) -> None:
    async with grpc.aio.insecure_channel(control_plane.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await job_stub(channel).ListJobs(jobs_pb2.ListJobsRequest(labels=selector))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("labels: accepted: a Kubernetes label")

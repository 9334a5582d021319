"""The jobs API's boundary: what a raw gRPC client can send and what it gets back.

Each request here is one the CLI would refuse before sending; the server must refuse it
too, with INVALID_ARGUMENT naming the field, and never answer UNKNOWN.
"""

from __future__ import annotations

import random

import grpc
import pytest

from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from hodei.domain.ids import JobId
from hodei.domain.jobs import Job
from hodei.providers.fake import FakeProvider
from hodei.server.app import ControlPlane
from hodei.store import MemoryStore
from tests.fixtures.control_plane import MakeControlPlane
from tests.fixtures.stubs import job_stub

SUBMIT = "/hodei.v1.JobService/SubmitJob"


def spec(**fields: object) -> types_pb2.JobSpec:
    fields.setdefault("command", ["true"])
    return types_pb2.JobSpec(**fields)  # type: ignore[arg-type]


async def submit_raw(channel: grpc.aio.Channel, data: bytes) -> grpc.StatusCode:
    call = channel.unary_unary(SUBMIT)
    try:
        await call(data)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("message", "details"),
    [
        (spec(command=["echo", "a\x00b"]), "command[1]: contains a NUL"),
        (spec(env={"A": "x\x00"}), "env A: contains a NUL"),
        (spec(command=["echo", "x" * 1024 * 1024]), "command[1]: 1048576 bytes; at most 131071"),
        (spec(command=[""]), "command[0]: empty"),
        (spec(labels={"team\n": "a"}), "labels: key 'team\\n' is not valid"),
        (spec(env={"PATH\n": "a"}), "env: name 'PATH\\n' is not valid"),
        (
            spec(resources=types_pb2.Resources(memory_limit="1e999999999")),
            "resources.memory_limit: '1e999999999' is out of range",
        ),
        (spec(timeout_seconds=float("inf")), "timeout: inf is not accepted"),
        (spec(timeout_seconds=1e300), "timeout: 1e+300 is not accepted"),
        (spec(command=["echo", *["x" * 100_000] * 200]), "spec: 20000004 bytes"),
    ],
)
async def test_bad_specs_are_invalid_argument_naming_the_field(
    job_client: jobs_pb2_grpc.JobServiceStub, message: types_pb2.JobSpec, details: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await job_client.SubmitJob(jobs_pb2.SubmitJobRequest(spec=message))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert details in (caught.value.details() or "")


async def test_invalid_utf8_is_invalid_argument_naming_the_field(
    control_plane: ControlPlane,
) -> None:
    good = jobs_pb2.SubmitJobRequest(spec=spec(command=["echo", "ab"])).SerializeToString()
    async with grpc.aio.insecure_channel(control_plane.address) as channel:
        call = channel.unary_unary(SUBMIT)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(good.replace(b"ab", b"a\xff"))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "spec.command[1]: not valid UTF-8"


async def test_no_mangled_request_gets_unknown(control_plane: ControlPlane) -> None:
    """Random corruptions of a valid request: accepted or refused, never UNKNOWN."""
    good = jobs_pb2.SubmitJobRequest(
        spec=spec(
            command=["echo", "hi"],
            env={"A": "b"},
            labels={"team": "x"},
            resources=types_pb2.Resources(cpu_request="100m", memory_limit="64Mi"),
            timeout_seconds=5,
            max_attempts=2,
        )
    ).SerializeToString()
    rng = random.Random(10)
    seen = set()
    async with grpc.aio.insecure_channel(control_plane.address) as channel:
        for _ in range(150):
            data = bytearray(good)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            seen.add(await submit_raw(channel, bytes(data)))
    assert seen <= {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
    assert grpc.StatusCode.INVALID_ARGUMENT in seen


class BrokenReads(MemoryStore):
    """A store with a bug: reading a job raises something no handler expects."""

    async def get_job(self, job_id: JobId) -> Job | None:
        raise KeyError("a bug")


async def test_an_unexpected_error_is_internal_and_logged_never_unknown(
    control_plane_factory: MakeControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    plane = await control_plane_factory(providers=[FakeProvider("local")], store=BrokenReads())
    async with grpc.aio.insecure_channel(plane.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await job_stub(channel).GetJob(jobs_pb2.GetJobRequest(id="j-unknown"))
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error; the control plane logged the details"
    logged = [r for r in caplog.records if r.getMessage() == "unexpected error serving a request"]
    assert len(logged) == 1 and logged[0].exc_info is not None

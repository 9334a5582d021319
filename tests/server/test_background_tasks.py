"""Every background task under one supervision: a task killed by an unexpected exception
is logged once with its traceback, counted, shown on /readyz while down, and restarted."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from hodei.domain.ids import JobId
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.states import JobState
from hodei.providers.base import WorkerRequest, WorkerStatus
from hodei.providers.fake import FakeProvider
from hodei.server.app import ControlPlane
from tests.fixtures.clock import FakeClock
from tests.fixtures.control_plane import FAST, MakeControlPlane
from tests.fixtures.scripted_worker import scripted_agent
from tests.fixtures.stubs import job_stub
from tests.fixtures.waiting import eventually
from tests.server.helpers import readyz, restarts, submit, wait_done

# Long enough that /readyz is seen answering 503 while the task waits to restart.
VISIBLE = replace(FAST, restart_backoff=(0.5,), sweep_interval=timedelta(seconds=0.05))


class Injected(RuntimeError):
    """The exception a test injects into a background task."""


class SabotagedProvider(FakeProvider):
    """Raises :class:`Injected` once from the call named by :meth:`arm`."""

    armed: str = ""

    def arm(self, call: str) -> None:
        self.armed = call

    def _trip(self, call: str) -> None:
        if self.armed == call:
            self.armed = ""
            raise Injected(f"injected into {call}")

    @property
    def capacity(self) -> int | None:  # read by every scheduler pass
        self._trip("capacity")
        return None

    async def list_workers(self) -> list[WorkerStatus]:  # read by the supervisor's sweep
        self._trip("list_workers")
        return await super().list_workers()

    async def create_worker(self, request: WorkerRequest) -> WorkerStatus:  # worker creation
        self._trip("create_worker")
        return await super().create_worker(request)


@pytest.mark.parametrize(
    ("call", "task"), [("capacity", "scheduler"), ("list_workers", "supervisor")]
)
async def test_a_killed_loop_is_reported_down_and_restarted(
    control_plane_factory: MakeControlPlane, caplog: pytest.LogCaptureFixture, call: str, task: str
) -> None:
    provider = SabotagedProvider("local", on_create=scripted_agent)
    plane = await control_plane_factory(providers=[provider], tuning=VISIBLE)
    assert (await readyz(plane))[0] == 200
    provider.arm(call)
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        job = await submit(stub, "echo", "hi")  # wakes the scheduler
        reports: list[tuple[int, str]] = []

        async def down() -> bool:
            reports.append(await readyz(plane))
            return reports[-1][0] == 503

        await eventually(down)
        assert (
            f"task {task}: down: Injected: injected into {call}; restarting in 0.5s"
            in (reports[-1][1])
        )
        await eventually(lambda: ready(plane))
        assert restarts(plane, task) == 1
        # Restarted, it does its work again: the job runs.
        assert (await wait_done(stub, job.id)).state is JobState.SUCCEEDED
    failures = [r for r in caplog.records if r.getMessage().startswith(f"background task {task}")]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert failures[0].levelno == logging.ERROR


async def test_a_failed_worker_creation_settles_its_job(
    control_plane_factory: MakeControlPlane,
) -> None:
    provider = SabotagedProvider("local", on_create=scripted_agent)
    plane = await control_plane_factory(providers=[provider])
    provider.arm("create_worker")
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        once = await submit(stub, "echo", "hi")
        failed = await wait_done(stub, once.id)
        provider.arm("create_worker")
        retried = await submit(stub, "echo", "hi", max_attempts=2)
        done = await wait_done(stub, retried.id)
    assert (failed.state, failed.reason, failed.message) == (
        JobState.FAILED,
        "ProviderError",
        "creating the worker failed: Injected: injected into create_worker",
    )
    assert (done.state, done.attempt) == (JobState.SUCCEEDED, 2)
    assert restarts(plane, "create-worker") == 2


async def ready(plane: ControlPlane) -> bool:
    return (await readyz(plane))[0] == 200


async def test_timeouts_stored_before_specs_were_bounded_do_not_stop_the_supervisor(
    control_plane_factory: MakeControlPlane,
) -> None:
    clock = FakeClock()
    plane = await control_plane_factory(
        providers=[FakeProvider("local")], tuning=VISIBLE, clock=clock
    )
    now = clock.now()
    for number, timeout in enumerate((float("inf"), 1e300)):
        legacy = Job(
            JobId(f"j-legacy{number}"),
            JobSpec(command=("sleep", "1"), timeout_seconds=timeout),
            JobState.RUNNING,
            now,
            started_at=now - timedelta(days=1),
            provider="local",
        )
        await plane.jobs.save(legacy)
    for _ in range(5):  # several rounds of the supervisor's checks, each run to its end
        await eventually(lambda: clock.sleeping > 0)
        await clock.advance(plane.tuning.tick)
    await eventually(lambda: clock.sleeping > 0)
    assert restarts(plane, "supervisor") == 0
    assert await ready(plane)


async def test_an_infinite_timeout_stored_earlier_fails_its_kubernetes_job_and_frees_the_slot(
    control_plane_factory: MakeControlPlane,
) -> None:
    from hodei.config.settings import KubernetesSettings
    from hodei.providers.kubernetes import KubernetesProvider
    from tests.providers.kubernetes.fake_api import FakePodApi

    api = FakePodApi()
    provider = KubernetesProvider(
        settings=KubernetesSettings(enabled=True, max_workers=1), api=api, instance="test"
    )
    plane = await control_plane_factory(providers=[provider])
    legacy = Job(
        JobId("j-legacyinf"),
        JobSpec(command=("true",), timeout_seconds=float("inf")),  # accepted before bounds
        JobState.QUEUED,
        datetime.now(UTC),
        provider="kubernetes",
    )
    await plane.jobs.save(legacy)
    plane.dispatch.set()
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = job_stub(channel)
        failed = await wait_done(stub, legacy.id)
        assert (failed.state, failed.reason) == (JobState.FAILED, "ProviderError")
        assert failed.message == (
            "creating the worker failed: OverflowError: cannot convert float infinity to integer"
        )
        assert restarts(plane, "create-worker") == 1
        # Its slot is free again: the next job gets a pod (max_workers=1).
        await submit(stub, "true")
        await eventually(lambda: len(api.pods) == 1)

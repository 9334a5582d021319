"""Web console / HTTP API: server time for the first page of jobs with 10,000 stored.

Fills a SQLite store with N finished jobs (default 10,000, a tenth labelled
``team=ml``), starts a control plane on it (no provider work), and times, from a client
on 127.0.0.1, the requests the console makes for its first screen: ``GET /`` (the page),
``GET /api/v1/jobs?limit=50`` (first page), the same with ``label=team=ml`` and with
``state=FAILED``, and a later page (``after=``). Baseline side by side: gRPC ``ListJobs``
of the same 50 jobs (what ``hodei jobs list`` asks). Target: first page < 200 ms.
Run: ``python bench/console.py [JOBS] [ROUNDS]``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import grpc

from hodei.api.v1 import jobs_pb2, jobs_pb2_grpc
from hodei.config.settings import load_server_settings
from hodei.domain.ids import JobId
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.states import JobState
from hodei.providers.fake import FakeProvider
from hodei.server.app import ControlPlane
from hodei.store import SqliteStore


async def fill(path: Path, count: int) -> None:
    store = SqliteStore(path)
    await store.open()
    start = datetime.now(UTC) - timedelta(days=1)
    for n in range(count):
        labels = {"team": "ml"} if n % 10 == 0 else {"team": "web"}
        state = JobState.FAILED if n % 7 == 0 else JobState.SUCCEEDED
        spec = JobSpec(command=("sh", "-c", f"echo job {n}"), labels=labels)
        created = start + timedelta(seconds=n)
        await store.save_job(
            Job(
                JobId(f"j-{n:06}"),
                spec,
                state,
                created,
                attempt=1,
                exit_code=0,
                started_at=created,
                finished_at=created + timedelta(seconds=1),
            )
        )
    await store.close()


async def timed(rounds: int, call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    await call()  # warm up
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


async def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "hodei.db"
        started = time.perf_counter()
        await fill(db, count)
        print(f"stored {count} jobs in {time.perf_counter() - started:.1f} s")
        settings = load_server_settings(
            {
                "HODEI_GRPC_ADDRESS": "127.0.0.1:0",
                "HODEI_HTTP_ADDRESS": "127.0.0.1:0",
                "HODEI_DATABASE_URL": f"sqlite:///{db}",
            }
        )
        plane = ControlPlane(settings, providers=[FakeProvider("local")])
        await plane.start()
        try:
            base = f"http://127.0.0.1:{plane.http_port}"
            async with (
                aiohttp.ClientSession(base) as http,
                grpc.aio.insecure_channel(plane.address) as channel,
            ):
                stub = jobs_pb2_grpc.JobServiceStub(channel)  # type: ignore[no-untyped-call]

                def get(path: str) -> Callable[[], Awaitable[object]]:
                    async def call() -> object:
                        async with http.get(path) as response:
                            assert response.status == 200, await response.text()
                            return await response.read()

                    return call

                async def grpc_page() -> object:
                    return await stub.ListJobs(jobs_pb2.ListJobsRequest(limit=50))

                middle = f"j-{count // 2:06}"
                cases = [
                    ("GET / (the page)", get("/")),
                    ("GET /api/v1/jobs?limit=50", get("/api/v1/jobs?limit=50")),
                    ("  … &label=team=ml", get("/api/v1/jobs?limit=50&label=team=ml")),
                    ("  … &state=FAILED", get("/api/v1/jobs?limit=50&state=FAILED")),
                    ("  … &after=<middle>", get(f"/api/v1/jobs?limit=50&after={middle}")),
                    ("baseline: gRPC ListJobs(limit=50)", grpc_page),
                ]
                print(f"{'request':<36} {'p50 ms':>8} {'p95 ms':>8}   target < 200 ms")
                for name, call in cases:
                    p50, p95 = await timed(rounds, call)
                    print(f"{name:<36} {p50:8.1f} {p95:8.1f}")
        finally:
            await plane.stop(grace=0)


if __name__ == "__main__":
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    asyncio.run(main(jobs, rounds))

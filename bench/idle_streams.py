"""What idle worker streams cost the control plane, and that the register deadline frees it.

Opens N ``WorkerService.Connect`` streams that never send Register and prints, beside the
baseline with no stream open, the control plane's resident memory and its asyncio tasks
while they are open and after the register deadline closed them (Python keeps freed memory
for reuse, so the task count is what shows the streams are gone).
Run: ``python bench/idle_streams.py [N] [DEADLINE_SECONDS]`` (defaults 2000 and 2).
"""

from __future__ import annotations

import asyncio
import collections
import sys
import tempfile
import time
from pathlib import Path

import grpc

from hodei.api.v1 import worker_pb2_grpc
from hodei.config.settings import load_server_settings
from hodei.providers.fake import FakeProvider
from hodei.server.app import ControlPlane
from hodei.server.tuning import Tuning


def resident_kib() -> int:
    """This process's resident set size (VmRSS of /proc/self/status), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def ended(call: grpc.aio.StreamStreamCall) -> str:
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    return "OK"


async def main(count: int, deadline: float) -> None:
    with tempfile.TemporaryDirectory() as directory:
        settings = load_server_settings(
            {
                "HODEI_GRPC_ADDRESS": "127.0.0.1:0",
                "HODEI_HTTP_ADDRESS": "127.0.0.1:0",
                "HODEI_DATABASE_URL": f"sqlite:///{directory}/bench.db",
            }
        )
        plane = ControlPlane(
            settings, providers=[FakeProvider("local")], tuning=Tuning(register_deadline=deadline)
        )
        await plane.start()
        try:
            baseline, base_tasks = resident_kib(), len(asyncio.all_tasks())
            async with grpc.aio.insecure_channel(plane.address) as channel:
                stub = worker_pb2_grpc.WorkerServiceStub(channel)  # type: ignore[no-untyped-call]
                started = time.monotonic()
                calls = [stub.Connect() for _ in range(count)]
                endings = asyncio.gather(*(ended(call) for call in calls))
                await asyncio.sleep(deadline / 2)
                open_kib, open_tasks = resident_kib(), len(asyncio.all_tasks())
                codes = collections.Counter(await endings)
                closed_after = time.monotonic() - started
            after_kib, after_tasks = resident_kib(), len(asyncio.all_tasks())
        finally:
            await plane.stop(grace=0)
    per_stream = (open_kib - baseline) / count
    print(f"{'':30}{'resident KiB':>14}{'asyncio tasks':>15}")
    print(f"{'baseline (no stream)':30}{baseline:>14}{base_tasks:>15}")
    print(f"{f'{count} idle streams open':30}{open_kib:>14}{open_tasks:>15}")
    print(f"{'after the register deadline':30}{after_kib:>14}{after_tasks:>15}")
    print(f"{per_stream:.1f} KiB per open stream; closed {closed_after:.1f}s after opening")
    print(f"(deadline {deadline:g}s), ended with {dict(codes)}")


if __name__ == "__main__":
    asyncio.run(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 2000,
            float(sys.argv[2]) if len(sys.argv) > 2 else 2.0,
        )
    )

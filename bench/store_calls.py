"""CPU per small call of the SQLite store, beside the same statement run in place.

Every store call runs on the store's own thread; handing it there and the result back
costs more than a small statement does. This prints the CPU time (both threads) per
``get_job`` made one at a time (each call its own hop to the thread) and by N callers
at once (calls that arrive together share a hop), beside the baseline of the same SELECT
and decoding run directly on one thread with no hop. Figures, not a test.
Run: ``python bench/store_calls.py [CALLS] [CALLERS]`` (defaults 4000 and 20).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from hodei.domain.ids import JobId
from hodei.domain.jobs import Job, JobSpec
from hodei.domain.states import JobState
from hodei.store import SqliteStore
from hodei.store.codec import job_from_json


def per_call_ms(cpu_seconds: float, calls: int) -> str:
    return f"{cpu_seconds / calls * 1000:.3f} ms CPU per call"


async def main(calls: int = 4000, callers: int = 20) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        store = SqliteStore(path)
        await store.open()
        ids = [JobId(f"j-{n}") for n in range(callers)]
        for job_id in ids:
            spec = JobSpec(command=("true",))
            await store.save_job(Job(job_id, spec, JobState.QUEUED, datetime.now(UTC)))
        rounds = calls // callers

        started, hops = time.process_time(), store.hops
        for _ in range(rounds):
            for job_id in ids:
                await store.get_job(job_id)
        alone, alone_hops = time.process_time() - started, store.hops - hops

        async def caller(job_id: JobId) -> None:
            for _ in range(rounds):
                await store.get_job(job_id)

        started, hops = time.process_time(), store.hops
        await asyncio.gather(*(caller(job_id) for job_id in ids))
        together, together_hops = time.process_time() - started, store.hops - hops
        await store.close()

        db = sqlite3.connect(path, isolation_level=None)
        started = time.process_time()
        for _ in range(rounds):
            for job_id in ids:
                row = db.execute("SELECT doc FROM jobs WHERE id = ?", (job_id,)).fetchone()
                job_from_json(row[0])
        direct = time.process_time() - started
        db.close()

    done = rounds * callers
    print(f"{done} get_job calls on a SQLite file:")
    print(f"  one at a time:      {per_call_ms(alone, done)} ({alone_hops} hops)")
    print(f"  {callers} callers at once: {per_call_ms(together, done)} ({together_hops} hops)")
    print(f"  baseline, no hop:   {per_call_ms(direct, done)} (same statement on one thread)")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*args))

"""Log write and read throughput of the SQLite store: 100 MB in 64 KiB chunks.

Prints MB/s for appending (one transaction per batch, as the worker stream does) and for
reading back in pages (as StreamLogs does). Run: ``python bench/store_logs.py [MB]``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from hodei.domain.ids import JobId
from hodei.domain.logs import LogChunk, LogStream
from hodei.store import SqliteStore

CHUNK = 64 * 1024


async def main(megabytes: int) -> None:
    total = megabytes * 1_000_000
    data = os.urandom(CHUNK)
    count = total // CHUNK
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore(Path(directory) / "bench.db")
        await store.open()
        job = JobId("j-bench")
        started = time.perf_counter()
        for batch_start in range(1, count + 1, 4):  # ~4 chunks per LogBatch message
            batch = [
                LogChunk(job, seq, LogStream.STDOUT, data)
                for seq in range(batch_start, min(batch_start + 4, count + 1))
            ]
            await store.append_logs(batch)
        write = time.perf_counter() - started
        started = time.perf_counter()
        read_bytes, after = 0, 0
        while page := await store.read_logs(job, after=after, limit=256):
            read_bytes += sum(len(c.data) for c in page)
            after = page[-1].sequence
        read = time.perf_counter() - started
        await store.close()
    mb = count * CHUNK / 1e6
    print(f"append: {mb:.0f} MB in {write:.2f} s = {mb / write:.0f} MB/s")
    print(f"read:   {read_bytes / 1e6:.0f} MB in {read:.2f} s = {read_bytes / 1e6 / read:.0f} MB/s")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))

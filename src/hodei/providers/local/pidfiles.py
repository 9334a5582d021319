"""Records of running worker processes on disk, so a restarted control plane finds them.

Local workers outlive a control plane that is killed: they keep running their jobs and
reconnect. One small JSON file per worker under ``<state_dir>/workers/`` says which
process it is (pid and start time, so a reused pid is not mistaken for it) and which
job it serves; the next control plane lists, adopts or kills those processes.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorkerProcess:
    worker_id: str
    job_id: str
    pid: int
    start_time: int | None


class PidFiles:
    """The ``workers/`` directory of a state dir."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "workers"

    def ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def log_path(self, worker_id: str) -> Path:
        """Where the worker process's own stdout/stderr go (agent diagnostics)."""
        return self.directory / f"{worker_id}.log"

    def write(self, record: WorkerProcess) -> None:
        """Write atomically: a half-written file after a crash would hide a worker."""
        path = self.directory / f"{record.worker_id}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(record)))
        os.replace(temporary, path)

    def read_all(self) -> list[WorkerProcess]:
        records = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text())
                records.append(
                    WorkerProcess(
                        worker_id=str(data["worker_id"]),
                        job_id=str(data["job_id"]),
                        pid=int(data["pid"]),
                        start_time=data.get("start_time"),
                    )
                )
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)  # unreadable: nothing can be done with it
        return records

    def remove_record(self, worker_id: str) -> None:
        (self.directory / f"{worker_id}.json").unlink(missing_ok=True)

    def remove(self, worker_id: str) -> None:
        """Forget the worker entirely: record and log."""
        self.remove_record(worker_id)
        self.log_path(worker_id).unlink(missing_ok=True)

"""How jobs and workers are shown: tables for people, JSON for machines. Pure functions.

The JSON objects themselves are defined once in :mod:`hodei.api.shapes` (the HTTP API
serves the same ones).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hodei.api.shapes import command_text, rfc3339
from hodei.domain.jobs import Job
from hodei.domain.workers import WorkerRecord


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def age(since: datetime | None, now: datetime) -> str:
    """A short age such as ``42s``, ``5m``, ``3h``, ``2d``."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, like kubectl's."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def jobs_table(jobs: Sequence[Job], now: datetime) -> str:
    rows = [
        [
            job.id,
            job.state.value,
            "-" if job.exit_code is None else str(job.exit_code),
            job.reason or "",
            job.provider or "",
            age(job.created_at, now),
            _clip(command_text(job), 40),
        ]
        for job in jobs
    ]
    return table(["ID", "STATE", "EXIT", "REASON", "PROVIDER", "AGE", "COMMAND"], rows)


def job_details(job: Job) -> str:
    """``hodei jobs show``: one field per line."""
    fields = [
        ("ID", job.id),
        ("State", job.state.value),
        ("Exit code", "-" if job.exit_code is None else str(job.exit_code)),
        ("Reason", job.reason or "-"),
        ("Message", job.message or "-"),
        ("Command", command_text(job)),
        ("Provider", job.provider or "-"),
        ("Attempt", str(job.attempt)),
        ("Worker", job.worker_id or "-"),
        ("Created", rfc3339(job.created_at) or "-"),
        ("Started", rfc3339(job.started_at) or "-"),
        ("Finished", rfc3339(job.finished_at) or "-"),
    ]
    if job.waiting_reason:
        fields.insert(2, ("Waiting", job.waiting_reason))
    if job.spec.labels:
        labels = ",".join(f"{k}={v}" for k, v in sorted(job.spec.labels.items()))
        fields.append(("Labels", labels))
    if job.spec.timeout_seconds:
        fields.append(("Timeout", f"{job.spec.timeout_seconds:g}s"))
    if job.spec.profile:
        fields.append(("Profile", job.spec.profile))
    if job.spec.secret_env:
        refs = ",".join(f"{name}={ref}" for name, ref in sorted(job.spec.secret_env.items()))
        fields.append(("Secret env", refs))  # references; the values stay in the Secret
    width = max(len(name) for name, _ in fields) + 1
    text = "\n".join(f"{(name + ':').ljust(width)} {value}" for name, value in fields)
    if job.attempts:
        text += "\nAttempts:\n" + _indent(attempts_table(job))
    return text


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def attempts_table(job: Job) -> str:
    """Each ended attempt with why it ended; DISRUPTION says the platform took it away
    (it was retried without using up the job's max attempts)."""
    rows = [
        [
            str(a.number),
            a.worker_id or "-",
            a.reason or "-",
            "yes" if a.disruption else "no",
            _clip((a.message or "").replace("\n", " "), 80),
        ]
        for a in job.attempts
    ]
    return table(["#", "WORKER", "REASON", "DISRUPTION", "MESSAGE"], rows)


def workers_table(workers: Sequence[WorkerRecord], now: datetime) -> str:
    rows = [
        [
            w.id,
            w.job_id,
            w.provider,
            w.state.value,
            w.name or "",
            age(w.created_at, now),
            _clip(f"{w.reason}: {w.message}" if w.reason else (w.message or ""), 50),
        ]
        for w in workers
    ]
    return table(["ID", "JOB", "PROVIDER", "STATE", "PROCESS/POD", "AGE", "DETAIL"], rows)

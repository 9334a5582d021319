"""How jobs and workers are shown: tables for people, JSON for machines. Pure functions.

The JSON objects themselves are defined once in :mod:`hodei.api.shapes` (the HTTP API
serves the same ones).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from hodei.api.shapes import command_text, rfc3339
from hodei.cli import cells
from hodei.domain import exitcodes
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


_GAP = 2  # spaces between columns, as kubectl
_MIN_FLEXIBLE = 8  # a cut column keeps at least this many cells


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None = None,
    flexible: Collection[str] = (),
) -> str:
    """Left-aligned columns separated by two spaces, like kubectl's.

    With ``width`` (terminal cells), the ``flexible`` columns (by header) are cut with
    ``…``, the widest first, until each line fits; the others are never cut (an id
    must stay whole), so a terminal too narrow even for those gets longer lines.
    """
    widths = [cells.width(h) for h in headers]
    for row in rows:
        widths = [max(w, cells.width(cell)) for w, cell in zip(widths, row, strict=True)]
    if width is not None:
        widths = _fit(widths, [h in flexible for h in headers], width)
    lines = [headers, *rows]
    return "\n".join(
        (" " * _GAP)
        .join(_pad(cells.clip(cell, w), w) for cell, w in zip(line, widths, strict=True))
        .rstrip()
        for line in lines
    )


def _pad(text: str, to: int) -> str:
    return text + " " * (to - cells.width(text))


def _fit(widths: list[int], flexible: list[bool], width: int) -> list[int]:
    """Column widths within ``width``: the widest flexible column gives up a cell at a
    time, never below :data:`_MIN_FLEXIBLE`."""
    widths = list(widths)
    excess = sum(widths) + _GAP * (len(widths) - 1) - width
    while excess > 0:
        candidates = [i for i, f in enumerate(flexible) if f and widths[i] > _MIN_FLEXIBLE]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def _clip(text: str, limit: int) -> str:
    return cells.clip(text, limit)


def run_exit_text(job: Job) -> str:
    """The EXIT column: what ``hodei run`` exits (or would have exited) with for the job,
    ``-`` until it has ended."""
    if not job.state.terminal:
        return "-"
    return str(exitcodes.exit_code_for(job.state, job.reason, job.exit_code))


def reason_text(job: Job) -> str:
    """The REASON column: why a job still waits (QUEUED/STARTING), else why it failed."""
    if not job.state.terminal and job.waiting_reason:
        return job.waiting_reason
    return job.reason or ""


def _labels(job: Job) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(job.spec.labels.items()))


def jobs_table(
    jobs: Sequence[Job], now: datetime, *, wide: bool = False, width: int | None = None
) -> str:
    """``hodei jobs list``: times relative to ``now``; ``wide`` adds the other columns."""
    headers = ["ID", "STATE", "EXIT", "REASON", "AGE", "COMMAND"]
    if wide:
        headers += ["PROVIDER", "ATTEMPT", "WORKER", "STARTED", "FINISHED", "LABELS"]
    rows = []
    for job in jobs:
        row = [
            job.id,
            job.state.value,
            run_exit_text(job),
            " ".join(reason_text(job).split()),
            age(job.created_at, now),
            command_text(job),
        ]
        if wide:
            row += [
                job.provider or "-",
                str(job.attempt),
                job.worker_id or "-",
                age(job.started_at, now),
                age(job.finished_at, now),
                _labels(job) or "-",
            ]
        rows.append(row)
    return table(headers, rows, width=width, flexible=("REASON", "COMMAND", "LABELS"))


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


def workers_table(
    workers: Sequence[WorkerRecord], now: datetime, *, width: int | None = None
) -> str:
    """``hodei workers list``: times relative to ``now``."""
    rows = [
        [
            w.id,
            w.job_id,
            w.provider,
            w.state.value,
            w.name or "",
            age(w.created_at, now),
            " ".join((f"{w.reason}: {w.message}" if w.reason else (w.message or "")).split()),
        ]
        for w in workers
    ]
    headers = ["ID", "JOB", "PROVIDER", "STATE", "PROCESS/POD", "AGE", "DETAIL"]
    return table(headers, rows, width=width, flexible=("DETAIL", "PROCESS/POD"))

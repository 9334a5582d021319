"""``/api/v1``: jobs, their logs and workers as JSON, for the console and for scripts.

Shapes (job and worker objects are exactly those of ``hodei … -o json``):

- ``GET /api/v1/jobs?state=S&label=K=V&limit=N&after=ID`` → ``{"items": [job…],
  "next": ID|null}``: newest first, at most ``limit`` jobs and about 4 MiB; ``state``
  and ``label`` repeat (a job must match one of the states and every label); ``next`` is
  the ``after`` of the following page.
- ``GET /api/v1/jobs/ID`` → job; ``POST /api/v1/jobs/ID/cancel`` → job after the request.
- ``GET /api/v1/jobs/ID/logs?after=SEQ&limit_bytes=N`` → ``{"chunks": [{"sequence",
  "stream", "data"}], "next": SEQ, "more": bool, "ended": bool}``: chunks after ``SEQ``
  in order, ``data`` base64 (output is bytes, not always UTF-8); ``more`` says stored
  chunks remain past this page; ``ended`` that the job has finished (once ``ended`` and
  not ``more``, the log is complete).
- ``GET /api/v1/jobs/ID/logs/raw`` → the whole log as stored, both streams in order.
- ``GET /api/v1/workers?active=1&job=ID`` → ``{"items": [worker…]}``, newest first;
  ``active`` keeps workers that may still exist, ``job`` those of one job.

Errors are ``{"error": "…"}`` with 400 (a parameter, named, and what it accepts), 401,
404. Everything is pure translation: the job book, controller and store do the work.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from hodei.api import shapes
from hodei.api.convert import MAX_PAGE_BYTES
from hodei.domain.ids import JobId
from hodei.domain.jobs import Job
from hodei.domain.states import JobState
from hodei.server.controller import JobController
from hodei.server.jobs import JobBook
from hodei.store.base import LogStore, WorkerStore

__all__ = ["ApiError", "ConsoleApi", "parse_job_query"]

DEFAULT_PAGE = 50
MAX_PAGE = 500
DEFAULT_LOG_BYTES = 256 * 1024
MAX_LOG_BYTES = 4 * 1024 * 1024
_LOG_READ_CHUNKS = 256


class ApiError(web.HTTPException):
    """An HTTP error whose body is ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        self.status_code = status
        super().__init__(
            text=web.json_response({"error": message}).text, content_type="application/json"
        )


def _int(query: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise ApiError(400, f"{name}: {raw!r} is not accepted; give a whole number {lo}..{hi}")
    return value


def parse_job_query(states: list[str], labels: list[str]) -> tuple[list[JobState], dict[str, str]]:
    """``state`` values (any case) and ``label`` ``K=V`` selectors; raises ApiError(400)."""
    accepted = ", ".join(s.value for s in JobState)
    parsed_states = []
    for raw in states:
        try:
            parsed_states.append(JobState(raw.upper()))
        except ValueError:
            message = f"state: {raw!r} is not a job state; accepted: {accepted}"
            raise ApiError(400, message) from None
    selector: dict[str, str] = {}
    for raw in labels:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise ApiError(400, f"label: {raw!r} is not a selector; give KEY=VALUE")
        selector[key] = value
    return parsed_states, selector


class ConsoleApi:
    """The ``/api/v1`` handlers over the control plane's job book, controller and store."""

    def __init__(
        self, *, jobs: JobBook, controller: JobController, logs: LogStore, workers: WorkerStore
    ) -> None:
        self._jobs = jobs
        self._controller = controller
        self._logs = logs
        self._workers = workers

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/jobs", self.list_jobs),
            web.get("/api/v1/jobs/{id}", self.get_job),
            web.post("/api/v1/jobs/{id}/cancel", self.cancel_job),
            web.get("/api/v1/jobs/{id}/logs", self.logs),
            web.get("/api/v1/jobs/{id}/logs/raw", self.raw_logs),
            web.get("/api/v1/workers", self.list_workers),
        ]

    @staticmethod
    def _dict(job: Job) -> dict[str, Any]:
        return shapes.job_dict(job)

    async def _job(self, request: web.Request) -> Job:
        job_id = request.match_info["id"]
        job = await self._jobs.get(JobId(job_id))
        if job is None:
            raise ApiError(404, f"job {job_id!r} not found")
        return job

    async def list_jobs(self, request: web.Request) -> web.Response:
        query = request.query
        states, labels = parse_job_query(query.getall("state", []), query.getall("label", []))
        limit = _int(query, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        after = query.get("after") or None
        # One more than asked tells whether a next page exists without a count query.
        page = await self._jobs.list(
            states=states, labels=labels, limit=limit + 1, after=JobId(after) if after else None
        )
        items: list[dict[str, Any]] = []
        size = 0
        for job in page[:limit]:
            item = self._dict(job)
            # Bounded in bytes as ListJobs is, so no job can make the listing huge.
            item_size = len(json.dumps(item))
            if items and size + item_size > MAX_PAGE_BYTES:
                break
            items.append(item)
            size += item_size
        more = len(page) > len(items)
        return web.json_response({"items": items, "next": items[-1]["id"] if more else None})

    async def get_job(self, request: web.Request) -> web.Response:
        return web.json_response(self._dict(await self._job(request)))

    async def cancel_job(self, request: web.Request) -> web.Response:
        job = await self._job(request)
        cancelled = await self._controller.cancel(job.id)
        return web.json_response(self._dict(cancelled or job))

    async def logs(self, request: web.Request) -> web.Response:
        job = await self._job(request)
        after = _int(request.query, "after", 0, 0, 2**62)
        budget = _int(request.query, "limit_bytes", DEFAULT_LOG_BYTES, 1, MAX_LOG_BYTES)
        # Read the job's state first: a chunk stored after this read is still returned,
        # so "ended and not more" can never hide a last chunk.
        current = await self._jobs.get(job.id)
        ended = current is None or current.state.terminal
        chunks: list[dict[str, Any]] = []
        more = False
        while True:
            page = await self._logs.read_logs(job.id, after=after, limit=_LOG_READ_CHUNKS)
            for chunk in page:
                if chunks and budget < len(chunk.data):
                    more = True
                    break
                budget -= len(chunk.data)
                after = chunk.sequence
                chunks.append(
                    {
                        "sequence": chunk.sequence,
                        "stream": chunk.stream.value.lower(),
                        "data": base64.b64encode(chunk.data).decode("ascii"),
                    }
                )
            if more or len(page) < _LOG_READ_CHUNKS:
                break
        return web.json_response({"chunks": chunks, "next": after, "more": more, "ended": ended})

    async def raw_logs(self, request: web.Request) -> web.StreamResponse:
        job = await self._job(request)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/plain; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{job.id}.log"',
            }
        )
        await response.prepare(request)
        after = 0
        while page := await self._logs.read_logs(job.id, after=after, limit=_LOG_READ_CHUNKS):
            for chunk in page:
                await response.write(chunk.data)
            after = page[-1].sequence
        await response.write_eof()
        return response

    async def list_workers(self, request: web.Request) -> web.Response:
        active = request.query.get("active", "") in ("1", "true")
        job = request.query.get("job")
        workers = await self._workers.list_workers(active_only=active)
        workers.reverse()  # newest first, as jobs
        if job:
            workers = [w for w in workers if w.job_id == job]
        return web.json_response({"items": [shapes.worker_dict(w) for w in workers]})

"""Embedded runs kept in the default store, and ``hodei jobs`` reading that store directly.

Without ``HODEI_SERVER``, ``hodei run`` starts a control plane of its own whose store is
a temporary file: several runs may go at once, and a control plane recovers every
unfinished job of its store, so two runs must never share one. A run that has ended is
copied (job and output) into the default store, the one ``HODEI_DATABASE_URL`` names or,
unset, ``hodei.db`` in the user's data directory; ``hodei jobs list/show/logs/wait``
without ``HODEI_SERVER`` read that store in place, as ``podman ps -a`` works without a
daemon. A job of the default store that has not ended belongs to a ``hodei server``
using the same file: following it needs that server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from hodei.cli.client import ClientError
from hodei.config import SettingsError
from hodei.config.settings import load_database_url
from hodei.domain.ids import JobId
from hodei.domain.jobs import Job
from hodei.domain.logs import LogChunk
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerRecord
from hodei.store.base import JobStore, LogStore, Store, StoreError
from hodei.store.url import default_database_path, store_from_url

__all__ = ["Archive", "HistoryReader", "history_store", "record_jobs"]

_PAGE = 1000  # log chunks per read while copying


class Archive(JobStore, LogStore, Protocol):
    """The slices of a store that hold jobs and their output."""


def history_store(env: Mapping[str, str]) -> tuple[Store, str] | None:
    """The (unopened) default store and where it is, or None when it keeps nothing
    across runs (``memory://``). Raises :class:`SettingsError` for a bad URL."""
    url = load_database_url(env)
    if url in ("memory://", "sqlite://:memory:"):
        return None
    try:
        store = store_from_url(url)
    except ValueError as exc:
        raise SettingsError("HODEI_DATABASE_URL", url or "", str(exc)) from None
    where = str(default_database_path()) if url is None else url
    return store, where


async def record_jobs(source: Archive, target: Archive) -> int:
    """Copy every finished job of ``source``, with its output, into ``target``; the count."""
    copied = 0
    for job in await source.list_jobs(oldest_first=True):
        if not job.state.terminal:
            continue  # its owner is gone mid-run: nothing true to record
        after = 0
        while chunks := await source.read_logs(job.id, after=after, limit=_PAGE):
            await target.append_logs(chunks)
            after = chunks[-1].sequence
        await target.save_job(job)  # after its output: a listed job has all of it
        copied += 1
    return copied


class HistoryReader:
    """What ``hodei jobs`` asks of a control plane, answered from the store itself.

    Offers the reading half of :class:`~hodei.cli.client.HodeiClient`; what needs a live
    control plane (cancel, following an unfinished job) fails with a :class:`ClientError`
    that says to set ``HODEI_SERVER``.
    """

    def __init__(self, store: Store, where: str) -> None:
        self._store = store
        self.address = where

    async def __aenter__(self) -> HistoryReader:
        try:
            await self._store.open()
        except StoreError as exc:
            message = f"cannot read the job store {self.address}: {exc}"
            raise ClientError("UNAVAILABLE", message) from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._store.close()

    def _needs_server(self, job: Job, what: str) -> ClientError:
        return ClientError(
            "FAILED_PRECONDITION",
            f"job {job.id} is {job.state.value}: {what} needs the control plane that runs "
            "it; set HODEI_SERVER (without it, jobs are read from the store "
            f"{self.address})",
        )

    async def get(self, job_id: str) -> Job:
        job = await self._store.get_job(JobId(job_id))
        if job is None:
            raise ClientError("NOT_FOUND", f"job {job_id!r} not found in {self.address}")
        return job

    async def list_jobs(
        self,
        states: Sequence[JobState] = (),
        limit: int = 0,
        labels: Mapping[str, str] | None = None,
    ) -> list[Job]:
        return await self._store.list_jobs(
            states=states or None, labels=labels or None, limit=limit or None
        )

    async def list_workers(self) -> list[WorkerRecord]:
        return await self._store.list_workers(active_only=True)

    async def cancel(self, job_id: str) -> Job:
        job = await self.get(job_id)
        if job.state.terminal:
            return job
        raise self._needs_server(job, "cancelling it")

    async def logs(
        self, job_id: str, *, follow: bool = False, from_sequence: int = 0
    ) -> AsyncIterator[LogChunk]:
        job = await self.get(job_id)
        if follow and not job.state.terminal:
            raise self._needs_server(job, "following its output")
        after = max(from_sequence - 1, 0)
        while chunks := await self._store.read_logs(job.id, after=after, limit=_PAGE):
            for chunk in chunks:
                yield chunk
            after = chunks[-1].sequence

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        job = await self.get(job_id)
        if not job.state.terminal:
            raise self._needs_server(job, "waiting for it")
        yield job

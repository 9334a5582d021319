"""The SQLite store (the default), using the standard library driver on one thread.

SQLite connections are blocking, so every statement runs on a single dedicated thread
and the event loop awaits it; one thread also serialises writers, which SQLite needs
anyway. Handing work to that thread and the result back costs several times what a
small statement does (a future, a thread wake-up, a cross-thread callback and a GIL
handoff), and a job makes about twenty store calls, so calls that arrive while the
thread is busy, or in the same loop iteration, share one hop: they queue, one drain on
the thread runs them in order, each as its own statement or transaction as if alone,
and one callback hands all their results back. The database runs in WAL mode with
``synchronous=NORMAL``: a committed write survives the control plane being killed (the
durability log acknowledgements promise), and readers never block the writer. Log chunks
are written one batch per transaction, which keeps a 100 MB job far below the disk's
bandwidth in overhead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Job
from hodei.domain.logs import LogChunk, LogStream
from hodei.domain.reasons import Reason
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerPhase, WorkerRecord
from hodei.store.base import StoreError, TokenKind, TokenRecord
from hodei.store.codec import job_from_json, job_to_json

T = TypeVar("T")

# A queued store call: what to run on the store's thread, and the awaiting caller's future.
_Call = tuple[Callable[[sqlite3.Connection], object], asyncio.Future[Any]]
# What running a call gave: its future, and the exception it raised or None with its value.
_Outcome = tuple[asyncio.Future[Any], BaseException | None, object]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS workers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL,
    name TEXT,
    registered_at TEXT,
    reason TEXT,
    message TEXT,
    log_offset INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS workers_state ON workers (state);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    expires_at TEXT,
    used INTEGER NOT NULL DEFAULT 0
);
-- A rowid table: chunks are large rows, which SQLite stores best outside the index.
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    stream TEXT NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (job_id, sequence)
);
"""

_WORKER_COLUMNS = (
    "id, job_id, provider, attempt, created_at, state, name, registered_at, reason, message, "
    "log_offset"
)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _worker_from_row(row: tuple[object, ...]) -> WorkerRecord:
    id_, job_id, provider, attempt, created, state, name, registered, reason, message, offset = row
    created_at = _parse_time(str(created))
    assert created_at is not None
    return WorkerRecord(
        id=WorkerId(str(id_)),
        job_id=JobId(str(job_id)),
        provider=str(provider),
        attempt=int(str(attempt)),
        created_at=created_at,
        state=WorkerPhase(str(state)),
        name=None if name is None else str(name),
        registered_at=_parse_time(None if registered is None else str(registered)),
        reason=None if reason is None else Reason(str(reason)),
        message=None if message is None else str(message),
        log_offset=int(str(offset)),
    )


def fault_kind(error: sqlite3.Error) -> str:
    """What kind of fault a SQLite error is, from its result code (SQLite's "Result and
    Error Codes"): ``disk full`` (SQLITE_FULL), ``I/O error`` (SQLITE_IOERR_*),
    ``locked`` (SQLITE_BUSY/SQLITE_LOCKED past the busy timeout), else ``error``."""
    name = getattr(error, "sqlite_errorname", "") or ""
    if name == "SQLITE_FULL":
        return "disk full"
    if name.startswith("SQLITE_IOERR"):
        return "I/O error"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "locked"
    return "error"


class SqliteStore:
    """:class:`hodei.store.base.Store` on a SQLite file (or ``:memory:``)."""

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        # Calls waiting for the store's thread, and whether a drain is scheduled or running
        # that will look at them. Both are shared by the loop and the store's thread, so
        # they are read and changed only under the lock (see _drain for why that is enough).
        self._lock = threading.Lock()
        self._queue: list[_Call] = []
        self._draining = False
        self._hops = 0

    @property
    def path(self) -> str:
        return self._path

    @property
    def hops(self) -> int:
        """How many times work has been handed to the store's thread since the store was
        created (each hop runs one or more queued calls); a diagnostic figure."""
        return self._hops

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the store's thread after every call made before it.

        Raises :class:`StoreError` (kind ``closed`` when the store is not open, else the
        :func:`fault_kind` of the ``sqlite3.Error`` that ``fn`` raised)."""
        if self._executor is None or self._db is None:
            raise StoreError("store is not open", kind="closed")
        try:
            return await self._enqueue(self._executor, self._db, fn)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self._path}: {exc}", kind=fault_kind(exc)) from exc

    def _enqueue(
        self,
        executor: ThreadPoolExecutor,
        db: sqlite3.Connection,
        fn: Callable[[sqlite3.Connection], T],
    ) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._queue.append((fn, future))
            start, self._draining = not self._draining, True
        if start:
            # The drain starts from the loop's next iteration, not now: every call the
            # rest of this iteration makes (a burst of requests handled together) then
            # joins the same hop instead of racing a drain that has already begun.
            loop.call_soon(self._start_drain, executor, db)
        return future

    def _start_drain(self, executor: ThreadPoolExecutor, db: sqlite3.Connection) -> None:
        self._hops += 1
        try:
            executor.submit(self._drain, db)
        except RuntimeError as exc:  # the interpreter is exiting: no thread will run them
            with self._lock:
                stranded, self._queue, self._draining = self._queue, [], False
            error = StoreError(f"SQLite store {self._path}: {exc}", kind="closed")
            self._settle([(future, error, None) for _, future in stranded])

    def _drain(self, db: sqlite3.Connection) -> None:
        """On the store's thread: run queued calls, batch after batch, until none is left.

        The lock makes "the queue is empty, so this drain ends" one step with clearing
        ``_draining``: a call queued before that step is in the batch the drain takes,
        and one queued after it sees ``_draining`` false and starts a new drain. Either
        way no call is left in the queue with no drain coming for it."""
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._draining = False
                    return
            outcomes: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            for fn, future in batch:
                # A caller cancelled before its turn is not run, as a call still waiting
                # in an executor's queue is not. Reading the flag from this thread is safe:
                # a cancel just after it only means the result is dropped in _settle.
                if future.cancelled():
                    continue
                outcome: _Outcome
                try:
                    outcome = (future, None, fn(db))
                except BaseException as exc:  # delivered to its caller, as an executor does
                    outcome = (future, exc, None)
                outcomes.setdefault(future.get_loop(), []).append(outcome)
            for loop, results in outcomes.items():
                # A closed loop raises RuntimeError: nobody is awaiting these calls any more.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._settle, results)

    @staticmethod
    def _settle(outcomes: list[_Outcome]) -> None:
        """On the loop: hand each call its result, skipping callers that gave up."""
        for future, error, value in outcomes:
            if future.cancelled():
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hodei-sqlite")
        try:
            self._db = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._connect
            )
        except (sqlite3.Error, OSError) as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise StoreError(f"cannot open SQLite store {self._path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Created owner-only (0600) before SQLite opens it: it holds job env values and
            # logs. SQLite gives its -wal and -shm files the database file's permissions.
            os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
        db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        return db

    async def close(self) -> None:
        if self._executor is None or self._db is None:
            return
        db, executor = self._db, self._executor
        self._db = self._executor = None  # calls from now on are refused as "closed"
        # Closing is queued like any call, so every call made before it runs first.
        await self._enqueue(executor, db, lambda db: db.close())
        executor.shutdown(wait=True)

    async def ping(self) -> None:
        """A real (tiny) write: a full disk or a held lock lets reads through, and
        readiness must mean that the store can take the next job."""
        await self._run(
            lambda db: db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('ping', '1')")
        )

    async def get_meta(self, key: str) -> str | None:
        def read(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(read)

    async def set_meta_default(self, key: str, value: str) -> str:
        def write(db: sqlite3.Connection) -> str:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            return str(db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

        return await self._run(write)

    async def save_job(self, job: Job) -> None:
        doc = job_to_json(job)
        await self._run(
            lambda db: db.execute(
                "INSERT INTO jobs (id, state, doc) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET state = excluded.state, doc = excluded.doc",
                (job.id, job.state.value, doc),
            )
        )

    async def get_job(self, job_id: JobId) -> Job | None:
        row = await self._run(
            lambda db: db.execute("SELECT doc FROM jobs WHERE id = ?", (job_id,)).fetchone()
        )
        return None if row is None else job_from_json(row[0])

    async def list_jobs(
        self,
        *,
        states: Collection[JobState] | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
        after: JobId | None = None,
    ) -> list[Job]:
        where: list[str] = []
        params: list[object] = []
        if states is not None:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            params.extend(s.value for s in states)
        for key, value in (labels or {}).items():
            # json_extract's path syntax needs the key quoted: label keys hold '.' and '/'.
            where.append("json_extract(doc, ?) = ?")
            params.extend((f'$.spec.labels."{key}"', value))
        if after is not None:
            compare = ">" if oldest_first else "<"
            where.append(f"seq {compare} (SELECT seq FROM jobs WHERE id = ?)")
            params.append(after)
        sql = "SELECT doc FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq " + ("ASC" if oldest_first else "DESC")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = await self._run(lambda db: db.execute(sql, params).fetchall())
        return [job_from_json(row[0]) for row in rows]

    async def count_jobs(self) -> dict[JobState, int]:
        rows = await self._run(
            lambda db: db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        )
        return {JobState(state): int(n) for state, n in rows}

    async def save_worker(self, record: WorkerRecord) -> None:
        values = (
            record.id,
            record.job_id,
            record.provider,
            record.attempt,
            _time(record.created_at),
            record.state.value,
            record.name,
            _time(record.registered_at),
            record.reason,
            record.message,
            record.log_offset,
        )
        await self._run(
            lambda db: db.execute(
                f"INSERT INTO workers ({_WORKER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (id) DO UPDATE SET state = excluded.state, name = excluded.name, "
                "registered_at = excluded.registered_at, reason = excluded.reason, "
                "message = excluded.message",
                values,
            )
        )

    async def get_worker(self, worker_id: WorkerId) -> WorkerRecord | None:
        row = await self._run(
            lambda db: db.execute(
                f"SELECT {_WORKER_COLUMNS} FROM workers WHERE id = ?", (worker_id,)
            ).fetchone()
        )
        return None if row is None else _worker_from_row(row)

    async def list_workers(self, *, active_only: bool = False) -> list[WorkerRecord]:
        where = " WHERE state IN ('PENDING', 'RUNNING')" if active_only else ""
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {_WORKER_COLUMNS} FROM workers{where} ORDER BY seq"
            ).fetchall()
        )
        return [_worker_from_row(row) for row in rows]

    async def add_token(self, record: TokenRecord) -> None:
        values = (
            record.token_hash,
            record.worker_id,
            record.kind.value,
            _time(record.expires_at),
            int(record.used),
        )
        await self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO tokens (token_hash, worker_id, kind, expires_at, used) "
                "VALUES (?, ?, ?, ?, ?)",
                values,
            )
        )

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT token_hash, worker_id, kind, expires_at, used FROM tokens "
                "WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        )
        if row is None:
            return None
        return TokenRecord(
            token_hash=row[0],
            worker_id=WorkerId(row[1]),
            kind=TokenKind(row[2]),
            expires_at=_parse_time(row[3]),
            used=bool(row[4]),
        )

    async def use_token(self, token_hash: str) -> bool:
        cursor = await self._run(
            lambda db: db.execute(
                "UPDATE tokens SET used = 1 WHERE token_hash = ? AND used = 0", (token_hash,)
            )
        )
        return cursor.rowcount == 1

    async def append_logs(self, chunks: Sequence[LogChunk]) -> None:
        rows = [(c.job_id, c.sequence, c.stream.value, c.data) for c in chunks]

        def write(db: sqlite3.Connection) -> None:
            with db:  # one transaction per batch
                db.execute("BEGIN")
                db.executemany(
                    "INSERT OR IGNORE INTO logs (job_id, sequence, stream, data) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )

        if rows:
            await self._run(write)

    async def read_logs(
        self, job_id: JobId, *, after: int = 0, limit: int = 1000
    ) -> list[LogChunk]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT sequence, stream, data FROM logs WHERE job_id = ? AND sequence > ? "
                "ORDER BY sequence LIMIT ?",
                (job_id, after, limit),
            ).fetchall()
        )
        return [LogChunk(job_id, int(s), LogStream(st), bytes(d)) for s, st, d in rows]

    async def last_log_sequence(self, job_id: JobId) -> int:
        row = await self._run(
            lambda db: db.execute(
                "SELECT MAX(sequence) FROM logs WHERE job_id = ?", (job_id,)
            ).fetchone()
        )
        return int(row[0] or 0)

    async def count_logs(self, job_id: JobId, *, up_to: int) -> int:
        row = await self._run(
            lambda db: db.execute(
                "SELECT COUNT(*) FROM logs WHERE job_id = ? AND sequence <= ?", (job_id, up_to)
            ).fetchone()
        )
        return int(row[0])

"""The worker book: worker records, their credentials and their live connections.

A worker is created for one attempt of one job with a one-time token; its agent trades
that token for a resume token at registration and may reconnect once with it after a
broken stream (each reconnect hands out the next resume token). A worker has at most one
stream: while one is alive (or a registration is in progress) another is refused, so a
live session cannot be taken over. While an agent is connected the book holds its outbox
(how CancelJob reaches it); when it disconnects the time is noted so the supervisor can
declare it lost after the grace period.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from hodei.api.messages import Register, ServerMessage
from hodei.domain.clock import SYSTEM_CLOCK, Clock
from hodei.domain.ids import WorkerId, new_worker_id
from hodei.domain.jobs import Job
from hodei.domain.workers import WorkerRecord
from hodei.server.auth import TokenCheck, check_token, hash_token, new_secret
from hodei.store.base import TokenKind, TokenRecord, TokenStore, WorkerStore

Outbox = asyncio.Queue[ServerMessage | None]


class AuthError(Exception):
    """A worker that may not connect; ``code`` is the gRPC status to end the stream with."""

    def __init__(self, message: str, *, permission: bool = False, code: str = "") -> None:
        super().__init__(message)
        self.code = code or ("PERMISSION_DENIED" if permission else "UNAUTHENTICATED")


@dataclass(frozen=True)
class Candidate:
    """A Register whose token checked out; nothing consumed yet."""

    record: WorkerRecord
    kind: TokenKind
    digest: str


@dataclass(frozen=True)
class Admission:
    record: WorkerRecord
    resume_token: str
    first: bool  # registered with the one-time token (not a reconnect)


class WorkerBook:
    """Worker records (active ones in memory), tokens and connected agents."""

    def __init__(
        self,
        records: WorkerStore,
        tokens: TokenStore,
        *,
        token_ttl: timedelta,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self._store = records
        self._tokens = tokens
        self._token_ttl = token_ttl
        self._records: dict[WorkerId, WorkerRecord] = {}
        self._outboxes: dict[WorkerId, Outbox] = {}
        self._disconnected: dict[WorkerId, datetime] = {}
        self._gone: dict[WorkerId, asyncio.Event] = {}
        self._admitting: set[WorkerId] = set()  # registrations between check and connect

    async def load(self) -> list[WorkerRecord]:
        records = await self._store.list_workers(active_only=True)
        self._records = {r.id: r for r in records}
        return records

    async def create(self, job: Job, *, provider: str, log_offset: int) -> tuple[WorkerRecord, str]:
        """A new worker record for the job's next attempt and its one-time token."""
        record = WorkerRecord(
            id=new_worker_id(),
            job_id=job.id,
            provider=provider,
            attempt=job.attempt + 1,
            created_at=self._clock.now(),
            log_offset=log_offset,
        )
        token = new_secret()
        await self._store.save_worker(record)
        await self._tokens.add_token(
            TokenRecord(
                hash_token(token),
                record.id,
                TokenKind.REGISTER,
                self._clock.now() + self._token_ttl,
            )
        )
        self._records[record.id] = record
        return record, token

    def get(self, worker_id: WorkerId) -> WorkerRecord | None:
        return self._records.get(worker_id)

    async def fetch(self, worker_id: WorkerId) -> WorkerRecord | None:
        record = self._records.get(worker_id)
        return record if record is not None else await self._store.get_worker(worker_id)

    async def save(self, record: WorkerRecord) -> WorkerRecord:
        await self._store.save_worker(record)
        if record.active:
            self._records[record.id] = record
        else:
            self._records.pop(record.id, None)
            self._disconnected.pop(record.id, None)
        return record

    def active(self) -> list[WorkerRecord]:
        return list(self._records.values())

    def active_counts(self) -> Counter[str]:
        """Workers that still count against each provider's capacity."""
        return Counter(record.provider for record in self._records.values())

    def counts_by_state(self) -> dict[tuple[str, str], int]:
        return dict(Counter((r.provider, r.state.value) for r in self._records.values()))

    async def check(self, register: Register) -> Candidate:
        """Check a Register message's credentials, consuming nothing; raises :class:`AuthError`."""
        now = self._clock.now()
        if register.token:
            kind, secret = TokenKind.REGISTER, register.token
        elif register.resume_token:
            kind, secret = TokenKind.RESUME, register.resume_token
        else:
            raise AuthError("Register carries neither a token nor a resume token")
        digest = hash_token(secret)
        check = check_token(
            await self._tokens.get_token(digest), worker_id=register.worker_id, kind=kind, now=now
        )
        if check is not TokenCheck.OK:
            raise AuthError(
                f"{kind.value} token rejected: {check.value}", permission=check.permission
            )
        record = await self.fetch(register.worker_id)
        if record is None or not record.active:
            raise AuthError(f"worker {register.worker_id} is no longer wanted", permission=True)
        return Candidate(record, kind, digest)

    def reserve(self, worker_id: WorkerId) -> None:
        """Claim the worker for one registration until :meth:`connect` or :meth:`release`.

        A worker whose agent has a live stream (or another registration in progress) is
        refused with ``ALREADY_EXISTS``: a live session cannot be taken over.
        """
        if worker_id in self._outboxes or worker_id in self._admitting:
            raise AuthError(
                f"worker {worker_id} already has a live stream; a second one is refused "
                "(a resume is accepted once that stream has ended)",
                code="ALREADY_EXISTS",
            )
        self._admitting.add(worker_id)

    async def admit(self, candidate: Candidate) -> Admission:
        """Consume the candidate's token and hand out the next resume token (each resume
        token is good for one reconnect of the same worker). Raises :class:`AuthError`
        when the token was used meanwhile."""
        record = candidate.record
        if not await self._tokens.use_token(candidate.digest):
            self.release(record.id)
            raise AuthError(f"{candidate.kind.value} token rejected: already used")
        resume = new_secret()
        await self._tokens.add_token(
            TokenRecord(hash_token(resume), record.id, TokenKind.RESUME, None)
        )
        return Admission(record, resume, first=candidate.kind is TokenKind.REGISTER)

    def release(self, worker_id: WorkerId) -> None:
        """End a reservation made by :meth:`reserve` that did not lead to :meth:`connect`."""
        self._admitting.discard(worker_id)

    def connect(self, worker_id: WorkerId, outbox: Outbox) -> None:
        """Make ``outbox`` the worker's channel (after :meth:`admit`)."""
        self._admitting.discard(worker_id)
        self._outboxes[worker_id] = outbox
        self._disconnected.pop(worker_id, None)

    def disconnect(self, worker_id: WorkerId, outbox: Outbox) -> None:
        if self._outboxes.get(worker_id) is not outbox:
            return  # a newer connection replaced this one
        del self._outboxes[worker_id]
        if worker_id in self._records:
            self._disconnected[worker_id] = self._clock.now()
        event = self._gone.pop(worker_id, None)
        if event is not None:
            event.set()

    def mark_disconnected(self, worker_id: WorkerId, since: datetime) -> None:
        """Start the reconnect grace period for a worker not connected (after a restart)."""
        if worker_id not in self._outboxes:
            self._disconnected[worker_id] = since

    def disconnected(self) -> dict[WorkerId, datetime]:
        return dict(self._disconnected)

    def send(self, worker_id: WorkerId, message: ServerMessage) -> bool:
        """Queue a message to the connected agent; False when it is not connected."""
        outbox = self._outboxes.get(worker_id)
        if outbox is None:
            return False
        outbox.put_nowait(message)
        return True

    def connected(self, worker_id: WorkerId) -> bool:
        return worker_id in self._outboxes

    def backlog(self, worker_id: WorkerId) -> int:
        """Messages queued for the agent and not yet written to its stream."""
        outbox = self._outboxes.get(worker_id)
        return 0 if outbox is None else outbox.qsize()

    async def wait_disconnected(self, worker_id: WorkerId) -> None:
        """Return once the agent's stream has ended (at once if it is not connected)."""
        if worker_id not in self._outboxes:
            return
        await self._gone.setdefault(worker_id, asyncio.Event()).wait()

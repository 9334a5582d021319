"""Pure decisions of the control plane: tokens, listening, results, statuses, retries,
cancel, backstops and the dispatch plan."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Attempt, Job, JobSpec
from hodei.domain.reasons import Failure, Reason, StartFailure
from hodei.domain.states import JobState
from hodei.providers.base import ANYWHERE, Origin, WorkerPhase, WorkerStatus
from hodei.server import lifecycle
from hodei.server.auth import (
    ListenError,
    OriginCheck,
    TokenCheck,
    bearer_ok,
    check_listen_address,
    check_origin,
    check_token,
    hash_token,
    is_loopback_host,
    new_secret,
    peer_ip,
)
from hodei.server.scheduler import plan_dispatch
from hodei.store.base import TokenKind, TokenRecord

NOW = datetime(2026, 1, 1, tzinfo=UTC)
W1 = WorkerId("w-1")


def test_secrets_are_fresh_and_hashed_with_sha256() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and len(a) >= 43
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def record(**changes: Any) -> TokenRecord:
    base = dict(
        token_hash="h",
        worker_id=W1,
        kind=TokenKind.REGISTER,
        expires_at=NOW + timedelta(minutes=10),
    )
    return TokenRecord(**{**base, **changes})


@pytest.mark.parametrize(
    ("token", "worker", "kind", "now", "expected"),
    [
        (record(), W1, TokenKind.REGISTER, NOW, TokenCheck.OK),
        (None, W1, TokenKind.REGISTER, NOW, TokenCheck.UNKNOWN),
        (record(used=True), W1, TokenKind.REGISTER, NOW, TokenCheck.USED),
        (record(), W1, TokenKind.REGISTER, NOW + timedelta(minutes=10), TokenCheck.EXPIRED),
        (record(), WorkerId("w-2"), TokenKind.REGISTER, NOW, TokenCheck.FOREIGN),
        (record(), W1, TokenKind.RESUME, NOW, TokenCheck.WRONG_KIND),
        (
            record(kind=TokenKind.RESUME, expires_at=None),
            W1,
            TokenKind.RESUME,
            NOW + timedelta(days=9),
            TokenCheck.OK,
        ),
    ],
)
def test_check_token(
    token: TokenRecord | None,
    worker: WorkerId,
    kind: TokenKind,
    now: datetime,
    expected: TokenCheck,
) -> None:
    assert check_token(token, worker_id=worker, kind=kind, now=now) is expected


def test_only_foreign_tokens_are_permission_errors() -> None:
    assert [c for c in TokenCheck if c.permission] == [TokenCheck.FOREIGN]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "[::1]", "::1"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]", "10.0.0.1", "example.com", ""])
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback_host(host)


def _listen(address: str, *, tls: bool, authenticated: bool, insecure: bool = False) -> None:
    check_listen_address(
        address,
        variable="HODEI_GRPC_ADDRESS",
        tls=tls,
        authenticated=authenticated,
        insecure=insecure,
    )


def test_loopback_needs_neither_tls_nor_authentication() -> None:
    _listen("127.0.0.1:50051", tls=False, authenticated=False)
    _listen("[::1]:50051", tls=False, authenticated=False)
    _listen("localhost:50051", tls=False, authenticated=False)


def test_beyond_loopback_needs_tls_and_authentication_unless_insecure() -> None:
    _listen("0.0.0.0:50051", tls=True, authenticated=True)
    _listen("0.0.0.0:50051", tls=False, authenticated=False, insecure=True)
    with pytest.raises(
        ListenError,
        match=r"HODEI_GRPC_ADDRESS=0\.0\.0\.0:50051 without TLS.*HODEI_TLS_CERT_FILE.*"
        r"HODEI_GRPC_ADDRESS=127\.0\.0\.1:50051.*HODEI_INSECURE=1",
    ):
        _listen("0.0.0.0:50051", tls=False, authenticated=True)
    with pytest.raises(
        ListenError,
        match=r"without authentication.*HODEI_API_TOKEN.*HODEI_TLS_CLIENT_CA_FILE.*HODEI_INSECURE",
    ):
        _listen("10.0.0.5:50051", tls=True, authenticated=False)


def test_bearer_metadata() -> None:
    assert bearer_ok([("authorization", "Bearer t")], "t")
    assert bearer_ok([("Authorization", b"Bearer t")], "t")
    assert not bearer_ok([("authorization", "Bearer x")], "t")
    assert not bearer_ok([("authorization", "t")], "t")
    assert not bearer_ok(None, "t")


NOT_FOUND = StartFailure.COMMAND_NOT_FOUND
NOT_EXECUTABLE = StartFailure.NOT_EXECUTABLE
AGENT_ERROR = StartFailure.AGENT_ERROR


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (dict(exit_code=0), (JobState.SUCCEEDED, 0, None)),
        (dict(exit_code=3), (JobState.FAILED, 3, "NonZeroExit")),
        (dict(exit_code=137, timed_out=True), (JobState.TIMED_OUT, 137, "DeadlineExceeded")),
        (dict(exit_code=143, cancelled=True), (JobState.CANCELLED, 143, "Cancelled")),
        (
            dict(exit_code=127, error="nope: command not found", start_failure=NOT_FOUND),
            (JobState.FAILED, 127, "CommandNotFound"),
        ),
        (  # the kind decides, not the words of the message
            dict(exit_code=0, error="x: not found? no: EACCES", start_failure=NOT_EXECUTABLE),
            (JobState.FAILED, 126, "StartError"),
        ),
        (
            dict(exit_code=0, error="No such file or directory", start_failure=AGENT_ERROR),
            (JobState.FAILED, 125, "StartError"),
        ),
        (  # an agent that sent no kind failed by itself
            dict(exit_code=0, error="[Errno 2] No such file or directory: 'nope'"),
            (JobState.FAILED, 125, "StartError"),
        ),
        (dict(exit_code=137, oom_killed=True), (JobState.FAILED, 137, "OOMKilled")),
        # a kill Hodei asked for stays what it was asked for
        (
            dict(exit_code=137, oom_killed=True, timed_out=True),
            (JobState.TIMED_OUT, 137, "DeadlineExceeded"),
        ),
        (
            dict(exit_code=137, oom_killed=True, cancelled=True),
            (JobState.CANCELLED, 137, "Cancelled"),
        ),
    ],
)
def test_outcome_of_result(result: dict[str, Any], expected: tuple[JobState, int, str]) -> None:
    args: dict[str, Any] = dict(exit_code=0, timed_out=False, cancelled=False, error="") | result
    outcome = lifecycle.outcome_of_result(**args)
    assert (outcome.state, outcome.exit_code, outcome.reason) == expected
    if outcome.reason == "NonZeroExit":
        assert outcome.message == "exit code 3"


def test_oom_message_names_the_jobs_limit() -> None:
    outcome = lifecycle.outcome_of_result(
        exit_code=137, timed_out=False, cancelled=False, error="", oom_killed=True,
        memory_limit="300Mi",
    )  # fmt: skip
    assert outcome.message == "the job was killed for exceeding its memory limit (limit 300Mi)"


def status(phase: WorkerPhase, **kw: Any) -> WorkerStatus:
    return WorkerStatus(W1, JobId("j-1"), phase, **kw)


def test_failure_of_status() -> None:
    assert (
        lifecycle.failure_of_status(status(WorkerPhase.PENDING, reason=Reason("Unschedulable")))
        is None
    )
    assert lifecycle.failure_of_status(status(WorkerPhase.RUNNING)) is None
    assert lifecycle.failure_of_status(
        status(WorkerPhase.FAILED, reason=Reason("ErrImagePull"), message="m")
    ) == Failure(Reason("ErrImagePull"), "m")
    assert lifecycle.failure_of_status(
        status(WorkerPhase.EXITED, reason=Reason("OOMKilled"), message="limit", exit_code=137)
    ) == Failure(Reason("OOMKilled"), "limit", 137)
    lost = lifecycle.failure_of_status(status(WorkerPhase.EXITED, exit_code=1))
    assert lost is not None and lost.reason == "WorkerLost" and "code 1" in lost.message
    assert lifecycle.failure_of_status(status(WorkerPhase.GONE)).reason == "WorkerLost"  # type: ignore[union-attr]


def test_waiting_reason_of_status() -> None:
    assert (
        lifecycle.waiting_reason_of_status(
            status(WorkerPhase.PENDING, reason=Reason("Unschedulable"), message="0/3 nodes")
        )
        == "Unschedulable: 0/3 nodes"
    )
    assert (
        lifecycle.waiting_reason_of_status(status(WorkerPhase.PENDING, message="pulling image"))
        == "pulling image"
    )
    assert (
        lifecycle.waiting_reason_of_status(status(WorkerPhase.PENDING))
        == "waiting for the worker to start"
    )
    assert lifecycle.waiting_reason_of_status(status(WorkerPhase.RUNNING)) is None


def job(
    state: JobState = JobState.RUNNING,
    *,
    attempt: int = 1,
    max_attempts: int = 1,
    timeout: float | None = None,
    started: datetime | None = NOW,
    provider: str = "local",
    n: int = 1,
) -> Job:
    spec = JobSpec(command=("x",), max_attempts=max_attempts, timeout_seconds=timeout)
    return Job(
        JobId(f"j-{n}"), spec, state, NOW, attempt=attempt, started_at=started, provider=provider
    )


def _retry(j: Job, reason: str, platform_retries: int = 2) -> bool:
    return lifecycle.should_retry(j, Failure(Reason(reason), ""), platform_retries=platform_retries)


def _disrupted(n: int) -> tuple[Attempt, ...]:
    return tuple(
        Attempt(i + 1, WorkerId(f"w-{i}"), Reason("Evicted"), "", NOW, True) for i in range(n)
    )


def test_provider_errors_use_the_jobs_own_attempts() -> None:
    assert _retry(job(attempt=1, max_attempts=2), "ProviderError")
    assert not _retry(job(attempt=2, max_attempts=2), "ProviderError")
    assert not _retry(job(attempt=1, max_attempts=5), "NonZeroExit")
    assert not _retry(job(attempt=1, max_attempts=5), "Unschedulable")


@pytest.mark.parametrize("reason", ["Evicted", "Preempted", "WorkerLost"])
def test_disruptions_are_retried_on_the_platform_budget_not_max_attempts(reason: str) -> None:
    # max_attempts=1 (the default) does not stop a disrupted job from running again.
    assert _retry(job(attempt=1, max_attempts=1), reason, platform_retries=2)
    two_lost = replace(job(attempt=3, max_attempts=1), attempts=_disrupted(2))
    assert not _retry(two_lost, reason, platform_retries=2)
    assert not _retry(job(attempt=1), reason, platform_retries=0)


def test_disrupted_attempts_do_not_use_up_max_attempts() -> None:
    # Two evictions, then attempt 3 fails to create its worker: the job's own first try.
    evicted_twice = replace(job(attempt=3, max_attempts=2), attempts=_disrupted(2))
    assert _retry(evicted_twice, "ProviderError")
    assert not _retry(replace(evicted_twice, attempt=4), "ProviderError")


def test_exhausted_disruption_says_the_platform_retries_ran_out() -> None:
    two_lost = replace(job(attempt=3), attempts=_disrupted(2))
    failure = lifecycle.retries_exhausted(
        two_lost,
        Failure(Reason("Evicted"), "EvictionByEvictionAPI: Eviction API: evicting"),
        platform_retries=2,
    )
    assert failure == Failure(
        Reason("Evicted"),
        "EvictionByEvictionAPI: Eviction API: evicting; not retried: 2 disrupted attempts "
        "before (HODEI_PLATFORM_RETRIES)",
    )
    plain = Failure(Reason("NonZeroExit"), "exit code 3")
    assert lifecycle.retries_exhausted(two_lost, plain, platform_retries=2) == plain


def test_ended_attempt_is_recorded_only_for_a_job_with_a_worker() -> None:
    running = replace(job(attempt=2), worker_id=WorkerId("w-9"), attempts=_disrupted(1))
    attempts = lifecycle.with_ended_attempt(
        running, reason=Reason("WorkerLost"), message="gone", at=NOW, disruption=True
    )
    assert attempts == (
        *_disrupted(1),
        Attempt(2, WorkerId("w-9"), Reason("WorkerLost"), "gone", NOW, True),
    )
    requeued = replace(running, worker_id=None)  # its attempt was recorded when it ended
    assert lifecycle.with_ended_attempt(
        requeued, reason=Reason("Cancelled"), message="", at=NOW
    ) == (_disrupted(1))


def test_termination_takes_the_providers_disruption_reason_when_it_has_one() -> None:
    evicted = WorkerStatus(
        WorkerId("w"), JobId("j"), WorkerPhase.FAILED, Reason("Evicted"), "Eviction API: evicting"
    )
    assert lifecycle.failure_of_termination(evicted) == Failure(
        Reason("Evicted"), "Eviction API: evicting"
    )
    running = WorkerStatus(WorkerId("w"), JobId("j"), WorkerPhase.RUNNING)
    for status in (running, None):
        failure = lifecycle.failure_of_termination(status)
        assert failure.reason == "WorkerLost"
        assert "SIGTERM that Hodei did not send" in failure.message


def test_backstop_due_only_past_timeout_plus_grace() -> None:
    grace = timedelta(seconds=30)
    running = job(timeout=10)
    assert not lifecycle.backstop_due(running, NOW + timedelta(seconds=39), grace=grace)
    assert lifecycle.backstop_due(running, NOW + timedelta(seconds=40), grace=grace)
    assert not lifecycle.backstop_due(job(timeout=None), NOW + timedelta(days=1))
    assert not lifecycle.backstop_due(job(JobState.STARTING, timeout=1), NOW + timedelta(days=1))
    outcome = lifecycle.backstop_outcome(running, grace=grace)
    assert (outcome.state, outcome.reason) == (JobState.TIMED_OUT, "DeadlineExceeded")


def test_backstop_of_timeouts_stored_before_specs_were_bounded_does_not_overflow() -> None:
    far = datetime.max.replace(tzinfo=UTC)
    for timeout in (1e300, float("inf")):
        assert not lifecycle.backstop_due(job(timeout=timeout), far)


def test_cancel_actions() -> None:
    assert lifecycle.cancel_action(JobState.QUEUED) is lifecycle.CancelAction.FINISH
    assert lifecycle.cancel_action(JobState.STARTING) is lifecycle.CancelAction.DELETE_WORKER
    assert lifecycle.cancel_action(JobState.RUNNING) is lifecycle.CancelAction.SIGNAL_AGENT
    for state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT):
        assert lifecycle.cancel_action(state) is lifecycle.CancelAction.NONE


def test_overdue() -> None:
    since = {"a": NOW, "b": NOW + timedelta(seconds=5)}
    assert lifecycle.overdue(since, NOW + timedelta(seconds=10), timedelta(seconds=10)) == ["a"]


def queued(*providers: str) -> list[Job]:
    return [job(JobState.QUEUED, provider=p, n=i) for i, p in enumerate(providers)]


def test_plan_dispatch_fifo_within_capacity() -> None:
    jobs = queued("local", "local", "local")
    assert plan_dispatch(jobs, active={"local": 1}, capacity={"local": 3}) == jobs[:2]
    assert plan_dispatch(jobs, active={"local": 3}, capacity={"local": 3}) == []
    assert plan_dispatch(jobs, active={"local": 5}, capacity={"local": 3}) == []
    assert plan_dispatch(jobs, active={}, capacity={"local": None}) == jobs


def test_plan_dispatch_full_provider_does_not_block_another() -> None:
    jobs = queued("kubernetes", "local", "kubernetes", "local")
    plan = plan_dispatch(jobs, active={"kubernetes": 1}, capacity={"kubernetes": 1, "local": 1})
    assert plan == [jobs[1]]


def test_plan_dispatch_skips_jobs_of_unknown_providers() -> None:
    assert plan_dispatch(queued("gone"), active={}, capacity={"local": None}) == []


def test_a_worker_waiting_for_quota_puts_its_job_back_in_the_queue() -> None:
    def st(phase: WorkerPhase, reason: str | None = None) -> WorkerStatus:
        return WorkerStatus(
            WorkerId("w"), JobId("j"), phase, Reason(reason) if reason else None, "m"
        )

    quota = st(WorkerPhase.PENDING, "QuotaExceeded")
    assert lifecycle.state_for_status(JobState.STARTING, quota) is JobState.QUEUED
    assert lifecycle.state_for_status(JobState.QUEUED, quota) is None
    assert lifecycle.state_for_status(JobState.QUEUED, st(WorkerPhase.PENDING)) is (
        JobState.STARTING
    )
    assert lifecycle.state_for_status(JobState.QUEUED, st(WorkerPhase.RUNNING)) is (
        JobState.STARTING
    )
    assert lifecycle.state_for_status(JobState.STARTING, st(WorkerPhase.RUNNING)) is None
    assert lifecycle.state_for_status(JobState.QUEUED, st(WorkerPhase.FAILED, "X")) is None
    waiting = WorkerStatus(
        WorkerId("w"),
        JobId("j"),
        WorkerPhase.PENDING,
        Reason("QuotaExceeded"),
        "waiting for quota: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1",
    )
    assert lifecycle.waiting_reason_of_status(waiting) == waiting.message


def test_slot_waiting_reason_names_the_provider_and_its_cap() -> None:
    assert lifecycle.slot_waiting_reason("local", 16) == (
        "waiting for a worker slot: all 16 local workers are busy"
    )


@pytest.mark.parametrize(
    ("peer", "ip"),
    [
        ("ipv4:10.244.1.7:41234", "10.244.1.7"),
        ("ipv6:[::1]:41234", "::1"),
        ("ipv6:[::ffff:10.244.1.7]:41234", "10.244.1.7"),  # IPv4 client of a [::] listener
        ("unix:/run/hodei.sock", None),
        ("ipv4:garbage:1", None),
    ],
)
def test_peer_ip(peer: str, ip: str | None) -> None:
    assert peer_ip(peer) == (ipaddress.ip_address(ip) if ip else None)


POD = Origin(bound=True, running=True, address="10.244.1.7")


@pytest.mark.parametrize(
    ("origin", "peer", "verdict"),
    [
        (ANYWHERE, "ipv4:192.0.2.1:5", OriginCheck.OK),  # a local process: not bound
        (POD, "ipv4:10.244.1.7:5", OriginCheck.OK),
        (POD, "ipv6:[::ffff:10.244.1.7]:5", OriginCheck.OK),
        (POD, "ipv4:10.244.1.8:5", OriginCheck.ELSEWHERE),
        (POD, "unix:/x", OriginCheck.ELSEWHERE),
        (
            Origin(bound=True, running=False, address="10.244.1.7"),
            "ipv4:10.244.1.7:5",
            OriginCheck.NOT_RUNNING,
        ),  # Pending, even from the right address
        (
            Origin(bound=True, running=True, address=None),
            "ipv4:10.244.1.7:5",
            OriginCheck.NOT_RUNNING,
        ),
        (Origin(bound=True), "ipv4:10.244.1.7:5", OriginCheck.NOT_RUNNING),  # not seen yet
    ],
)
def test_check_origin(origin: Origin, peer: str, verdict: OriginCheck) -> None:
    assert check_origin(origin, peer) is verdict


def test_a_create_waiting_for_the_api_server_shows_the_providers_sentence() -> None:
    busy = WorkerStatus(
        WorkerId("w"),
        JobId("j"),
        WorkerPhase.PENDING,
        Reason("ProviderError"),
        "Kubernetes API busy, retrying: HTTP 429: Too many requests",
    )
    assert lifecycle.waiting_reason_of_status(busy) == busy.message
    assert lifecycle.state_for_status(JobState.STARTING, busy) is None  # it stays STARTING

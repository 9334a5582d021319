"""The JSON shapes shared by ``-o json`` and the HTTP API."""

from __future__ import annotations

from datetime import timedelta

from hodei.api import shapes
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Job, JobSpec, SecretKeyRef
from hodei.domain.reasons import Reason
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerPhase, WorkerRecord
from tests.fixtures.samples import FAILED_SHELL_JOB as JOB
from tests.fixtures.samples import NOW


def test_job_json_has_the_documented_keys_with_nulls_and_utc_times() -> None:
    data = shapes.job_dict(JOB)
    for key in ("id", "state", "exit_code", "reason", "message", "created_at", "started_at",
                "finished_at", "worker_id"):  # fmt: skip
        assert key in data
    assert data["state"] == "FAILED"
    assert data["exit_code"] == 3
    assert data["run_exit_code"] == 3
    assert data["worker_id"] is None
    assert data["created_at"] == "2026-01-01T11:55:00Z"
    assert data["shell"] == "echo hi | wc"
    assert data["command_line"] == "sh -c 'echo hi | wc'"
    assert data["env_names"] == [] and data["image"] is None


def test_job_json_shows_the_profile_and_only_secret_references() -> None:
    spec = JobSpec(
        command=("true",),
        profile="gpu",
        secret_env={"DB_PASSWORD": SecretKeyRef("db-creds", "password")},
    )
    data = shapes.job_dict(Job(id=JobId("j-1"), spec=spec, state=JobState.QUEUED, created_at=NOW))
    assert data["profile"] == "gpu"
    assert data["secret_env"] == {"DB_PASSWORD": "db-creds:password"}
    assert shapes.job_dict(JOB)["profile"] is None and shapes.job_dict(JOB)["secret_env"] == {}


def test_worker_json() -> None:
    worker = WorkerRecord(
        id=WorkerId("w-1"),
        job_id=JobId("j-abc"),
        provider="local",
        attempt=1,
        created_at=NOW - timedelta(seconds=42),
        state=WorkerPhase.RUNNING,
        name="pid 7",
    )
    data = shapes.worker_dict(worker)
    assert data["name"] == "pid 7"
    assert data["created_at"] == "2026-01-01T11:59:18Z"


def test_command_text_quotes_like_a_shell() -> None:
    job = Job(id=JobId("j-1"), spec=JobSpec(command=("echo", "a b")), state=JobState.QUEUED,
              created_at=NOW)  # fmt: skip
    assert shapes.command_text(job) == "echo 'a b'"


def test_run_exit_code_follows_the_exit_table_and_is_null_while_unfinished() -> None:
    from dataclasses import replace

    assert shapes.job_dict(replace(JOB, state=JobState.TIMED_OUT))["run_exit_code"] == 124
    oom = replace(JOB, reason=Reason("OOMKilled"), exit_code=None)
    assert shapes.job_dict(oom)["run_exit_code"] == 137
    assert shapes.job_dict(replace(JOB, state=JobState.RUNNING))["run_exit_code"] is None

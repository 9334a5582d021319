"""Reconnect delays and the job's environment: pure functions."""

from __future__ import annotations

from itertools import islice

from hodei.api.messages import AssignJob
from hodei.domain.ids import JobId
from hodei.domain.jobs import JobSpec
from hodei.worker.backoff import backoff_delays
from hodei.worker.job import job_environment, job_timeout
from hodei.worker.process import exit_status


def test_backoff_grows_to_the_cap_with_jitter_below_each_ceiling() -> None:
    ceilings = list(
        islice(backoff_delays(initial=0.1, factor=2, maximum=0.5, uniform=lambda a, b: b), 5)
    )
    assert ceilings == [0.1, 0.2, 0.4, 0.5, 0.5]
    floors = list(islice(backoff_delays(initial=0.1, uniform=lambda a, b: a), 2))
    assert floors == [0.05, 0.1]


def test_job_environment_drops_the_token_and_adds_the_job_values() -> None:
    base = {"PATH": "/bin", "HODEI_WORKER_TOKEN": "secret", "FOO": "agent"}
    assignment = AssignJob(JobId("j-1"), JobSpec(command=("true",), env={"FOO": "job"}))
    env = job_environment(base, assignment)
    assert env == {"PATH": "/bin", "FOO": "job", "HODEI_JOB_ID": "j-1"}


def test_job_timeout_comes_from_the_spec_and_zero_means_none() -> None:
    def timeout(seconds: float | None) -> float | None:
        return job_timeout(AssignJob(JobId("j-1"), JobSpec(shell="true", timeout_seconds=seconds)))

    assert timeout(2.5) == 2.5
    assert timeout(None) is None
    assert timeout(0.0) is None
    assert timeout(-1.0) is None


def test_exit_status_follows_the_shell_for_signals() -> None:
    assert exit_status(3) == 3
    assert exit_status(-9) == 137

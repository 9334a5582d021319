from datetime import UTC, datetime

import pytest

from hodei.domain.ids import JobId, new_job_id, new_worker_id
from hodei.domain.jobs import Job, JobSpec, Resources, SpecError
from hodei.domain.states import IllegalTransition, JobState


def test_ids_are_distinct_dns_friendly():
    ids = {new_job_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("j-") and len(i) == 12 and i == i.lower() for i in ids)
    assert new_worker_id().startswith("w-")


def test_valid_spec_passes_and_argv():
    spec = JobSpec(
        command=("echo", "hi"),
        env={"A_1": "x"},
        labels={"hodei.io/team": "a-b"},
        timeout_seconds=1,
        max_attempts=3,
        resources=Resources(cpu_request="100m"),
    )
    assert spec.validated() is spec
    assert spec.argv() == ("echo", "hi")
    assert JobSpec(shell="echo $A").argv() == ("/bin/sh", "-c", "echo $A")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (JobSpec(), "command: empty"),
        (JobSpec(command=("a",), shell="b"), "not both"),
        (JobSpec(shell="  "), "shell: empty"),
        (JobSpec(command=("a",), env={"1X": "v"}), "env: '1X'"),
        (JobSpec(command=("a",), labels={"-bad": "v"}), "labels: key '-bad'"),
        (JobSpec(command=("a",), labels={"k": "x" * 64}), "labels: value"),
        (JobSpec(command=("a",), timeout_seconds=0), "timeout"),
        (JobSpec(command=("a",), timeout_seconds=-1), "timeout"),
        (JobSpec(command=("a",), max_attempts=0), "max_attempts"),
        (JobSpec(command=("a",), max_attempts=101), "max_attempts"),
        (
            JobSpec(command=("a",), resources=Resources(memory_limit="lots")),
            "resources.memory_limit",
        ),
    ],
)
def test_invalid_specs_name_the_field(spec: JobSpec, field: str):
    with pytest.raises(SpecError, match=field.replace("(", r"\(")):
        spec.validated()


def test_job_moves_only_along_legal_transitions():
    job = Job(JobId("j-1"), JobSpec(command=("a",)), JobState.QUEUED, datetime.now(UTC))
    starting = job.moved_to(JobState.STARTING, attempt=1)
    assert (starting.state, starting.attempt, job.state) == (JobState.STARTING, 1, JobState.QUEUED)
    with pytest.raises(IllegalTransition):
        job.moved_to(JobState.SUCCEEDED)


def test_waiting_reason_belongs_to_the_state_it_was_given_in():
    job = Job(JobId("j-1"), JobSpec(command=("a",)), JobState.QUEUED, datetime.now(UTC))
    waiting = job.waiting("no capacity")
    assert (waiting.state, waiting.waiting_reason) == (JobState.QUEUED, "no capacity")
    assert waiting.waiting("").waiting_reason is None
    assert waiting.moved_to(JobState.STARTING).waiting_reason is None
    pulling = waiting.moved_to(JobState.STARTING, waiting_reason="pulling")
    assert pulling.waiting_reason == "pulling"

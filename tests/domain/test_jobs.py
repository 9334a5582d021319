from datetime import UTC, datetime

import pytest

from hodei.domain.ids import JobId, new_job_id, new_worker_id
from hodei.domain.jobs import (
    MAX_ARGUMENT_BYTES,
    MAX_SPEC_BYTES,
    MAX_TIMEOUT_SECONDS,
    Job,
    JobSpec,
    Resources,
    SecretKeyRef,
    SpecError,
)
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
    with_refs = JobSpec(
        command=("a",),
        profile="gpu-a100",
        secret_env={"DB_PASSWORD": SecretKeyRef("db.creds", "pass_word-1.txt")},
    )
    assert with_refs.validated() is with_refs
    assert spec.argv() == ("echo", "hi")
    assert JobSpec(shell="echo $A").argv() == ("/bin/sh", "-c", "echo $A")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (JobSpec(), "command: empty"),
        (JobSpec(command=("a",), shell="b"), "not both"),
        (JobSpec(shell="  "), "shell: empty"),
        (JobSpec(command=("a",), env={"1X": "v"}), "env: name '1X'"),
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
        (
            JobSpec(command=("a",), profile="GPU"),
            "profile: 'GPU' is not valid; accepted: a DNS-1123",
        ),
        (JobSpec(command=("a",), profile="gpu\n"), "profile: 'gpu.n' is not valid"),
        (
            JobSpec(command=("a",), secret_env={"1X": SecretKeyRef("s", "k")}),
            "secret_env: name '1X' is not valid",
        ),
        (
            JobSpec(command=("a",), secret_env={"HODEI_WORKER_TOKEN": SecretKeyRef("s", "k")}),
            "reserved for Hodei; accepted: names not starting with HODEI_",
        ),
        (
            JobSpec(command=("a",), env={"P": "x"}, secret_env={"P": SecretKeyRef("s", "k")}),
            "also given in env",
        ),
        (
            JobSpec(command=("a",), secret_env={"P": SecretKeyRef("Bad_Name", "k")}),
            "secret_env: secret 'Bad_Name' of P is not valid; accepted: a DNS-1123 subdomain",
        ),
        (
            JobSpec(command=("a",), secret_env={"P": SecretKeyRef("s", "a/b")}),
            "secret_env: key 'a/b' of P is not valid; accepted: a ConfigMap or Secret key",
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


def test_waiting_reason_belongs_to_the_state_it_was_given_in() -> None:
    job = Job(JobId("j-1"), JobSpec(command=("a",)), JobState.QUEUED, datetime.now(UTC))
    waiting = job.waiting("no capacity")
    assert (waiting.state, waiting.waiting_reason) == (JobState.QUEUED, "no capacity")
    assert waiting.waiting("").waiting_reason is None
    assert waiting.moved_to(JobState.STARTING).waiting_reason is None
    pulling = waiting.moved_to(JobState.STARTING, waiting_reason="pulling")
    assert pulling.waiting_reason == "pulling"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (JobSpec(command=("echo", "a\x00b")), r"command\[1\]: contains a NUL"),
        (JobSpec(command=("env",), env={"A": "x\x00y"}), "env A: contains a NUL"),
        (JobSpec(command=("env",), env={"A\x00": "x"}), "env: name: contains a NUL"),
        (JobSpec(shell="echo \x00"), "shell: contains a NUL"),
        (
            JobSpec(command=("echo", "x" * (1024 * 1024))),
            r"command\[1\]: 1048576 bytes; at most 131071",
        ),
        (JobSpec(command=("env",), env={"A": "x" * 131070}), "env A: 131072 bytes; at most 131071"),
        (JobSpec(command=("",)), r"command\[0\]: empty"),
        (JobSpec(command=("", "x")), r"command\[0\]: empty"),
        (JobSpec(command=("a",), labels={"team\n": "x"}), r"labels: key 'team\\n' is not valid"),
        (
            JobSpec(command=("a",), labels={"team": "blue\n"}),
            r"labels: value 'blue\\n' of key 'team'",
        ),
        (JobSpec(command=("a",), env={"PATH\n": "x"}), r"env: name 'PATH\\n' is not valid"),
        (JobSpec(command=("a",), image="python:3\n"), r"image: 'python:3\\n' is not valid"),
        (JobSpec(command=("a",), labels={"a/b/c": "x"}), "labels: key 'a/b/c'"),
        (JobSpec(command=("a",), timeout_seconds=float("inf")), "timeout: inf is not accepted"),
        (JobSpec(command=("a",), timeout_seconds=1e300), "timeout: 1e[+]300 is not accepted"),
        (JobSpec(command=("a",), timeout_seconds=float("nan")), "timeout: nan is not accepted"),
        (JobSpec(command=("a",), timeout_seconds=MAX_TIMEOUT_SECONDS + 1), "at most 31536000"),
        (
            JobSpec(command=("a",), resources=Resources(memory_limit="1e999999999")),
            "resources.memory_limit: '1e999999999' is out of range",
        ),
        (
            JobSpec(command=("a",), resources=Resources(cpu_request="1\n")),
            "resources.cpu_request: '1\\\\n' is not a Kubernetes quantity",
        ),
        (JobSpec(command=("echo", "\udcff")), r"command\[1\]: not valid UTF-8"),
        (JobSpec(command=("a",), provider="p" * 64), "provider: at most 63"),
    ],
)
def test_what_exec_the_store_or_kubernetes_would_refuse_is_refused(spec: JobSpec, message: str):
    with pytest.raises(SpecError, match=message):
        spec.validated()


def test_a_20_megabyte_argv_is_refused_as_a_whole():
    argv = ("echo", *["x" * 100_000] * 200)  # each argument fits; the spec does not
    with pytest.raises(SpecError, match=r"spec: 20000004 bytes .*; at most 1048576"):
        JobSpec(command=argv).validated()


def test_specs_at_the_limits_are_accepted():
    argument = "x" * MAX_ARGUMENT_BYTES
    assert JobSpec(command=("echo", argument)).validated().command[1] == argument
    env = {"A": "x" * (MAX_ARGUMENT_BYTES - 2)}  # "A=" + value is exactly the limit
    assert JobSpec(command=("env",), env=env).validated().env == env
    assert JobSpec(command=("a",), timeout_seconds=MAX_TIMEOUT_SECONDS).validated()
    many = ("echo", *["x" * 1000] * ((MAX_SPEC_BYTES - 4) // 1000))
    assert JobSpec(command=many).validated().command == many
    labels = {"example.com/team": "a" * 63, "x": ""}
    assert JobSpec(command=("a",), labels=labels, env={"my.env-name": "é"}).validated()

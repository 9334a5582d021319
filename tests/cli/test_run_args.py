"""``hodei run`` flags to a job spec, and a finished job to an exit code: pure logic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hodei.cli.client import ClientError
from hodei.cli.embedded import embedded_settings
from hodei.cli.follow import exit_code_for, outcome_note, with_reconnects
from hodei.cli.main import build_parser
from hodei.cli.run import UsageError, spec_from_args
from hodei.config import SettingsError
from hodei.domain.ids import JobId
from hodei.domain.jobs import Job, JobSpec, SecretKeyRef, SpecError
from hodei.domain.states import JobState


def spec(*argv: str, client_env: dict[str, str] | None = None) -> JobSpec:
    return spec_from_args(build_parser("run").parse_args(["run", *argv]), client_env or {})


def test_argv_after_double_dash_is_kept_as_argv() -> None:
    assert spec("--", "echo", "a b", "--x").command == ("echo", "a b", "--x")
    assert spec("--", "echo hi").command == ("echo hi",)  # one argument, not a shell line
    assert spec("--", "sh", "-c", "echo a | tr a b").command == ("sh", "-c", "echo a | tr a b")


def test_flags_fill_the_spec() -> None:
    result = spec(
        "--provider", "local", "--cpu", "500m", "--memory", "256Mi", "--timeout", "2.5",
        "--env", "A=1", "--env", "B=x=y", "--label", "team=ml", "--max-attempts", "3",
        "--profile", "gpu", "--secret-env", "DB_PASSWORD=db-creds:password",
        "--secret-env", "K=s:a.b", "--", "true",
    )  # fmt: skip
    assert result.profile == "gpu"
    assert result.secret_env == {
        "DB_PASSWORD": SecretKeyRef("db-creds", "password"),
        "K": SecretKeyRef("s", "a.b"),
    }
    assert result.provider == "local"
    assert (result.resources.cpu_request, result.resources.cpu_limit) == ("500m", "500m")
    assert (result.resources.memory_request, result.resources.memory_limit) == ("256Mi", "256Mi")
    assert result.timeout_seconds == 2.5
    assert result.env == {"A": "1", "B": "x=y"}
    assert result.labels == {"team": "ml"}
    assert result.max_attempts == 3


def test_env_name_alone_passes_the_clients_value_as_docker_does() -> None:
    client = {"TOKEN": "abc=1", "EMPTY": ""}
    result = spec(
        "--env", "TOKEN", "--env", "EMPTY", "--env", "UNSET", "--env", "A=2", "--", "true",
        client_env=client,
    )  # fmt: skip
    assert result.env == {"TOKEN": "abc=1", "EMPTY": "", "A": "2"}  # UNSET is left out


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--cpu", "abc"], "--cpu"),
        (["--memory", "12XB"], "--memory"),
        (["--env", "=v"], "--env"),
        (["--label", "=v"], "--label"),
        (["--timeout", "0"], "--timeout"),
        (["--secret-env", "NAME"], "--secret-env"),
        (["--secret-env", "NAME=secret"], "--secret-env"),
        (["--secret-env", "NAME=:key"], "--secret-env"),
        (["--secret-env", "NAME=secret:"], "--secret-env"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(UsageError, match=f"^{flag}"):
        spec(*argv, "--", "true")


@pytest.mark.parametrize("timeout", ["inf", "1e300", "nan"])
def test_timeouts_that_no_timer_can_hold_are_refused(timeout: str) -> None:
    with pytest.raises((UsageError, SpecError), match="timeout"):
        spec("--timeout", timeout, "--", "true")


def test_empty_command_and_bad_labels_are_refused() -> None:
    with pytest.raises(UsageError, match="missing command"):
        spec("--")
    with pytest.raises(SpecError, match="labels"):
        spec("--label", "bad key!=v", "--", "true")


def job(state: JobState, *, exit_code: int | None = None, reason: str | None = None) -> Job:
    return Job(
        id=JobId("j-1"),
        spec=JobSpec(command=("x",)),
        state=state,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        exit_code=exit_code,
        reason=reason,
        message="details" if reason else None,
    )


@pytest.mark.parametrize(
    ("finished", "code"),
    [
        (job(JobState.SUCCEEDED, exit_code=0), 0),
        (job(JobState.FAILED, exit_code=3, reason="NonZeroExit"), 3),
        (job(JobState.FAILED, exit_code=127, reason="CommandNotFound"), 127),
        (job(JobState.TIMED_OUT, exit_code=143, reason="DeadlineExceeded"), 124),
        (job(JobState.FAILED, reason="WorkerLost"), 125),
        (job(JobState.FAILED, reason="ImagePullBackOff"), 125),
        (job(JobState.CANCELLED, reason="Cancelled"), 130),
    ],
)
def test_exit_codes(finished: Job, code: int) -> None:
    assert exit_code_for(finished) == code


def test_a_note_explains_everything_but_success_and_plain_non_zero_exit() -> None:
    assert outcome_note(job(JobState.SUCCEEDED, exit_code=0)) is None
    assert outcome_note(job(JobState.FAILED, exit_code=3, reason="NonZeroExit")) is None
    assert outcome_note(job(JobState.FAILED, reason="WorkerLost")) == (
        "hodei: job j-1 FAILED (WorkerLost: details)"
    )


def test_embedded_settings_are_loopback_temporary_and_local(tmp_path: Path) -> None:
    env = {
        "HODEI_GRPC_ADDRESS": "0.0.0.0:50051",
        "HODEI_API_TOKEN": "t",
        "HODEI_LOCAL_ENABLED": "0",
        "HODEI_TLS_CERT_FILE": "/c.pem",
        "HODEI_TLS_KEY_FILE": "/k.pem",
    }
    settings = embedded_settings(env, tmp_path)
    assert settings.tls is None and settings.worker_tls is None
    assert settings.grpc_address == "127.0.0.1:0"
    assert settings.http_address == "127.0.0.1:0"
    assert settings.database_url == f"sqlite:///{tmp_path / 'hodei.db'}"
    assert settings.api_token is None
    assert settings.local_enabled
    assert not settings.kubernetes.enabled
    assert embedded_settings({"HODEI_K8S_ENABLED": "1"}, tmp_path).kubernetes.enabled
    with pytest.raises(SettingsError, match="HODEI_K8S_ENABLED"):
        embedded_settings({"HODEI_K8S_ENABLED": "maybe"}, tmp_path)


async def test_reconnects_while_unreachable_and_gives_up_without_progress() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ClientError("UNAVAILABLE", "restarting")
        return "done"

    assert await with_reconnects(flaky, progress=[0]) == "done"
    assert len(calls) == 3

    async def gone() -> str:
        raise ClientError("UNAVAILABLE", "gone")

    with pytest.raises(ClientError, match="gone"):
        await with_reconnects(gone, progress=[0], give_up_after=0.0)

    async def refused() -> str:
        raise ClientError("NOT_FOUND", "no such job")

    with pytest.raises(ClientError, match="no such job"):
        await with_reconnects(refused, progress=[0])

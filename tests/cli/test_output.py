"""Tables and JSON of jobs and workers: pure formatting."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hodei.api.shapes import job_dict
from hodei.cli import output
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import Attempt, JobSpec, SecretKeyRef
from hodei.domain.reasons import Reason
from hodei.domain.states import JobState
from hodei.domain.workers import WorkerPhase, WorkerRecord
from tests.fixtures.samples import FAILED_SHELL_JOB as JOB
from tests.fixtures.samples import NOW


def test_waiting_reason_is_shown_while_the_job_waits() -> None:
    waiting = replace(JOB, state=JobState.STARTING, exit_code=None, waiting_reason="pulling")
    assert job_dict(waiting)["waiting_reason"] == "pulling"
    assert job_dict(JOB)["waiting_reason"] is None
    assert "Waiting:   pulling" in output.job_details(waiting).splitlines()
    assert "Waiting" not in output.job_details(JOB)


def test_jobs_table_lines_up_columns() -> None:
    text = output.jobs_table([JOB], NOW)
    header, row = text.splitlines()
    assert header.split() == ["ID", "STATE", "EXIT", "REASON", "AGE", "COMMAND"]
    assert row.startswith("j-abc")
    assert row.index("FAILED") == header.index("STATE")
    assert "5m" in row and "sh -c 'echo hi | wc'" in row


def test_the_exit_column_is_what_hodei_run_exits_with() -> None:
    timed_out = replace(JOB, state=JobState.TIMED_OUT, exit_code=143, reason=None)
    lost = replace(JOB, exit_code=None, reason=Reason("WorkerLost"))
    running = replace(JOB, state=JobState.RUNNING, exit_code=None, reason=None)
    assert [output.run_exit_text(j) for j in (JOB, timed_out, lost, running)] == [
        "3",
        "124",
        "125",
        "-",
    ]


def test_a_waiting_job_shows_why_in_the_reason_column() -> None:
    pending = replace(
        JOB,
        state=JobState.STARTING,
        exit_code=None,
        reason=None,
        waiting_reason="Unschedulable: 0/1 nodes are available:\n1 Insufficient cpu",
    )
    row = output.jobs_table([pending], NOW).splitlines()[1]
    assert "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu" in row


def test_a_narrow_terminal_cuts_reason_and_command_but_never_the_id() -> None:
    long = replace(
        JOB,
        reason=Reason("Unschedulable"),
        message=None,
        spec=JobSpec(command=("python3", "-c", "import time; time.sleep(1000)  # " + "x" * 80)),
    )
    wide_text = output.jobs_table([long], NOW)
    assert max(len(line) for line in wide_text.splitlines()) > 100
    for width in (100, 70):
        lines = output.jobs_table([long], NOW, width=width).splitlines()
        assert max(len(line) for line in lines) <= width
        assert lines[1].startswith("j-abc  FAILED") and lines[1].rstrip().endswith("…")
    tiny = output.jobs_table([long], NOW, width=10).splitlines()
    assert tiny[1].startswith("j-abc  FAILED")  # too narrow: whole ids, longer lines


def test_wide_adds_provider_attempt_worker_times_and_labels() -> None:
    header, row = output.jobs_table([JOB], NOW, wide=True).splitlines()
    assert header.split()[6:] == ["PROVIDER", "ATTEMPT", "WORKER", "STARTED", "FINISHED", "LABELS"]
    assert row.split()[-6:] == ["local", "0", "-", "4m", "3m", "team=ml"]


def test_job_details_and_workers_table() -> None:
    details = output.job_details(JOB)
    assert "State:" in details and "NonZeroExit" in details and "team=ml" in details
    worker = WorkerRecord(
        id=WorkerId("w-1"),
        job_id=JobId("j-abc"),
        provider="local",
        attempt=1,
        created_at=NOW - timedelta(seconds=42),
        state=WorkerPhase.RUNNING,
        name="pid 7",
    )
    table = output.workers_table([worker], NOW)
    assert "pid 7" in table and "42s" in table


def test_age_units() -> None:
    assert [output.age(NOW - timedelta(seconds=s), NOW) for s in (5, 120, 7200, 200000)] == [
        "5s",
        "2m",
        "2h",
        "2d",
    ]
    assert output.age(None, NOW) == "-"


def test_job_details_list_each_attempt_with_its_reason() -> None:
    evicted = Attempt(
        1,
        WorkerId("w-1"),
        Reason("Evicted"),
        "EvictionByEvictionAPI: Eviction API: evicting",
        NOW,
        True,
    )
    failed = Attempt(2, WorkerId("w-2"), Reason("NonZeroExit"), "exit code 3", NOW, False)
    details = output.job_details(replace(JOB, attempt=2, attempts=(evicted, failed)))
    lines = details.splitlines()
    start = lines.index("Attempts:")
    assert lines[start + 1].split() == ["#", "WORKER", "REASON", "DISRUPTION", "MESSAGE"]
    assert lines[start + 2].split() == [
        "1",
        "w-1",
        "Evicted",
        "yes",
        "EvictionByEvictionAPI:",
        "Eviction",
        "API:",
        "evicting",
    ]
    assert lines[start + 3].split() == ["2", "w-2", "NonZeroExit", "no", "exit", "code", "3"]
    assert "Attempts:" not in output.job_details(JOB)  # nothing ended yet: no section


def test_show_lists_the_profile_and_secret_references() -> None:
    spec = JobSpec(
        command=("true",),
        profile="gpu",
        secret_env={"TOKEN": SecretKeyRef("api", "token"), "DB": SecretKeyRef("db", "pw")},
    )
    lines = output.job_details(replace(JOB, spec=spec)).splitlines()
    assert "Profile:    gpu" in lines
    assert "Secret env: DB=db:pw,TOKEN=api:token" in lines
    assert "Profile" not in output.job_details(JOB)

"""The CLI's commands against a real control plane with the local provider, in-process."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable

import pytest

from hodei.cli import commands
from hodei.cli.client import HodeiClient
from hodei.cli.main import build_parser
from hodei.cli.run import run_command
from hodei.domain.jobs import JobSpec
from hodei.domain.states import JobState
from hodei.server.app import ControlPlane
from tests.fixtures.control_plane import MakeControlPlane

pytestmark = pytest.mark.slow

Capture = pytest.CaptureFixture[bytes]


def args(*argv: str) -> argparse.Namespace:
    command = next(a for a in argv if not a.startswith("-"))
    return build_parser(command).parse_args(list(argv))


@pytest.fixture
async def server(control_plane_factory: MakeControlPlane) -> ControlPlane:
    return await control_plane_factory()  # providers from settings: the local provider


def env_for(server: ControlPlane) -> dict[str, str]:
    return {"HODEI_SERVER": server.address}


async def client_command(name: str, server: ControlPlane, *argv: str) -> int:
    handler: Callable[..., object] = getattr(commands, name)
    return await commands.with_client(handler, args(*argv), env_for(server))  # type: ignore[arg-type]


async def wait_until(server: ControlPlane, job_id: str, *states: JobState) -> None:
    async with HodeiClient(server.address) as client:
        async for job in client.watch(job_id):
            if job.state in states:
                return


async def test_run_streams_exact_bytes_and_exits_with_the_job_code(
    server: ControlPlane, capsysbinary: Capture
) -> None:
    script = r"printf 'a\377b'; printf 'no newline' >&2; exit 3"
    code = await run_command(args("run", "--", "sh", "-c", script), env_for(server))
    out, err = capsysbinary.readouterr()
    assert code == 3
    assert out == b"a\xffb"
    assert err == b"no newline"


async def test_detach_then_logs_show_list_and_workers(
    server: ControlPlane, capsysbinary: Capture
) -> None:
    assert await run_command(args("run", "--detach", "--", "echo", "hi"), env_for(server)) == 0
    job_id = capsysbinary.readouterr().out.decode().strip()
    assert job_id.startswith("j-")

    assert await client_command("jobs_logs", server, "jobs", "logs", "-f", job_id) == 0
    assert capsysbinary.readouterr().out == b"hi\n"

    await wait_until(server, job_id, JobState.SUCCEEDED)
    assert await client_command("jobs_show", server, "jobs", "show", job_id, "-o", "json") == 0
    shown = json.loads(capsysbinary.readouterr().out)
    assert (shown["id"], shown["state"], shown["exit_code"]) == (job_id, "SUCCEEDED", 0)

    assert await client_command("jobs_list", server, "jobs", "list", "-o", "json") == 0
    assert job_id in [job["id"] for job in json.loads(capsysbinary.readouterr().out)]
    assert await client_command("jobs_list", server, "jobs", "list") == 0
    assert job_id in capsysbinary.readouterr().out.decode()

    assert await client_command("workers_list", server, "workers", "list", "-o", "json") == 0
    workers = json.loads(capsysbinary.readouterr().out)
    assert all(w["provider"] == "local" for w in workers)


async def test_unknown_job_is_a_clear_error(server: ControlPlane, capsysbinary: Capture) -> None:
    assert await client_command("jobs_show", server, "jobs", "show", "j-nothere") == 125
    assert b"j-nothere" in capsysbinary.readouterr().err
    assert await client_command("jobs_logs", server, "jobs", "logs", "j-nothere") == 125
    assert await client_command("jobs_cancel", server, "jobs", "cancel", "j-nothere") == 125


async def test_cancel_ends_a_running_job(server: ControlPlane, capsysbinary: Capture) -> None:
    assert await run_command(args("run", "--detach", "--", "sleep", "30"), env_for(server)) == 0
    job_id = capsysbinary.readouterr().out.decode().strip()
    await wait_until(server, job_id, JobState.RUNNING)
    assert await client_command("jobs_cancel", server, "jobs", "cancel", job_id) == 0
    assert capsysbinary.readouterr().out.decode() == f"job {job_id} cancelling (was RUNNING)\n"
    await wait_until(server, job_id, JobState.CANCELLED)
    assert await client_command("jobs_cancel", server, "jobs", "cancel", job_id) == 0
    assert capsysbinary.readouterr().out.decode() == f"job {job_id} CANCELLED\n"


async def test_timeout_exits_124(server: ControlPlane, capsysbinary: Capture) -> None:
    code = await run_command(args("run", "--timeout", "0.3", "--", "sleep", "30"), env_for(server))
    assert code == 124
    assert b"TIMED_OUT" in capsysbinary.readouterr().err


async def test_unreachable_server_exits_125_naming_the_variable(capsysbinary: Capture) -> None:
    env = {"HODEI_SERVER": "127.0.0.1:1"}
    assert await run_command(args("run", "--", "true"), env) == 125
    assert b"HODEI_SERVER" in capsysbinary.readouterr().err
    assert await commands.with_client(commands.jobs_list, args("jobs", "list"), env) == 125


async def test_bad_flags_exit_125_before_contacting_anything(capsysbinary: Capture) -> None:
    env = {"HODEI_SERVER": "127.0.0.1:1"}
    assert await run_command(args("run", "--memory", "lots", "--", "true"), env) == 125
    assert b"--memory" in capsysbinary.readouterr().err
    assert await run_command(args("run", "--", "true"), {"HODEI_SERVER": "nope"}) == 125
    assert b"HODEI_SERVER" in capsysbinary.readouterr().err


async def test_many_jobs_at_once_all_complete(control_plane_factory: MakeControlPlane) -> None:
    server = await control_plane_factory(env={"HODEI_LOCAL_MAX_WORKERS": "4"})
    async with HodeiClient(server.address) as client:
        jobs = await asyncio.gather(
            *(client.submit(JobSpec(command=("sh", "-c", f"echo {i}"))) for i in range(30))
        )
        for i, job in enumerate(jobs):
            await wait_until(server, job.id, JobState.SUCCEEDED, JobState.FAILED)
            assert (await client.get(job.id)).state is JobState.SUCCEEDED
            assert b"".join([c.data async for c in client.logs(job.id)]) == f"{i}\n".encode()


async def test_api_token_is_sent_and_a_missing_one_is_explained(
    control_plane_factory: MakeControlPlane, capsysbinary: Capture
) -> None:
    server = await control_plane_factory(env={"HODEI_API_TOKEN": "s3cret"})
    without = env_for(server)
    assert await commands.with_client(commands.jobs_list, args("jobs", "list"), without) == 125
    assert b"HODEI_API_TOKEN" in capsysbinary.readouterr().err
    with_token = {**without, "HODEI_API_TOKEN": "s3cret"}
    assert await run_command(args("run", "--", "echo", "ok"), with_token) == 0
    assert capsysbinary.readouterr().out == b"ok\n"

"""The web console in a real browser (headless Chromium) against a real control plane.

Jobs run on the local provider (real worker processes), so output arrives live.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hodei.api.v1 import jobs_pb2_grpc, types_pb2
from hodei.api.v1.jobs_pb2 import WatchJobRequest
from hodei.providers.local import LocalProvider
from hodei.server.app import ControlPlane
from tests.fixtures.browser import screenshot
from tests.fixtures.control_plane import MakeControlPlane
from tests.fixtures.stubs import job_stub
from tests.server.helpers import submit

pytestmark = pytest.mark.slow
expect = pytest.importorskip("playwright.async_api").expect
TOKEN = "console-token"


@pytest.fixture
async def plane(control_plane_factory: MakeControlPlane, tmp_path: Path) -> ControlPlane:
    provider = LocalProvider(max_workers=4, state_dir=tmp_path / "workers")
    return await control_plane_factory(providers=[provider], env={"HODEI_API_TOKEN": TOKEN})


@pytest.fixture
async def client(plane: ControlPlane) -> AsyncIterator[jobs_pb2_grpc.JobServiceStub]:
    import grpc

    async with grpc.aio.insecure_channel(plane.address) as channel:
        yield job_stub(channel)


AUTH = (("authorization", f"Bearer {TOKEN}"),)


async def login(page: Any, plane: ControlPlane) -> None:
    await page.goto(f"http://127.0.0.1:{plane.http_port}/")
    await page.fill("#token", TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#jobs")


async def test_the_token_prompt_guards_the_page(
    browser_page: Any, plane: ControlPlane, client: jobs_pb2_grpc.JobServiceStub
) -> None:
    job = await submit(client, "echo", "secret-output", metadata=AUTH)
    await browser_page.goto(f"http://127.0.0.1:{plane.http_port}/#/jobs/{job.id}")
    await browser_page.wait_for_selector("#login-form")
    await screenshot(browser_page, "console-login")
    assert job.id not in await browser_page.content()
    await browser_page.fill("#token", "wrong")
    await browser_page.click("button[type=submit]")
    await browser_page.wait_for_selector("#login-error:has-text('Wrong API token')")
    await browser_page.fill("#token", TOKEN)
    await browser_page.click("button[type=submit]")
    await browser_page.wait_for_selector("#log .line:has-text('secret-output')")
    # The token never lands in the URL or in script-readable cookies.
    assert TOKEN not in browser_page.url
    assert TOKEN not in await browser_page.evaluate("document.cookie")


async def test_the_list_shows_submitted_jobs_and_updates_without_reload(
    browser_page: Any, plane: ControlPlane, client: jobs_pb2_grpc.JobServiceStub, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    first = await submit(client, "true", metadata=AUTH, labels={"team": "ml"})
    await login(browser_page, plane)
    row = browser_page.locator(f"tr[data-job='{first.id}']")
    await row.locator("[data-state=SUCCEEDED]").wait_for()
    waiting = await submit(
        client, "sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.05; done; exit 4", metadata=AUTH
    )
    # Appears, runs and fails with its exit code, all without reloading the page.
    live = browser_page.locator(f"tr[data-job='{waiting.id}']")
    await live.locator("[data-state=RUNNING]").wait_for()
    flag.touch()
    await live.locator("[data-state=FAILED]").wait_for()
    assert await live.locator("td.exit").inner_text() == "4"
    assert await live.locator("td.reason").inner_text() == "NonZeroExit"
    assert (await live.locator("td.command").inner_text()).startswith("sh -c 'while [ ! -e ")
    await screenshot(browser_page, "console-jobs")
    # Filters: by state, and by label.
    rows = browser_page.locator("#jobs tr[data-job]")
    await browser_page.select_option("#filter-state", "FAILED")
    await expect(rows).to_have_count(1)
    assert await rows.get_attribute("data-job") == waiting.id
    await browser_page.select_option("#filter-state", "")
    await browser_page.fill("#filter-label", "team=ml")
    await browser_page.click(".filters button")
    await expect(rows).to_have_count(1)
    assert await rows.get_attribute("data-job") == first.id


async def test_job_page_shows_output_live_and_cancel_cancels(
    browser_page: Any, plane: ControlPlane, client: jobs_pb2_grpc.JobServiceStub, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    script = (
        f"echo first; echo warn >&2; while [ ! -e {flag} ]; do sleep 0.05; done; "
        "echo second; sleep 60"
    )
    job = await submit(client, "sh", "-c", script, metadata=AUTH, env={"SECRET_VALUE": "hunter2"})
    await login(browser_page, plane)
    await browser_page.goto(f"http://127.0.0.1:{plane.http_port}/#/jobs/{job.id}")
    await browser_page.wait_for_selector("#log .line.stdout:has-text('first')")
    await browser_page.wait_for_selector("#log .line.stderr:has-text('warn')")
    assert await browser_page.locator("#log .line:has-text('second')").count() == 0
    flag.touch()
    await browser_page.wait_for_selector("#log .line.stdout:has-text('second')")
    spec = await browser_page.locator("#spec").inner_text()
    assert "SECRET_VALUE" in spec and "hunter2" not in spec
    await screenshot(browser_page, "console-job-running")
    await browser_page.click("#cancel")
    await browser_page.wait_for_selector("#job-state [data-state=CANCELLED]")
    await browser_page.wait_for_selector("#log-status:has-text('End of output')")
    assert await browser_page.locator("#cancel").is_disabled()


async def test_output_renders_colours_progress_lines_binary_and_markup_as_text(
    browser_page: Any, plane: ControlPlane, client: jobs_pb2_grpc.JobServiceStub
) -> None:
    script = (
        r"printf '\033[31mred\033[0m plain\n';"
        r"printf 'progress 10%%\rprogress 50%%\rprogress 100%%\n';"
        r"printf 'abcdef\rXY\n';"
        r"printf 'bin:\000\001\377:end\n';"
        r"echo '<script>window.pwned=1</script><img src=x onerror=window.pwned=2>'"
    )
    # (Labels cannot carry markup: submit validates them as Kubernetes label values.)
    job = await submit(client, "sh", "-c", script, metadata=AUTH)
    await login(browser_page, plane)
    await browser_page.goto(f"http://127.0.0.1:{plane.http_port}/#/jobs/{job.id}")
    await browser_page.wait_for_selector("#log-status:has-text('End of output')")
    lines = await browser_page.locator("#log .line").all_inner_texts()
    assert lines == [
        "red plain",
        "progress 100%",
        "XYcdef",
        "bin:\ufffd\ufffd\ufffd:end",
        "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>",
    ]
    red = browser_page.locator("#log .line").first.locator("span.ansi-red-fg")
    assert await red.inner_text() == "red"
    assert await browser_page.evaluate("window.pwned === undefined")
    assert await browser_page.locator("#log img, #log script").count() == 0
    assert "<script>window.pwned=1</script>" in await browser_page.locator("#spec").inner_text()
    await screenshot(browser_page, "console-job-output")
    # The command column of the list shows markup as text too.
    await browser_page.goto(f"http://127.0.0.1:{plane.http_port}/#/")
    command = browser_page.locator(f"tr[data-job='{job.id}'] td.command")
    assert "<script>" in await command.inner_text()
    assert await browser_page.evaluate("window.pwned === undefined")


async def test_workers_page_lists_the_job_worker(
    browser_page: Any, plane: ControlPlane, client: jobs_pb2_grpc.JobServiceStub
) -> None:
    job = await submit(client, "true", metadata=AUTH)
    await login(browser_page, plane)
    await browser_page.click("a[data-nav=workers]")
    row = browser_page.locator(f"#workers tr:has(a:text-is('{job.id}'))")
    await row.wait_for()
    # The process id arrives with the worker's first status; the page follows without reload.
    await expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^pid \d+$"))
    assert await row.locator("td").nth(2).inner_text() == "local"
    await screenshot(browser_page, "console-workers")


async def test_job_page_says_why_a_job_waits(
    browser_page: Any,
    control_plane_factory: MakeControlPlane,
    tmp_path: Path,
) -> None:
    provider = LocalProvider(max_workers=1, state_dir=tmp_path / "workers")
    plane = await control_plane_factory(providers=[provider], env={"HODEI_API_TOKEN": TOKEN})
    import grpc

    flag = tmp_path / "go"
    async with grpc.aio.insecure_channel(plane.address) as channel:
        client = job_stub(channel)
        await submit(
            client, "sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.05; done", metadata=AUTH
        )
        queued = await submit(client, "true", metadata=AUTH)
        await login(browser_page, plane)
        row = browser_page.locator(f"tr[data-job='{queued.id}']")
        await row.locator("[data-state=QUEUED]").wait_for()
        stored = await plane.jobs.get(queued.id)
        assert stored is not None and stored.waiting_reason
        assert await row.locator("td.reason").inner_text() == stored.waiting_reason
        await browser_page.goto(f"http://127.0.0.1:{plane.http_port}/#/jobs/{queued.id}")
        waiting = browser_page.locator("#waiting")
        await expect(waiting).to_have_text(f"Waiting: {stored.waiting_reason}")
        await screenshot(browser_page, "console-job-waiting")
        flag.touch()
        await browser_page.locator("#job-state [data-state=SUCCEEDED]").wait_for()
        assert await waiting.is_hidden()


async def test_large_output_is_paged_not_loaded_whole(
    browser_page: Any, plane: ControlPlane, client: jobs_pb2_grpc.JobServiceStub
) -> None:
    # 40,000 numbered lines of 80 bytes: 3.2 MB, more than the 2 MiB loaded at first.
    script = "i=0; while [ $i -lt 40000 ]; do printf '%079d\\n' $i; i=$((i+1)); done"
    job = await submit(client, "sh", "-c", script, metadata=AUTH)
    # All of it written first: the first page is then exactly the first 2 MiB, whatever
    # the job had printed when the page opened.
    views = [v async for v in client.WatchJob(WatchJobRequest(id=job.id), metadata=AUTH)]
    assert views[-1].state == types_pb2.SUCCEEDED
    await login(browser_page, plane)
    await browser_page.goto(f"http://127.0.0.1:{plane.http_port}/#/jobs/{job.id}")
    more = browser_page.locator("#log-more")
    await more.wait_for()
    lines = browser_page.locator("#log .line")
    shown = await lines.count()
    assert 2 * 1024 * 1024 // 80 <= shown < 40000
    assert await lines.nth(shown - 1).inner_text() == f"{shown - 1:079d}"
    await more.click()
    await browser_page.locator("#log-status:has-text('End of output')").wait_for()
    assert await lines.count() == 40000
    assert await lines.last.inner_text() == f"{39999:079d}"


async def test_job_page_lists_each_attempt_with_its_reason(
    browser_page: Any, plane: ControlPlane, client: jobs_pb2_grpc.JobServiceStub, tmp_path: Path
) -> None:
    # Attempt 1 kills its own worker agent (a lost worker: the platform's doing, retried);
    # attempt 2 finds the flag and succeeds.
    flag = tmp_path / "first-attempt-done"
    script = f"if [ ! -e {flag} ]; then touch {flag}; kill -9 $PPID; sleep 30; fi; echo second"
    job = await submit(client, "sh", "-c", script, metadata=AUTH)
    await login(browser_page, plane)
    await browser_page.goto(f"http://127.0.0.1:{plane.http_port}/#/jobs/{job.id}")
    await browser_page.locator("#job-state [data-state=SUCCEEDED]").wait_for(timeout=30_000)
    rows = browser_page.locator("#attempts tbody tr")
    await expect(rows).to_have_count(2)
    first = await rows.nth(0).locator("td").all_inner_texts()
    assert first[0] == "1" and first[4] == "WorkerLost (platform; retried)"
    assert (await rows.nth(1).locator("td").all_inner_texts())[0] == "2"
    await screenshot(browser_page, "console-job-attempts")

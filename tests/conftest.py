"""Shared pytest configuration; server fixtures live in tests/fixtures and are registered here."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator

import pytest

pytest_plugins = [
    "tests.fixtures.emulator",
    "tests.fixtures.control_plane",
    "tests.fixtures.browser",
    "tests.fixtures.cli",
    "tests.fixtures.certs",
]


def pytest_configure(config: pytest.Config) -> None:
    """Unraisable warnings are errors (pyproject), except one CPython < 3.12.8 artefact.

    There a TLS connection whose close is still in flight when a test's event loop ends
    (aiohttp, under kubernetes_asyncio) is finalized with "unclosed transport"/"unclosed
    socket" although the client closed it; 3.12.8 fixed the SSL transport. Leaked
    processes, pipes and files stay errors.
    """
    if sys.version_info < (3, 12, 8):
        for finalizer in ("<socket.socket", "<function _SelectorTransport.__del__"):
            config.addinivalue_line(
                "filterwarnings",
                f"ignore:Exception ignored in. {finalizer}:pytest.PytestUnraisableExceptionWarning",
            )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    """With HODEI_TEST_NO_SKIPS=1 (set by scripts/test where it installed every tool), a test
    that skips because a tool is missing fails instead: a green run must have run everything."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("HODEI_TEST_NO_SKIPS") == "1":
        report.outcome = "failed"
        report.longrepr = f"skipped although HODEI_TEST_NO_SKIPS=1: {report.longrepr}"

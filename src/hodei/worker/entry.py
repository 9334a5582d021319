"""``hodei worker``: configure logging and run the agent until its result is delivered."""

from __future__ import annotations

import asyncio
import logging
import sys

from hodei.config import WorkerSettings


def run_worker(settings: WorkerSettings) -> int:
    """Run the agent to completion; the exit code is 0 once the result is delivered."""
    from hodei.worker.agent import run_agent

    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s hodei-worker %(levelname)s %(message)s",
    )
    return asyncio.run(run_agent(settings))

"""Metrics of a control plane with and without a /metrics endpoint."""

from __future__ import annotations

import subprocess
import sys

from hodei.server.metrics import Metrics


def test_exported_metrics_record_into_their_registry() -> None:
    metrics = Metrics()
    metrics.jobs_failed.labels("OOMKilled").inc()
    metrics.dispatch_latency.labels("RUNNING").observe(0.02)
    assert metrics.registry is not None
    assert (
        metrics.registry.get_sample_value("hodei_jobs_failed_total", {"reason": "OOMKilled"}) == 1
    )
    count = metrics.registry.get_sample_value(
        "hodei_dispatch_latency_seconds_count", {"phase": "RUNNING"}
    )
    assert count == 1


def test_unexported_metrics_have_no_registry_and_take_every_call() -> None:
    metrics = Metrics(exported=False)
    metrics.jobs_submitted.inc()
    metrics.job_retries.labels("WorkerLost").inc()
    metrics.worker_start_latency.labels("local").observe(0.1)
    metrics.count_restart("scheduler")
    metrics.watch(jobs=dict, queue_depth=lambda: 0, workers=dict)
    assert metrics.registry is None


def test_embedded_control_plane_does_not_load_prometheus_client() -> None:
    # Loading prometheus_client (and the HTTP modules it imports) is a visible part of a
    # one-command run's start-up; the embedded control plane serves no /metrics.
    probe = (
        "import sys\n"
        "from hodei.config.settings import ServerSettings\n"
        "from hodei.server.app import ControlPlane\n"
        "from hodei.store import MemoryStore\n"
        "ControlPlane(ServerSettings(), store=MemoryStore(), providers=[], serve_http=False)\n"
        "roots = ('prometheus_client', 'aiohttp')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in roots))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"

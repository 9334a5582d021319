"""The control plane's Prometheus metrics, in a registry of its own (no global state).

Gauges that describe "how many right now" (jobs by state, queue depth, workers by
provider and state) are computed at scrape time from callbacks, so they can never drift
from the control plane's own bookkeeping; latencies and failures are recorded as they
happen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hodei.domain.states import JobState

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

JobCounts = Callable[[], Mapping[JobState, int]]
WorkerCounts = Callable[[], Mapping[tuple[str, str], int]]


class _LiveCollector(Collector):
    def __init__(
        self, jobs: JobCounts, queue_depth: Callable[[], int], workers: WorkerCounts
    ) -> None:
        self._jobs = jobs
        self._queue_depth = queue_depth
        self._workers = workers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state = GaugeMetricFamily("hodei_jobs", "Jobs by state.", labels=["state"])
        counts = self._jobs()
        for state in JobState:
            by_state.add_metric([state.value], counts.get(state, 0))
        yield by_state
        yield GaugeMetricFamily(
            "hodei_queue_depth", "Jobs waiting for a worker (QUEUED).", value=self._queue_depth()
        )
        workers = GaugeMetricFamily(
            "hodei_workers", "Workers by provider and state.", labels=["provider", "state"]
        )
        for (provider, phase), count in sorted(self._workers().items()):
            workers.add_metric([provider, phase], count)
        yield workers


class Metrics:
    """Everything the control plane exports on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.dispatch_latency = Histogram(
            "hodei_dispatch_latency_seconds",
            "Time from submission to the job reaching a phase (STARTING, RUNNING).",
            ["phase"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.worker_start_latency = Histogram(
            "hodei_worker_start_latency_seconds",
            "Time from asking a provider for a worker to its agent registering.",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.jobs_failed = Counter(
            "hodei_jobs_failed",
            "Jobs that ended FAILED or TIMED_OUT, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.jobs_submitted = Counter(
            "hodei_jobs_submitted", "Jobs accepted by SubmitJob.", registry=self.registry
        )
        self.background_restarts = Counter(
            "hodei_background_restarts",
            "Background tasks that failed: loops restarted, one-shot tasks whose job was settled.",
            ["task"],
            registry=self.registry,
        )
        self.job_retries = Counter(
            "hodei_job_retries",
            "Jobs queued again after a platform failure.",
            ["reason"],
            registry=self.registry,
        )

    def count_restart(self, task: str) -> None:
        """A background task failed and was restarted (or its job settled)."""
        self.background_restarts.labels(task).inc()

    def watch(
        self, *, jobs: JobCounts, queue_depth: Callable[[], int], workers: WorkerCounts
    ) -> None:
        """Export the live gauges, read from these callbacks at each scrape."""
        self.registry.register(_LiveCollector(jobs, queue_depth, workers))

"""The control plane's Prometheus metrics, in a registry of its own (no global state).

Gauges that describe "how many right now" (jobs by state, queue depth, workers by
provider and state) are computed at scrape time from callbacks, so they can never drift
from the control plane's own bookkeeping; latencies and failures are recorded as they
happen.

A control plane that serves no ``/metrics`` (the embedded one of ``hodei run``) keeps
:class:`Metrics` unexported: its instruments record nothing and ``prometheus_client``
(with the HTTP machinery it imports) is never loaded, which is a visible share of a
one-command run's start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from hodei.domain.states import JobState

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

JobCounts = Callable[[], Mapping[JobState, int]]
WorkerCounts = Callable[[], Mapping[tuple[str, str], int]]


class Counting(Protocol):
    """A counter (``prometheus_client.Counter`` or the unexported stand-in)."""

    def labels(self, *values: Any) -> Any: ...
    def inc(self, amount: float = 1) -> None: ...


class Timing(Protocol):
    """A histogram (``prometheus_client.Histogram`` or the unexported stand-in)."""

    def labels(self, *values: Any) -> Any: ...
    def observe(self, amount: float) -> None: ...


class _Unexported:
    """An instrument of a control plane without ``/metrics``: it records nothing, since
    nothing could read it."""

    def labels(self, *values: Any) -> _Unexported:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


_UNEXPORTED = _Unexported()


class _LiveCollector:
    def __init__(
        self, jobs: JobCounts, queue_depth: Callable[[], int], workers: WorkerCounts
    ) -> None:
        self._jobs = jobs
        self._queue_depth = queue_depth
        self._workers = workers

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from prometheus_client.core import GaugeMetricFamily

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
    """Everything the control plane exports on ``/metrics``.

    ``exported=False``: nothing serves ``/metrics``; ``registry`` is None and the
    instruments record nothing (``prometheus_client`` is not imported)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, exported: bool = True) -> None:
        self.registry: CollectorRegistry | None = None
        self.dispatch_latency: Timing = _UNEXPORTED
        self.worker_start_latency: Timing = _UNEXPORTED
        self.jobs_failed: Counting = _UNEXPORTED
        self.jobs_submitted: Counting = _UNEXPORTED
        self.background_restarts: Counting = _UNEXPORTED
        self.job_retries: Counting = _UNEXPORTED
        if exported:
            self._export(registry)

    def _export(self, registry: CollectorRegistry | None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

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
        """Export the live gauges, read from these callbacks at each scrape (nothing when
        unexported)."""
        if self.registry is not None:
            self.registry.register(_LiveCollector(jobs, queue_depth, workers))

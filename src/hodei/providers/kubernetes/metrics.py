"""The provider's Prometheus metrics, registered into the control plane's registry.

Each control plane owns one ``CollectorRegistry`` (no global registry), so two control
planes in one test process don't collide; the provider adds its series to the registry
it is given, or to a private one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ProviderMetrics:
    """Counters and histograms of the Kubernetes provider."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.pods_created = Counter("hodei_k8s_pods_created", "Worker pods created.", registry=r)
        self.pods_deleted = Counter("hodei_k8s_pods_deleted", "Worker pods deleted.", registry=r)
        self.api_requests = Counter(
            "hodei_k8s_api_requests",
            "Kubernetes API requests by verb and HTTP code ('error': no answer).",
            ["verb", "code"],
            registry=r,
        )
        self.watch_restarts = Counter(
            "hodei_k8s_watch_restarts",
            "Pod watch restarts by reason (closed, expired, stalled, error).",
            ["reason"],
            registry=r,
        )
        self.worker_failures = Counter(
            "hodei_k8s_worker_failures",
            "Worker pods that could not run or ended abnormally, by reason.",
            ["reason"],
            registry=r,
        )
        self.pod_start_seconds = Histogram(
            "hodei_k8s_pod_start_seconds",
            "Seconds from pod create to its container running.",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.pods_tracked = Gauge(
            "hodei_k8s_pods_tracked", "Worker pods in the watch cache.", registry=r
        )

    def observe_request(self, verb: str, code: str) -> None:
        self.api_requests.labels(verb=verb, code=code).inc()

    def watch_restarted(self, reason: str) -> None:
        self.watch_restarts.labels(reason=reason).inc()

    def request_counts(self) -> dict[tuple[str, str], int]:
        """``(verb, code) -> n`` as counted so far (for benchmarks and tests)."""
        counts: dict[tuple[str, str], int] = {}
        for metric in self.api_requests.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    key = (sample.labels["verb"], sample.labels["code"])
                    counts[key] = int(sample.value)
        return counts

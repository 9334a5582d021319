"""The Kubernetes provider: one worker pod per job attempt, observed through one watch.

Creating a worker is one pod create (its name is derived from the worker id, so a
retried create answers 409 and never makes a twin); ending it is one delete. Everything
in between comes from the shared :class:`PodWatcher`: each pod change is diagnosed
(:func:`diagnose`) and, when the worker's status changes, handed to the control plane's
listener in order. A pod stuck Pending beyond ``HODEI_K8S_PENDING_TIMEOUT`` fails with
the latest diagnosis and is deleted. A worker container that exits non-zero (the agent
failed) costs one ``pods/log`` read so the failure carries the container's last lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any, Protocol

from hodei.config.settings import KubernetesSettings
from hodei.domain import reasons
from hodei.domain.clock import SYSTEM_CLOCK, Clock
from hodei.domain.ids import JobId, WorkerId
from hodei.domain.jobs import JobSpec, SpecError
from hodei.providers.base import (
    Health,
    Origin,
    ProviderError,
    StatusListener,
    WorkerPhase,
    WorkerRequest,
    WorkerStatus,
)
from hodei.providers.kubernetes.diagnosis import Diagnosis, diagnose, essentials
from hodei.providers.kubernetes.errors import Cause, KubernetesApiError
from hodei.providers.kubernetes.metrics import ProviderMetrics
from hodei.providers.kubernetes.pods import (
    CONTAINER_NAME,
    LABEL_JOB_ID,
    LABEL_WORKER_ID,
    label_selector,
    pod_name,
)
from hodei.providers.kubernetes.profiles import Profiles, profile_pod
from hodei.providers.kubernetes.retry import WAIT_POLICY, RetryPolicy, wait_delay
from hodei.providers.kubernetes.watch import PodEvent, PodSource, PodWatcher, WatchTiming
from hodei.supervision import Background

log = logging.getLogger(__name__)

DELETE_GRACE_SECONDS = 10
LOG_TAIL_LINES = 20
# A finished pod the control plane has not deleted this long after it ended (a delete
# that failed, a control plane that died in between) is removed by the provider itself.
FINISHED_POD_TTL = 300.0


class PodApi(PodSource, Protocol):
    """What the provider needs from the client module (a fake can stand in)."""

    namespace: str
    server: str

    async def create_pod(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def delete_pod(self, name: str, *, grace_period_seconds: int) -> None: ...

    async def list_pods(
        self,
        *,
        label_selector: str,
        limit: int | None = None,
        continue_token: str | None = None,
        retries: bool = True,
    ) -> dict[str, Any]: ...

    async def read_pod_log(self, name: str, *, container: str, tail_lines: int) -> str: ...

    async def close(self) -> None: ...


def _labels(pod: dict[str, Any]) -> dict[str, str]:
    return dict((pod.get("metadata") or {}).get("labels") or {})


def worker_status(pod: dict[str, Any], diagnosis: Diagnosis) -> WorkerStatus:
    """A pod and its diagnosis as the provider interface's value."""
    labels = _labels(pod)
    job = labels.get(LABEL_JOB_ID)
    return WorkerStatus(
        worker_id=WorkerId(labels.get(LABEL_WORKER_ID, "")),
        job_id=JobId(job) if job else None,
        phase=diagnosis.phase,
        reason=diagnosis.reason,
        message=diagnosis.message,
        exit_code=diagnosis.exit_code,
        name=(pod.get("metadata") or {}).get("name"),
    )


def pod_origin(pod: Mapping[str, Any] | None) -> Origin:
    """Where the agent of ``pod`` may connect from: its ``status.podIP`` once the pod's
    phase is Running (Kubernetes PodStatus)."""
    status = (pod or {}).get("status") or {}
    return Origin(
        bound=True,
        running=status.get("phase") == "Running",
        address=status.get("podIP") or None,
    )


def pending_timeout_status(status: WorkerStatus, timeout: float) -> WorkerStatus:
    """The failure for a worker whose pod stayed Pending too long, keeping its diagnosis."""
    waited = f"the worker pod stayed Pending for {timeout:g}s (HODEI_K8S_PENDING_TIMEOUT)"
    reason = status.reason if status.reason in reasons.PLATFORM_REASONS else None
    message = f"{status.message}; {waited}" if status.message else waited
    return replace(
        status,
        phase=WorkerPhase.FAILED,
        reason=reason or reasons.PENDING_TIMEOUT,
        message=message,
    )


DELETED_BY_OTHERS = (
    "the worker pod was deleted by someone other than Hodei (kubectl delete pod, a "
    "controller, or a node going away)"
)


def deleted_by_others(diagnosis: Diagnosis) -> Diagnosis:
    """What a deletion Hodei did not ask for means for a pod that has not finished: the
    worker is lost (a disruption, retried), whatever its container is still doing."""
    if diagnosis.phase in (WorkerPhase.PENDING, WorkerPhase.RUNNING):
        return Diagnosis(WorkerPhase.FAILED, reasons.WORKER_LOST, DELETED_BY_OTHERS)
    return diagnosis


QUOTA_WAIT = "waiting for quota"


def waiting_status(request: WorkerRequest, exc: KubernetesApiError) -> WorkerStatus:
    """The PENDING status of a worker whose pod create waits: for quota (the job is
    QUEUED until the pod exists) or for the API server to answer again."""
    if exc.cause is Cause.QUOTA_EXCEEDED:
        reason, message = reasons.QUOTA_EXCEEDED, f"{QUOTA_WAIT}: {exc}"
    else:
        reason, message = reasons.PROVIDER_ERROR, f"Kubernetes API busy, retrying: {exc}"
    name = pod_name(request.worker_id)
    return WorkerStatus(
        request.worker_id, request.job_id, WorkerPhase.PENDING, reason, message, name=name
    )


def gave_up(exc: KubernetesApiError, budget: float) -> KubernetesApiError:
    """The error a create ends with once waiting has used up the pending budget."""
    waited = f"gave up after {budget:g}s (HODEI_K8S_PENDING_TIMEOUT)"
    text = f"{QUOTA_WAIT}: {exc}" if exc.cause is Cause.QUOTA_EXCEEDED else str(exc)
    return KubernetesApiError(
        f"{text}; {waited}",
        status=exc.status,
        api_reason=exc.api_reason,
        verb=exc.verb,
        resource=exc.resource,
        namespace=exc.namespace,
        cause=exc.cause,
    )


class KubernetesProvider:
    """Implements :class:`hodei.providers.base.Provider` with pods."""

    def __init__(
        self,
        *,
        settings: KubernetesSettings,
        api: PodApi,
        instance: str,
        metrics: ProviderMetrics | None = None,
        clock: Clock = SYSTEM_CLOCK,
        watch_timing: WatchTiming | None = None,
        profiles: Profiles | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rand: Callable[[], float] = random.random,
        wait_policy: RetryPolicy = WAIT_POLICY,
        loops: Background | None = None,
    ) -> None:
        """``clock`` reads time and paces housekeeping and the watch; ``sleep`` (default:
        the clock's) paces a pod create that waits for quota or the API server."""
        self._settings = settings
        self._sleep = sleep or clock.sleep
        self._rand = rand
        self._wait_policy = wait_policy
        # The control plane's supervision: a loop that fails is restarted and reported.
        self._loops = loops or Background()
        self.profiles = profiles or Profiles()
        self._api = api
        self._instance = instance
        self.metrics = metrics or ProviderMetrics()
        self._clock = clock
        self._watcher = PodWatcher(
            api,
            selector=label_selector(instance),
            on_event=self._on_pod_event,
            on_restart=self.metrics.watch_restarted,
            transform=essentials,
            timing=watch_timing,
            sleep=clock.sleep,
            clock=clock.monotonic,
        )
        self._listener: StatusListener | None = None
        self._outbox: asyncio.Queue[WorkerStatus] = asyncio.Queue()
        self._last: dict[WorkerId, WorkerStatus] = {}
        self._created_at: dict[WorkerId, float] = {}
        self._pending_since: dict[WorkerId, float] = {}
        self._finished_since: dict[WorkerId, float] = {}
        self.finished_pod_ttl = FINISHED_POD_TTL
        self._expired: set[WorkerId] = set()
        self._origin_waiters: dict[WorkerId, asyncio.Event] = {}  # registrations waiting
        self._held: dict[WorkerId, list[WorkerStatus]] = {}
        # Pods this provider asked to delete: a deletion it did not ask for is a disruption.
        self._deleting: set[WorkerId] = set()
        self._creating: set[WorkerId] = set()  # creates in flight (waiting for quota...)
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def name(self) -> str:
        return "kubernetes"

    @property
    def capacity(self) -> int | None:
        return self._settings.max_workers

    @property
    def cache_size(self) -> int:
        return len(self._watcher.cache)

    def check_spec(self, spec: JobSpec) -> None:
        """Refuse a job naming a profile that does not exist (SpecError lists those that do),
        or asking for a terminal in its own image: the launcher there runs the command on
        fifos, and a pseudo-terminal cannot be handed across containers."""
        self.profiles.pick(spec.profile)
        own_image = spec.image is not None and spec.image != self._settings.worker_image
        if own_image and spec.tty:
            raise SpecError(
                "image: -t is not available for a job in its own image (-i and --workdir "
                "are); run it without --image (in the worker image) for a terminal"
            )

    # -- lifecycle -------------------------------------------------------------------

    async def start(self, listener: StatusListener) -> None:
        """List the worker pods (raising on a permission or namespace problem), then watch."""
        self._listener = listener
        listed: list[str] = [await self._watcher.relist()]

        async def watch() -> None:
            # The first run goes on from the list just made; a restarted one lists again.
            version = listed.pop() if listed else await self._watcher.relist()
            await self._watcher.run(version)

        self._supervise("kubernetes-watch", watch)
        self._supervise("kubernetes-dispatch", self._dispatch)
        self._supervise("kubernetes-housekeeping", self._housekeeping)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._api.close()

    def _supervise(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self._own(self._loops.supervise(name, run))

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._own(self._loops.spawn(coro, name=f"kubernetes-{name}", kind="kubernetes-log-tail"))

    def _own(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self) -> None:
        """Deliver statuses to the listener one at a time, in the order they were seen."""
        while True:
            status = await self._outbox.get()
            if self._listener is None:
                continue
            try:
                await self._listener(status)
            except Exception:  # the listener's failure must not stop status delivery
                log.exception("status listener failed for %s", status.worker_id)

    # -- workers ---------------------------------------------------------------------

    async def create_worker(self, request: WorkerRequest) -> WorkerStatus:
        """Create the worker's pod; a pod already there (a retried create) is success."""
        wid = request.worker_id
        try:
            template = self.profiles.pick(request.profile)
            body = profile_pod(request, self._settings, template, instance=self._instance)
        except (SpecError, ValueError) as exc:  # a profile gone since submit (restart)
            raise ProviderError(str(exc), reason=reasons.PROVIDER_ERROR) from None
        now = self._clock.monotonic()
        self._created_at.setdefault(wid, now)
        self._pending_since.setdefault(wid, now)
        try:
            pod = await self._create_waiting(request, body)
        except KubernetesApiError as exc:
            if not exc.already_exists:
                self._forget(wid)
                raise
            log.info("worker pod %s already exists (retried create)", pod_name(wid))
        else:
            if pod is None:  # deleted (the job cancelled) while waiting to create it
                self._forget(wid)
                raise ProviderError("the worker was deleted before its pod could be created")
            self.metrics.pods_created.inc()
            slim = essentials(pod)
            if self._watcher.cache.add_if_absent(slim):
                self._last.setdefault(wid, worker_status(slim, diagnose(slim)))
        return self._last.get(wid) or WorkerStatus(
            wid, request.job_id, WorkerPhase.PENDING, name=pod_name(wid)
        )

    async def _create_waiting(
        self, request: WorkerRequest, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Create the pod, waiting out what can end by itself (see ``errors.CAUSES``):
        throttling and outages, and an exhausted ResourceQuota, with backoff honouring
        Retry-After, until HODEI_K8S_PENDING_TIMEOUT. While it waits, a PENDING status says
        why. Returns ``None`` if the worker was deleted meanwhile; raises the last error
        (its message saying how long it waited) when the budget is spent."""
        wid = request.worker_id
        self._creating.add(wid)
        try:
            return await self._create_until(request, body)
        finally:
            self._creating.discard(wid)

    async def _create_until(
        self, request: WorkerRequest, body: dict[str, Any]
    ) -> dict[str, Any] | None:
        wid = request.worker_id
        budget = self._settings.pending_timeout
        started = self._clock.monotonic()
        retry = 0
        while True:
            if wid in self._deleting:
                return None
            try:
                return await self._api.create_pod(body)
            except KubernetesApiError as exc:
                if not exc.retryable and exc.cause is not Cause.QUOTA_EXCEEDED:
                    raise
                elapsed = self._clock.monotonic() - started
                delay = wait_delay(
                    self._wait_policy,
                    retry=retry,
                    rand=self._rand(),
                    retry_after=exc.retry_after,
                    elapsed=elapsed,
                    budget=budget,
                )
                if delay is None:
                    raise gave_up(exc, budget) from None
                self._push(waiting_status(request, exc))
                log.info("worker pod %s: %s; trying again in %.1fs", pod_name(wid), exc, delay)
                await self._sleep(delay)
                retry += 1

    async def delete_worker(self, worker_id: WorkerId) -> None:
        """Delete the worker's pod; an absent pod is not an error."""
        self._pending_since.pop(worker_id, None)
        self._deleting.add(worker_id)
        try:
            await self._api.delete_pod(
                pod_name(worker_id), grace_period_seconds=DELETE_GRACE_SECONDS
            )
        except KubernetesApiError as exc:
            if not exc.not_found:
                raise
            if worker_id not in self._creating:  # no DELETED event will forget it
                self._deleting.discard(worker_id)
        else:
            self.metrics.pods_deleted.inc()

    def status(self, worker_id: WorkerId) -> WorkerStatus | None:
        """The last status derived from the watch cache; no API call."""
        known = self._last.get(worker_id)
        if known is not None:
            return known
        pod = self._watcher.cache.get(pod_name(worker_id))
        return worker_status(pod, diagnose(pod)) if pod is not None else None

    async def origin(self, worker_id: WorkerId, *, wait: float) -> Origin:
        """The pod's IP while it is Running, from the watch cache (see :class:`Origin`).

        An agent can dial before the watch has reported its pod Running: wait up to
        ``wait`` seconds for the event rather than refuse it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            found = pod_origin(self._watcher.cache.get(pod_name(worker_id)))
            left = deadline - loop.time()
            if (found.running and found.address) or left <= 0:
                return found
            event = self._origin_waiters.setdefault(worker_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)

    async def list_workers(self) -> list[WorkerStatus]:
        """Every worker pod of this instance in the cache (synced at start)."""
        return [self._current(pod) for pod in self._watcher.cache.pods()]

    async def delete_orphans(self, keep: Callable[[WorkerId], bool]) -> list[WorkerId]:
        """Delete this instance's pods whose worker ``keep`` rejects; return their ids."""
        workers = await self.list_workers()
        doomed = [s.worker_id for s in workers if s.worker_id and not keep(s.worker_id)]
        for worker_id in doomed:
            await self.delete_worker(worker_id)
        return doomed

    async def health(self) -> Health:
        """Ready when a one-item list of worker pods succeeds (API reachable, RBAC present)."""
        try:
            await self._api.list_pods(
                label_selector=label_selector(self._instance), limit=1, retries=False
            )
        except KubernetesApiError as exc:
            return Health(False, str(exc))
        return Health(True, f"Kubernetes API {self._api.server}, namespace {self._api.namespace}")

    # -- status from the watch -------------------------------------------------------

    def _current(self, pod: dict[str, Any]) -> WorkerStatus:
        status = worker_status(pod, diagnose(pod))
        known = self._last.get(status.worker_id)
        if known is not None and known.phase == status.phase and known.reason == status.reason:
            return known  # keeps details added later (log tail, pending timeout)
        return status

    def _on_pod_event(self, event: PodEvent) -> None:
        self.metrics.pods_tracked.set(len(self._watcher.cache))
        labels = _labels(event.pod)
        wid = WorkerId(labels.get(LABEL_WORKER_ID, ""))
        if not wid:
            return
        waiting = self._origin_waiters.pop(wid, None)
        if waiting is not None:
            waiting.set()
        if event.type == "DELETED":
            base = self._last.get(wid) or worker_status(event.pod, diagnose(event.pod))
            self._push(replace(base, phase=WorkerPhase.GONE))
            if wid not in self._held:  # else forgotten once the held statuses are out
                self._forget(wid)
            return
        if wid in self._expired:
            return  # already failed by the pending timeout; only GONE is still news
        diagnosis = diagnose(event.pod)
        # A pod being deleted is on its way out: no pending timeout, no log read for it.
        deleting = bool((event.pod.get("metadata") or {}).get("deletionTimestamp"))
        if deleting and wid not in self._deleting:
            diagnosis = deleted_by_others(diagnosis)
        status = worker_status(event.pod, diagnosis)
        if diagnosis.phase is WorkerPhase.PENDING and not deleting:
            self._pending_since.setdefault(wid, self._clock.monotonic())
        else:
            self._pending_since.pop(wid, None)
        if diagnosis.phase in (WorkerPhase.EXITED, WorkerPhase.FAILED):
            self._finished_since.setdefault(wid, self._clock.monotonic())
        if diagnosis.phase is WorkerPhase.RUNNING and wid in self._created_at:
            self.metrics.pod_start_seconds.observe(
                self._clock.monotonic() - self._created_at.pop(wid)
            )
        if status.reason == reasons.CONTAINER_EXITED and not deleting and wid not in self._held:
            self._held[wid] = []
            self._spawn(self._report_with_log(event.pod, status), f"log-{wid}")
            return
        self._push(status)

    def _push(self, status: WorkerStatus) -> None:
        wid = status.worker_id
        if wid in self._held:
            self._held[wid].append(status)
            return
        last = self._last.get(wid)
        if last is None and status.phase is WorkerPhase.PENDING and status.reason is None:
            # A pod just seen and waiting for nothing in particular is no news: the
            # create already answered PENDING, whichever of create and watch came first.
            self._last[wid] = status
            return
        if (
            last is not None
            and (last.phase, last.reason) == (status.phase, status.reason)
            and (status.phase is not WorkerPhase.PENDING or last.message == status.message)
        ):
            return
        self._last[wid] = status
        if status.reason and status.phase in (WorkerPhase.FAILED, WorkerPhase.EXITED):
            self.metrics.worker_failures.labels(reason=status.reason).inc()
        self._outbox.put_nowait(status)

    def _forget(self, wid: WorkerId) -> None:
        self._last.pop(wid, None)
        self._created_at.pop(wid, None)
        self._pending_since.pop(wid, None)
        self._finished_since.pop(wid, None)
        self._held.pop(wid, None)
        self._expired.discard(wid)
        self._deleting.discard(wid)

    async def _report_with_log(self, pod: dict[str, Any], status: WorkerStatus) -> None:
        """Attach the container's last lines to an abnormal exit, then release held statuses."""
        name = str((pod.get("metadata") or {}).get("name", ""))
        tail = ""
        try:
            tail = await self._api.read_pod_log(
                name, container=CONTAINER_NAME, tail_lines=LOG_TAIL_LINES
            )
        except KubernetesApiError as exc:
            log.info("no log tail for %s: %s", name, exc)
        if tail.strip():
            # The tail replaces any termination message (it holds the same lines).
            exited = f"the worker container exited with code {status.exit_code}"
            message = f"{exited}; last lines of its log:\n{tail.rstrip()}"
            status = replace(status, message=message)
        held = self._held.pop(status.worker_id, [])
        self._push(status)
        for later in held:
            self._push(later)
            if later.phase is WorkerPhase.GONE:
                self._forget(later.worker_id)

    # -- pending timeout -------------------------------------------------------------

    async def _housekeeping(self) -> None:
        """Fail pods Pending too long; remove finished pods nobody deleted."""
        timeout = self._settings.pending_timeout
        period = min(1.0, timeout / 4)
        while True:
            await self._clock.sleep(period)
            now = self._clock.monotonic()
            for wid, since in list(self._pending_since.items()):
                if now - since >= timeout:
                    await self._expire(wid)
            for wid, since in list(self._finished_since.items()):
                if now - since >= self.finished_pod_ttl:
                    await self._remove_finished(wid)

    async def _remove_finished(self, wid: WorkerId) -> None:
        del self._finished_since[wid]
        log.info("deleting finished worker pod %s left behind", pod_name(wid))
        try:
            await self.delete_worker(wid)
        except KubernetesApiError as exc:
            log.warning("could not delete finished worker pod %s: %s", pod_name(wid), exc)

    async def _expire(self, wid: WorkerId) -> None:
        self._pending_since.pop(wid, None)
        pod = self._watcher.cache.get(pod_name(wid))
        if pod is None:
            return
        failed = pending_timeout_status(self._current(pod), self._settings.pending_timeout)
        self._push(failed)
        self._expired.add(wid)
        try:
            await self.delete_worker(wid)
        except KubernetesApiError as exc:
            log.warning("could not delete pending worker pod %s: %s", pod_name(wid), exc)

"""The emulator's scheduler and kubelet for one node, with two container runtimes.

``Kubelet(store, images=..., runtime="process"|"podman", node_cpu=..., node_memory=...,
workdir=...)`` is constructed and started by the emulator when it runs with ``--kubelet``.
The parts: :mod:`.scheduler` (placement, pure), :mod:`.status` (pod status, pure),
:mod:`.images`, :mod:`.env`, :mod:`.launch` (container configuration), :mod:`.pod_worker`
(one pod's life), :mod:`.runtime` (processes or podman), :mod:`.kubelet` (the loop).

Where it deliberately differs from a real node:
- Every pod is run as ``restartPolicy: Never``: containers are never restarted, whatever
  the policy says (Hodei's worker pods use Never). Init containers, probes, lifecycle
  hooks, ephemeral containers and preemption are not implemented.
- Images are "pulled" from the list given with ``--image``; others fail with
  ``ErrImagePull`` then ``ImagePullBackOff`` (after ``Timings.image_back_off``, 1 s) and
  stay so. ``CreateContainerConfigError`` is retried every ``Timings.config_retry`` (1 s).
- A container needs an explicit ``command`` (images have no entrypoint metadata here):
  without one it waits with ``CreateContainerError`` / ``no command specified``.
- The process runtime runs commands from the host's PATH (PATH and HOME come from the
  emulator process), ignores securityContext and network settings, maps volumes to
  directories (a ``workingDir`` equal to a volume's mountPath runs in that directory, and
  an env value naming a path under a mountPath names it in the volume's directory),
  and enforces memory limits by sampling RSS every 100 ms. podIP is the host's
  127.0.0.1 for both runtimes (pods share the host network).
"""

from kube_emulator.kubelet.context import NODE_NAME, Timings
from kube_emulator.kubelet.kubelet import Kubelet
from kube_emulator.kubelet.scheduler import Taint

__all__ = ["NODE_NAME", "Kubelet", "Taint", "Timings"]

"""A Kubernetes API emulator for tests: kube-apiserver behaviour over real HTTPS.

No cluster can run where Hodei is tested, yet the Kubernetes provider, the manifests and
the install script must meet the real client libraries and the real ``kubectl``. This
package serves the parts of the Kubernetes API Hodei touches (discovery, OpenAPI for
kubectl, core/apps/rbac/networking/authorization resources, watches, pod logs, RBAC,
protobuf request bodies) with kube-apiserver's semantics, plus fault injection and
request counting for tests. ``kube_emulator.testing`` runs it in-process;
``scripts/kube-emulator`` runs it standalone; ``kube_emulator.kubelet`` optionally runs pods.
It is test infrastructure, not part of the ``hodei`` wheel.
"""

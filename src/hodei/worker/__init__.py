"""The worker agent (``hodei worker``): runs one job for the control plane and reports back.

It imports only the domain, the settings and the protocol, so it starts quickly and can
run in a minimal worker image. Entry point: :func:`hodei.worker.entry.run_worker`.
"""

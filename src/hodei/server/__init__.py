"""The control plane: gRPC job and worker services, scheduler, store, log hub, metrics.

Start one with :class:`hodei.server.app.ControlPlane`.
"""

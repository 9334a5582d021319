"""Container runtimes of the emulator's kubelet: local processes and podman."""

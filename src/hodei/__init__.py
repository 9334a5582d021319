"""Hodei: run commands on ephemeral workers, local processes or Kubernetes pods."""

__version__ = "0.1.0"

"""Identifiers as distinct types so a job id is never passed where a worker id is expected."""

from __future__ import annotations

import secrets
from typing import NewType

JobId = NewType("JobId", str)
WorkerId = NewType("WorkerId", str)

# Short lowercase ids: they become parts of pod names (RFC 1123 labels, ≤63 chars).
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _token(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def new_job_id() -> JobId:
    """A fresh job id such as ``j-4k2m9x0q1z``."""
    return JobId("j-" + _token(10))


def new_worker_id() -> WorkerId:
    """A fresh worker id such as ``w-8d0s1l2k3j``; usable in a pod name."""
    return WorkerId("w-" + _token(10))

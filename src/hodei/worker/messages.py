"""Plain values for what the agent and the control plane say to each other.

The agent's logic works on these instead of protobuf classes, so it can be read and
tested without the generated code; :mod:`hodei.worker.connection` converts at the edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Stream = Literal["stdout", "stderr"]


@dataclass(frozen=True)
class Chunk:
    """A piece of one output stream; ``sequence`` counts from 1 per job, without gaps."""

    sequence: int
    stream: Stream
    data: bytes


# Agent -> control plane.


@dataclass(frozen=True)
class Register:
    worker_id: str
    token: str = ""
    resume_token: str = ""


@dataclass(frozen=True)
class JobStarted:
    job_id: str
    pid: int


@dataclass(frozen=True)
class LogBatch:
    job_id: str
    chunks: tuple[Chunk, ...]


@dataclass(frozen=True)
class JobResult:
    job_id: str
    exit_code: int
    timed_out: bool = False
    cancelled: bool = False
    error: str = ""
    last_sequence: int = 0


@dataclass(frozen=True)
class Heartbeat:
    pass


Outgoing = Register | JobStarted | LogBatch | JobResult | Heartbeat

# Control plane -> agent.


@dataclass(frozen=True)
class Registered:
    resume_token: str


@dataclass(frozen=True)
class Assignment:
    """The job to run: the argv to execute and the variables to add to the environment."""

    job_id: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class CancelJob:
    job_id: str


@dataclass(frozen=True)
class LogAck:
    job_id: str
    sequence: int


@dataclass(frozen=True)
class ResultAck:
    job_id: str


Incoming = Registered | Assignment | CancelJob | LogAck | ResultAck

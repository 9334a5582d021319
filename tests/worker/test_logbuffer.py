"""Batching, numbering, acknowledgement and flow control of the agent's output buffer."""

from __future__ import annotations

from hodei.domain.ids import JobId
from hodei.domain.logs import LogStream
from hodei.worker.logbuffer import LogBuffer

JOB = JobId("j-1")
OUT, ERR = LogStream.STDOUT, LogStream.STDERR


def test_small_output_waits_for_linger_then_goes_as_one_batch() -> None:
    buffer = LogBuffer(max_batch_bytes=100, linger=0.05)
    buffer.add(OUT, b"a", now=10.0)
    buffer.add(OUT, b"b", now=10.01)
    assert not buffer.ready(now=10.04)
    assert buffer.flush_at() == 10.05
    assert buffer.ready(now=10.05)
    batch = buffer.take_batch(JOB)
    assert [(c.job_id, c.sequence, c.stream, c.data) for c in batch] == [(JOB, 1, OUT, b"ab")]
    assert buffer.flush_at() is None


def test_full_batch_is_ready_at_once_and_split_at_the_size() -> None:
    buffer = LogBuffer(max_batch_bytes=4, max_message_bytes=4, linger=10)
    buffer.add(OUT, b"123456", now=0)
    assert buffer.ready(now=0)
    assert [c.data for c in buffer.take_batch(JOB)] == [b"1234"]
    assert [(c.sequence, c.data) for c in buffer.take_batch(JOB)] == [(2, b"56")]
    assert buffer.last_sequence == 2


def test_streams_stay_apart_and_in_order() -> None:
    buffer = LogBuffer(max_batch_bytes=100)
    buffer.add(OUT, b"o1", now=0)
    buffer.add(ERR, b"e1", now=0)
    buffer.add(OUT, b"o2", now=0)
    batch = buffer.take_batch(JOB)
    assert [(c.sequence, c.stream, c.data) for c in batch] == [
        (1, OUT, b"o1"),
        (2, ERR, b"e1"),
        (3, OUT, b"o2"),
    ]


def test_unacked_batches_are_kept_for_resending_until_acked() -> None:
    buffer = LogBuffer(max_batch_bytes=2, max_message_bytes=2)
    buffer.add(OUT, b"aabbcc", now=0)
    first, second, third = (buffer.take_batch(JOB) for _ in range(3))
    assert buffer.in_flight() == [first, second, third]
    buffer.ack(2)
    assert buffer.in_flight() == [third]
    assert not buffer.drained()
    buffer.ack(3)
    assert buffer.drained()


def test_window_limits_what_is_held_until_acks_arrive() -> None:
    buffer = LogBuffer(max_batch_bytes=4, max_message_bytes=4, window_bytes=8)
    buffer.add(OUT, b"12345678", now=0)
    assert not buffer.has_room()
    buffer.take_batch(JOB)
    assert not buffer.has_room()  # in flight still counts
    buffer.ack(1)
    assert buffer.has_room()
    assert buffer.held_bytes == 4


def test_empty_output_is_ignored() -> None:
    buffer = LogBuffer()
    buffer.add(OUT, b"", now=0)
    assert buffer.flush_at() is None
    assert buffer.take_batch(JOB) == ()


def test_output_that_piled_up_goes_in_one_bigger_message() -> None:
    buffer = LogBuffer(max_batch_bytes=4, max_message_bytes=10, linger=10)
    buffer.add(OUT, b"1234", now=0)
    assert buffer.ready(now=0)
    buffer.add(OUT, b"5678", now=0)
    buffer.add(ERR, b"abcd", now=0)
    batch = buffer.take_batch(JOB)
    assert [(c.sequence, c.stream, c.data) for c in batch] == [
        (1, OUT, b"12345678"),
        (2, ERR, b"ab"),
    ]
    assert [c.data for c in buffer.take_batch(JOB)] == [b"cd"]

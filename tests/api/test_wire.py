from __future__ import annotations

import pytest

from hodei.api.v1 import jobs_pb2, types_pb2, worker_pb2
from hodei.api.wire import Unparsable, lenient_parser, locate_bad_utf8, request_type

SPEC = types_pb2.JobSpec(command=["echo", "ab"], env={"K": "vv"}, labels={"kk": "v"}, image="img")
GOOD = jobs_pb2.SubmitJobRequest(spec=SPEC).SerializeToString()


@pytest.mark.parametrize(
    ("good", "bad", "where"),
    [
        (b"ab", b"a\xff", "spec.command[1]"),
        (b"vv", b"v\xff", "spec.env['K']"),
        (b"kk", b"k\xff", "spec.labels (a key)"),
        (b"img", b"im\xc3", "spec.image"),
    ],
)
def test_the_field_with_invalid_utf8_is_named(good: bytes, bad: bytes, where: str) -> None:
    data = GOOD.replace(good, bad)
    assert locate_bad_utf8(jobs_pb2.SubmitJobRequest, data) == where
    assert lenient_parser(jobs_pb2.SubmitJobRequest)(data) == Unparsable(
        f"{where}: not valid UTF-8"
    )


def test_valid_bytes_parse_to_the_generated_message() -> None:
    parsed = lenient_parser(jobs_pb2.SubmitJobRequest)(GOOD)
    assert parsed == jobs_pb2.SubmitJobRequest(spec=SPEC)


def test_bytes_that_are_no_message_at_all() -> None:
    assert lenient_parser(jobs_pb2.SubmitJobRequest)(b"\xff\xff\xff") == Unparsable(
        "the request is not a valid SubmitJobRequest"
    )


def test_nested_worker_messages_and_bytes_fields() -> None:
    chunk = types_pb2.LogChunk(job_id="jj", sequence=1, data=b"\xff\xfe")  # bytes may be anything
    data = worker_pb2.WorkerMessage(logs=worker_pb2.LogBatch(chunks=[chunk])).SerializeToString()
    assert locate_bad_utf8(worker_pb2.WorkerMessage, data) is None
    assert locate_bad_utf8(worker_pb2.WorkerMessage, data.replace(b"jj", b"j\xfe")) == (
        "logs.chunks[0].job_id"
    )


def test_request_types_come_from_the_service_descriptors() -> None:
    assert request_type("hodei.v1.JobService", "SubmitJob") is jobs_pb2.SubmitJobRequest
    assert request_type("hodei.v1.WorkerService", "Connect") is worker_pb2.WorkerMessage

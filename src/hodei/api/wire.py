"""Request bytes that protobuf refuses to parse, reported by field instead of as UNKNOWN.

gRPC parses a request before any handler runs; when protobuf refuses the bytes (a
``string`` field that is not valid UTF-8, a truncated message) grpcio answers UNKNOWN
with protobuf's internal text, and the client never learns which field was wrong. The
servers therefore parse with :func:`lenient_parser`, which hands such a request to the
handler as an :class:`Unparsable` value naming the field, e.g. ``spec.command[1]: not
valid UTF-8``; the handler answers INVALID_ARGUMENT with it.

The field is found by parsing the same bytes with a twin of the message type in which
every ``string`` is ``bytes`` (built once from the generated descriptors, so it can never
drift from the ``.proto``), and decoding each former string field to find the bad one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.message import DecodeError, Message

__all__ = ["Unparsable", "lenient_parser", "locate_bad_utf8", "request_type"]

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Unparsable:
    """A request whose bytes protobuf refused; ``problem`` names the field when it can."""

    problem: str


def lenient_parser(message_class: type[M]) -> Callable[[bytes], M | Unparsable]:
    """A request deserializer for gRPC that never raises: bad bytes become Unparsable."""

    def parse(data: bytes) -> M | Unparsable:
        try:
            parsed: M = message_class.FromString(data)
        except DecodeError:
            where = locate_bad_utf8(message_class, data)
            if where is not None:
                return Unparsable(f"{where}: not valid UTF-8")
            return Unparsable(f"the request is not a valid {message_class.DESCRIPTOR.name}")
        return parsed

    return parse


def locate_bad_utf8(message_class: type[Message], data: bytes) -> str | None:
    """The path (``spec.env['K']``, ``spec.command[2]``) of the first string field in
    ``data`` that is not valid UTF-8, or None when there is none (or ``data`` does not
    parse even with strings as bytes)."""
    descriptor = message_class.DESCRIPTOR
    twin_class = _twin_class(descriptor.full_name, descriptor.file)
    try:
        twin = twin_class.FromString(data)
    except DecodeError:
        return None
    return next(_bad_strings(twin, descriptor, ""), None)


def _bad_strings(message: Any, original: Descriptor, path: str) -> Iterator[str]:
    """Paths of former string fields whose bytes do not decode, in field order."""
    for field, value in message.ListFields():
        where = f"{path}.{field.name}" if path else field.name
        source = original.fields_by_name[field.name]
        if _is_map(source):
            yield from _bad_map(value, source.message_type, where)
        elif source.is_repeated:
            for index, item in enumerate(value):
                yield from _bad_value(item, source, f"{where}[{index}]")
        else:
            yield from _bad_value(value, source, where)


def _bad_map(entries: Any, entry: Descriptor, where: str) -> Iterator[str]:
    """In the twin a map is a plain list of key/value entries (bytes cannot be map keys)."""
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    for item in entries:
        key = item.key
        if key_field.type == FieldDescriptor.TYPE_STRING and not _decodes(key):
            yield f"{where} (a key)"
            continue
        shown = key.decode() if isinstance(key, bytes) else key
        yield from _bad_value(item.value, value_field, f"{where}[{shown!r}]")


def _bad_value(value: Any, source: FieldDescriptor, where: str) -> Iterator[str]:
    if source.type == FieldDescriptor.TYPE_STRING and not _decodes(value):
        yield where
    elif source.type == FieldDescriptor.TYPE_MESSAGE:
        yield from _bad_strings(value, source.message_type, where)


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_map(field: FieldDescriptor) -> bool:
    return bool(
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.message_type.GetOptions().map_entry
        and field.is_repeated
    )


@functools.cache
def _twin_class(full_name: str, file: FileDescriptor) -> type[Message]:
    pool = descriptor_pool.DescriptorPool()
    for proto in _files_with_bytes(file, seen=set()):
        pool.Add(proto)
    twin: type[Message] = message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
    return twin


def _files_with_bytes(file: FileDescriptor, *, seen: set[str]) -> Iterator[Any]:
    """``file`` and its dependencies (dependencies first), every string made bytes."""
    if file.name in seen:
        return
    seen.add(file.name)
    for dependency in file.dependencies:
        yield from _files_with_bytes(dependency, seen=seen)
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    for message in proto.message_type:
        _strings_to_bytes(message)
    yield proto


def _strings_to_bytes(message: Any) -> None:
    for field in message.field:
        if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    for nested in message.nested_type:
        if nested.options.map_entry:
            nested.ClearField("options")
        _strings_to_bytes(nested)


def request_type(service: str, method: str) -> type[Message]:
    """The generated request class of ``service``'s ``method`` (full names, as in the
    ``.proto``), e.g. ``request_type("hodei.v1.JobService", "SubmitJob")``."""
    found = descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]
    generated: type[Message] = message_factory.GetMessageClass(found.input_type)
    return generated

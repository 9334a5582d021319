"""Every gRPC method behind one guard, so no request ever ends as UNKNOWN.

grpcio answers UNKNOWN, with Python's exception text, for whatever a handler or the
request parser raises. The guard turns each kind of trouble into the status that tells
the caller what to do:

- bytes protobuf refuses (invalid UTF-8 in a string field): INVALID_ARGUMENT naming the
  field (:mod:`hodei.api.wire`);
- :class:`~hodei.domain.jobs.SpecError`: INVALID_ARGUMENT with its message;
- :class:`~hodei.store.base.StoreError` (disk full, I/O error, locked): UNAVAILABLE,
  since the request may succeed once the store recovers;
- anything else: INTERNAL, logged once with its traceback here.

Handlers are taken from the generated ``add_*Servicer_to_server`` functions (so the
method table still comes from the ``.proto``) and registered again wrapped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc

from hodei.api.wire import Unparsable, lenient_parser, request_type
from hodei.domain.jobs import SpecError
from hodei.store.base import StoreError

log = logging.getLogger(__name__)

AddServicer = Callable[[Any, Any], None]


class _Captured:
    """Stands in for the server while a generated ``add_*`` function registers."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: Mapping[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass  # the same table arrives through add_registered_method_handlers

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]
    ) -> None:
        self.service, self.handlers = service, handlers


def add_guarded(server: grpc.aio.Server, add: AddServicer, servicer: object) -> None:
    """Register ``servicer`` as ``add(servicer, server)`` would, every method guarded."""
    captured = _Captured()
    add(servicer, captured)
    handlers = {
        name: _guarded(handler, request_type(captured.service, name))
        for name, handler in captured.handlers.items()
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(captured.service, handlers),)
    )
    server.add_registered_method_handlers(captured.service, handlers)


def _guarded(handler: Any, message_class: Any) -> grpc.RpcMethodHandler:
    parse = lenient_parser(message_class)
    serialize = handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _unary(handler.unary_unary), request_deserializer=parse, response_serializer=serialize
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _streaming(handler.unary_stream),
            request_deserializer=parse,
            response_serializer=serialize,
        )
    if handler.stream_stream is not None:
        # The request stream may carry Unparsable items: the servicer reports those.
        return grpc.stream_stream_rpc_method_handler(
            _streaming(handler.stream_stream),
            request_deserializer=parse,
            response_serializer=serialize,
        )
    if handler.stream_unary is not None:
        # Likewise: the servicer reports Unparsable items of the request stream.
        return grpc.stream_unary_rpc_method_handler(
            _client_streaming(handler.stream_unary),
            request_deserializer=parse,
            response_serializer=serialize,
        )
    raise TypeError(f"unsupported gRPC method kind: {handler!r}")  # pragma: no cover


async def _abort_for(error: Exception, context: grpc.aio.ServicerContext) -> None:
    if isinstance(error, SpecError):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    if isinstance(error, StoreError):
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, f"the control plane's store is failing: {error}"
        )
    log.error("unexpected error serving a request", exc_info=error)
    await context.abort(
        grpc.StatusCode.INTERNAL, "internal error; the control plane logged the details"
    )


def _unary(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    async def guarded(request: object, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Unparsable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.problem)
        try:
            return await behaviour(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_for(exc, context)

    return guarded


def _client_streaming(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    async def guarded(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behaviour(requests, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_for(exc, context)

    return guarded


def _streaming(behaviour: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
    async def guarded(request: object, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if isinstance(request, Unparsable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.problem)
        try:
            async for reply in behaviour(request, context):
                yield reply
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_for(exc, context)

    return guarded

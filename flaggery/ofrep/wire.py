"""OFREP's wire format (OpenFeature Remote Evaluation Protocol 0.3): the request, the
evaluation results, the bulk response, the errors, as msgspec Structs with encoders and a
decoder built once.

Field names are OFREP's (camelCase). A successful evaluation always carries ``variant`` (the
Python OFREP provider reads it unconditionally) and omits ``value`` when the caller's code
default should be used (OFREP's ``codeDefaultFlag``).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from flaggery.flag_evaluation import FlagEvaluation, InvalidTargetingKey, parse_targeting_key
from flaggery.store.validation import TOO_DEEP

__all__ = [
    "BulkEvaluation",
    "ErrorCode",
    "EvaluationError",
    "EventStream",
    "EventStreamEndpoint",
    "FlagFailure",
    "GeneralError",
    "decode_request",
    "encode",
]

ErrorCode = Literal[
    "PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "FLAG_NOT_FOUND", "GENERAL"
]


class _Context(msgspec.Struct, frozen=True):
    """The evaluation context; attributes other than ``targetingKey`` are accepted and unused
    (flaggery targets by subject id only)."""

    targetingKey: Any = None


class _Request(msgspec.Struct, frozen=True):
    context: _Context | None = None


class FlagFailure(msgspec.Struct, frozen=True):
    key: str
    errorCode: ErrorCode
    errorDetails: str


class GeneralError(msgspec.Struct, frozen=True):
    errorCode: ErrorCode
    errorDetails: str


class EventStreamEndpoint(msgspec.Struct, frozen=True):
    requestUri: str


class EventStream(msgspec.Struct, frozen=True):
    """Where to listen for ``refetchEvaluation``; relative to the OFREP base URL's origin."""

    endpoint: EventStreamEndpoint
    type: str = "sse"
    inactivityDelaySec: int = 120


class BulkEvaluation(msgspec.Struct, frozen=True):
    flags: list[FlagEvaluation]
    eventStreams: list[EventStream]


class EvaluationError(Exception):
    """A request OFREP answers with an error body: status, code, details."""

    def __init__(self, status: int, code: ErrorCode, details: str) -> None:
        super().__init__(details)
        self.status, self.code, self.details = status, code, details


_decoder = msgspec.json.Decoder(_Request)
_encoder = msgspec.json.Encoder()


def encode(value: msgspec.Struct) -> bytes:
    return _encoder.encode(value)


def decode_request(body: bytes) -> int:
    """The subject id of an evaluation request body. An empty body and ``{}`` are a request
    without context. Raises EvaluationError (400): PARSE_ERROR for JSON that is not an OFREP
    request (JSON nested too deeply to decode too), TARGETING_KEY_MISSING, INVALID_CONTEXT
    for a key that is not a subject id."""
    try:
        request = _decoder.decode(body) if body.strip() else _Request()
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        details = f"The body is not an OFREP request: {error}"
        raise EvaluationError(400, "PARSE_ERROR", details) from None
    except RecursionError:
        details = f"The body is not an OFREP request: {TOO_DEEP}"
        raise EvaluationError(400, "PARSE_ERROR", details) from None
    if request.context is None or request.context.targetingKey is None:
        raise EvaluationError(
            400,
            "TARGETING_KEY_MISSING",
            "The context needs a targetingKey: the subject id, e.g. "
            '{"context": {"targetingKey": "42"}}.',
        )
    try:
        return parse_targeting_key(request.context.targetingKey)
    except InvalidTargetingKey as error:
        raise EvaluationError(400, "INVALID_CONTEXT", str(error)) from None

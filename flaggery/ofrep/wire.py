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

from flaggery.flag_evaluation import FlagEvaluation
from flaggery.store.validation import TOO_DEEP, json_decode_error

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


class _Request(msgspec.Struct, frozen=True):
    context: dict[str, Any] | None = None
    """The evaluation context: ``targetingKey`` and any other attributes."""


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


def decode_request(body: bytes) -> tuple[object, dict[str, Any]]:
    """The targeting key (not yet checked: `Snapshot.evaluate` does) and the evaluation context
    of an evaluation request body. An empty body and ``{}`` are a request without context.
    Raises EvaluationError (400): PARSE_ERROR for JSON that is not an OFREP request (JSON
    nested too deeply to decode too), TARGETING_KEY_MISSING."""
    try:
        request = _decoder.decode(body) if body.strip() else _Request()
    except msgspec.DecodeError as error:
        details = f"The body is not an OFREP request: {json_decode_error(error, body)}"
        raise EvaluationError(400, "PARSE_ERROR", details) from None
    except msgspec.ValidationError as error:
        details = f"The body is not an OFREP request: {error}"
        raise EvaluationError(400, "PARSE_ERROR", details) from None
    except RecursionError:
        details = f"The body is not an OFREP request: {TOO_DEEP}"
        raise EvaluationError(400, "PARSE_ERROR", details) from None
    context = request.context
    if context is None or context.get("targetingKey") is None:
        raise EvaluationError(
            400,
            "TARGETING_KEY_MISSING",
            "The context needs a targetingKey: any text of 1 to 256 characters, e.g. "
            '{"context": {"targetingKey": "6f1c0f6e-9a7e-4c7e-8d0b-1b2f3c4d5e6f"}}.',
        )
    return context["targetingKey"], context

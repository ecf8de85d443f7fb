"""OFREP's operations for the OpenAPI document: the routes `flaggery.ofrep.app` serves in front
of Starlette, with their request, response and error schemas.

OFREP answers errors in its own shapes (``flaggery.ofrep.wire``: ``FlagFailure`` names the flag
key, ``GeneralError`` does not), never in flaggery's ``ErrorEnvelope``; the statuses here are
the ones ``OfrepApp`` sends.
"""

from __future__ import annotations

from typing import Any

import msgspec

from flaggery.ofrep.app import BULK_PATH, EVENTS_PATH, SINGLE_ROUTE
from flaggery.ofrep.wire import BulkEvaluation, FlagFailure, GeneralError

__all__ = ["SSE_EVENT_SCHEMA", "ofrep_components", "ofrep_paths"]

_TAG = "ofrep"
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One Server-Sent Event as a client reads it (OpenAPI 3.1: the schema of a "
    "text/event-stream response describes each event): its data lines joined, its type, id "
    "and retry.",
    "properties": {
        "data": {"type": "string", "description": "The data lines, joined by newlines."},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
    "required": ["data"],
}
"""The schema of each event of flaggery's SSE responses (/v1/stream, /ofrep/v1/events)."""
_REF = "#/components/schemas/{name}"

EVALUATION_REQUEST: dict[str, Any] = {
    "title": "OfrepEvaluationRequest",
    "type": "object",
    "description": "OFREP's evaluation request. An empty body and `{}` are a request without "
    "a context (answered TARGETING_KEY_MISSING). At most 64 KiB.",
    "properties": {
        "context": {
            "type": "object",
            "description": "The evaluation context: targetingKey and flat attributes (strings, "
            "numbers, booleans) that targeting rules read (docs/targeting.md).",
            "properties": {
                "targetingKey": {
                    "type": "string",
                    "description": "The targeting key: 1 to 256 characters without NUL. A "
                    "registered subject's canonical decimal id is that subject; any other key "
                    "is hashed into a bucket.",
                    "examples": ["42", "6f1c0f6e-9a7e-4c7e-8d0b-1b2f3c4d5e6f"],
                }
            },
            "required": ["targetingKey"],
            "additionalProperties": True,
        }
    },
}


def ofrep_components() -> dict[str, Any]:
    """The schemas OFREP's operations refer to (by ``#/components/schemas/<name>``), to merge
    into the document's components."""
    _, components = msgspec.json.schema_components(
        [BulkEvaluation, FlagFailure, GeneralError], ref_template=_REF
    )
    components["OfrepEvaluationRequest"] = EVALUATION_REQUEST
    return components


def ofrep_paths() -> dict[str, dict[str, Any]]:
    """The path items of POST /ofrep/v1/evaluate/flags/{key}, POST /ofrep/v1/evaluate/flags
    and GET /ofrep/v1/events."""
    return {
        SINGLE_ROUTE: {"post": _single()},
        BULK_PATH: {"post": _bulk()},
        EVENTS_PATH: {"get": _events()},
    }


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(name=name)}}}


def _error(description: str, name: str = "GeneralError") -> dict[str, Any]:
    return {"description": description, "content": _json(name)}


_BODY = {"required": False, "content": _json("OfrepEvaluationRequest")}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}
_AUTH_ERRORS = {
    "401": _error(
        "Unauthorized: client tokens are configured and the request has none, or an "
        "unknown one (`Authorization: Bearer <client token>`)."
    ),
    "403": _error("Forbidden: the token's role may not evaluate flags."),
    "429": {
        **_error("Too many failed sign-in attempts from this address."),
        "headers": _RETRY_AFTER,
    },
}
_NOT_LOADED = _error(
    "No snapshot loaded yet: the database (an edge's upstream) has not been reached."
)


def _single() -> dict[str, Any]:
    return {
        "operationId": "ofrep_evaluate_flag",
        "summary": "Evaluate one flag for the context's targeting key (OFREP)",
        "tags": [_TAG],
        "parameters": [
            {
                "name": "key",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "The OpenFeature flag key (a feature name).",
            }
        ],
        "requestBody": _BODY,
        "responses": {
            "200": {
                "description": "The flag's evaluation. `value` is absent when the caller's "
                "code default applies (disabled, or no variant for this subject).",
                "content": {
                    "application/json": {"schema": {"$ref": _REF.format(name="FlagEvaluation")}}
                },
            },
            "400": _error(
                "PARSE_ERROR (not an OFREP request), TARGETING_KEY_MISSING, "
                "INVALID_CONTEXT (a targeting key that is empty, longer than 256 characters or "
                "holds NUL)",
                "FlagFailure",
            ),
            "404": _error("FLAG_NOT_FOUND: no feature has this key.", "FlagFailure"),
            **_AUTH_ERRORS,
            "413": _error("The body is larger than 64 KiB."),
            "503": _NOT_LOADED,
        },
    }


def _bulk() -> dict[str, Any]:
    return {
        "operationId": "ofrep_evaluate_flags",
        "summary": "Evaluate every flag for the context's targeting key (OFREP)",
        "tags": [_TAG],
        "parameters": [
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "The ETag of an earlier answer: 304 when nothing changed for "
                "this targeting key.",
            }
        ],
        "requestBody": _BODY,
        "responses": {
            "200": {
                "description": "Every flag's evaluation, in flag key order, and where to "
                "listen for changes.",
                "headers": {"ETag": {"schema": {"type": "string"}}},
                "content": _json("BulkEvaluation"),
            },
            "304": {"description": "Not modified: the If-None-Match ETag is current."},
            "400": _error("PARSE_ERROR, TARGETING_KEY_MISSING, INVALID_CONTEXT"),
            **_AUTH_ERRORS,
            "413": _error("The body is larger than 64 KiB."),
            "503": _NOT_LOADED,
        },
    }


def _events() -> dict[str, Any]:
    return {
        "operationId": "ofrep_events",
        "summary": "refetchEvaluation events when the configuration changes (OFREP, SSE)",
        "tags": [_TAG],
        "responses": {
            "200": {
                "description": "A Server-Sent Events stream: a `refetchEvaluation` event "
                "after each change (its data carries the revision); refetch the bulk "
                "evaluation with If-None-Match.",
                "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
            },
            **_AUTH_ERRORS,
            "503": {
                **_error(
                    "No snapshot loaded yet, or this worker serves as many streams "
                    "as it can (retry after Retry-After)."
                ),
                "headers": _RETRY_AFTER,
            },
        },
    }

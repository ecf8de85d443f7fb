"""The OpenAPI 3.1 document, generated from the operations and their msgspec types.

Schemas come from ``msgspec.json.schema_components`` (JSON Schema 2020-12, which OpenAPI 3.1
uses as is). Query Structs become query parameters; every error an operation can answer is
listed under its status code, with the names the envelope carries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib.metadata import version
from typing import Any

import msgspec

from flaggery.errors import (
    DatabaseUnavailable,
    EntityChanged,
    FlaggeryError,
    NotAdmin,
    Unauthorized,
    ValidationError,
)
from flaggery.http.endpoint import Operation
from flaggery.http.errors import ErrorEnvelope, RequestValidationError, status_for
from flaggery.http.openapi_ofrep import SSE_EVENT_SCHEMA, ofrep_components, ofrep_paths

__all__ = ["openapi_document"]

REF = "#/components/schemas/{name}"
_PATH_PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")  # Starlette's convertor is not OpenAPI's
_SUBJECT_ID = {"type": "integer", "format": "int64", "description": "Subject id (signed 64-bit)."}
_TARGETING_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": 256,
    "description": "Targeting key: any text of 1 to 256 characters without NUL, "
    "percent-encoded as UTF-8 ('/' as %2F).",
}
_PARAMETER_SCHEMAS = {"subject_id": _SUBJECT_ID, "key": _TARGETING_KEY}
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": REF.format(name="ErrorEnvelope")}}}
DESCRIPTION = """Feature flags served from an in-memory snapshot.

Errors have the body `{"exception": {"name": ..., "message": ...}}`. Admin routes answer 423
NotAdmin on a read-only server, and need `Authorization: Bearer <token>` when the server has
FLAGGERY_ADMIN_TOKEN set. Malformed requests answer 422 RequestValidationError.

The OFREP routes (tag `ofrep`, OpenFeature Remote Evaluation Protocol) answer errors in
OFREP's shapes instead: `{"errorCode": ..., "errorDetails": ...}`, with the flag `key` when one
flag was asked for."""


def openapi_document(operations: Iterable[Operation], *, metrics: bool, token: bool) -> bytes:
    """The document for a server with (or without) ``/metrics`` and an admin token."""
    operations = list(operations)
    queries = {op.query for op in operations}
    types: list[Any] = [ErrorEnvelope, *queries]
    types += [op.response for op in operations if op.response is not None]
    types += [op.body for op in operations if op.body is not None]
    _, components = msgspec.json.schema_components(types, ref_template=REF)
    query_schemas = {q.__name__: components.pop(q.__name__) for q in queries}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        item = _operation(op, query_schemas[op.query.__name__], token)
        paths.setdefault(_PATH_PARAMETER.sub(r"{\1}", op.path), {})[op.method.lower()] = item
    paths.update(ofrep_paths())
    components.update(ofrep_components())
    if metrics:
        paths["/metrics"] = {"get": _metrics_operation()}
    schemes = {"adminToken": {"type": "http", "scheme": "bearer"}}
    document = {
        "openapi": "3.1.0",
        "info": {"title": "flaggery", "version": version("flaggery"), "description": DESCRIPTION},
        "paths": paths,
        "components": {"schemas": components, **({"securitySchemes": schemes} if token else {})},
    }
    return msgspec.json.encode(document)


def _operation(op: Operation, query_schema: dict[str, Any], token: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "operationId": op.handler.__name__,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _path_parameters(op.path) + _query_parameters(query_schema),
        "responses": _responses(op, token),
    }
    if op.description:
        item["description"] = op.description
    if op.body is not None:
        schema = msgspec.json.schema_components([op.body], ref_template=REF)[0][0]
        content = {"application/json": {"schema": schema}}
        item["requestBody"] = {"required": not op.optional_body, "content": content}
    if token and not op.public:
        item["security"] = [{"adminToken": []}]
    if op.conditional and op.writes:
        item["parameters"].append(_IF_MATCH)
    return item


_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "example": '"12"'},
    "description": "A revision (as an entity tag): write only if the entity has not changed "
    "after it; else 412 EntityChanged, saying which writes changed it.",
}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _PARAMETER_SCHEMAS.get(name, {"type": "string"}),
        }
        for name in _PATH_PARAMETER.findall(path)
    ]


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema.get("properties", {}).items():
        field = dict(field)
        description = field.pop("description", None)
        options = field.pop("anyOf", None)
        if options:  # "x | None" in a query string is simply "x, optional"
            field.update(next(o for o in options if o != {"type": "null"}))
            if field.get("default", 0) is None:
                del field["default"]
        parameter = {"name": name, "in": "query", "required": name in required, "schema": field}
        if field.get("type") == "object":  # the evaluation context: context[NAME]=VALUE
            parameter |= {"style": "deepObject", "explode": True}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _responses(op: Operation, token: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if op.media_type == "text/event-stream":
        schema = SSE_EVENT_SCHEMA
    elif op.response is not None:
        schema = {"$ref": REF.format(name=op.response.__name__)}
    responses: dict[str, Any] = {
        str(op.status): {
            "description": op.summary,
            "content": {op.media_type: {"schema": schema}},
        }
    }
    errors: list[type[FlaggeryError]] = [*op.errors, RequestValidationError]
    if op.conditional and op.writes:
        # An If-Match revision after the database's head is a ValidationError (400).
        errors += [EntityChanged, ValidationError]
    if not op.public:
        errors += [NotAdmin, DatabaseUnavailable]
    if token and not op.public:
        errors.append(Unauthorized)
    by_status: dict[int, list[str]] = {}
    for error in errors:
        names = by_status.setdefault(status_for(error), [])
        if error.__name__ not in names:
            names.append(error.__name__)
    for status, names in sorted(by_status.items()):
        responses[str(status)] = {"description": ", ".join(names), "content": _ERROR_CONTENT}
    return responses


def _metrics_operation() -> dict[str, Any]:
    return {
        "operationId": "metrics",
        "summary": "Prometheus metrics (all workers)",
        "tags": ["ops"],
        "responses": {
            "200": {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    }

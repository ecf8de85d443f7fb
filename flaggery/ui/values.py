"""Typed variant values as the dashboard shows and reads them (migration 0004's values).

A value is JSON (flaggery.store.validation.check_variant_value: boolean, number, string or
object). The form sends a type and the text; `typed_value` turns them into the value the
REST route would receive, raising ValidationError, in words, for text that is not of the
type. The store then checks the value itself (64-bit integers, finite numbers, 64 KiB).
"""

from __future__ import annotations

from typing import Any

import msgspec

from flaggery.decimal_text import excerpt
from flaggery.engine.model import JsonValue
from flaggery.errors import ValidationError
from flaggery.store.validation import TOO_DEEP, json_decode_error

__all__ = ["TYPES", "json_text", "type_of", "typed_value"]

TYPES = {
    "string": "string",
    "boolean": "boolean (true or false)",
    "number": "number",
    "object": "JSON object",
    "none": "none: its name",
}
"""The form's value types, value -> label."""

_encoder = msgspec.json.Encoder()


def typed_value(kind: str, field: object) -> JsonValue | None:
    """The value a form ``field`` (str, or absent) means as a ``kind`` of TYPES. None for
    "none" (the variant's value is its name again)."""
    text = field if isinstance(field, str) else ""
    if kind == "none":
        return None
    if kind == "string":
        return text
    if kind == "boolean":
        if text.strip().lower() not in ("true", "false"):
            raise ValidationError(f"A boolean value is true or false, got {excerpt(text.strip())}.")
        return text.strip().lower() == "true"
    if kind == "number":
        return _number(text.strip())
    if kind == "object":
        return _object(text.strip())
    raise ValidationError(f"Choose the value's type ({', '.join(TYPES)}), got {kind!r}.")


def type_of(value: JsonValue) -> str:
    """The value's type in words: boolean, integer, number, string or object."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "object"


def json_text(value: JsonValue) -> str:
    """The value as JSON text (a string in quotes), as OFREP and the REST API send it."""
    return _encoder.encode(value).decode()


def _number(text: str) -> int | float:
    try:
        value = _decode(text)
    except ValidationError:
        value = None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"A number value is written like 42 or 2.5, got {excerpt(text)}.")
    return value


def _object(text: str) -> dict[str, Any]:
    value = _decode(text)
    if not isinstance(value, dict):
        raise ValidationError(
            f'An object value is JSON in braces, like {{"a": 1}}, got {excerpt(text)}.'
        )
    return value


def _decode(text: str) -> Any:
    """JSON text as the REST body decoder reads it. Raises ValidationError for malformed JSON
    and for JSON nested too deeply to decode (msgspec raises RecursionError)."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as error:
        details = json_decode_error(error, text)
        raise ValidationError(f"An object value must be JSON: {details}.") from None
    except RecursionError:
        raise ValidationError(f"An object value must be JSON: {TOO_DEEP}.") from None

"""Argument checks shared by the Python API and, through it, the REST API.

Every check raises ValidationError (or InvalidRolloutProportion) with a message that says
what was wrong and what is accepted, before the store touches the database.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from flaggery.engine.model import DISABLE, JsonValue
from flaggery.errors import InvalidRolloutProportion, ValidationError
from flaggery.store.tables import NAME_LENGTH

__all__ = [
    "MAX_WEIGHT",
    "check_name",
    "check_proportion",
    "check_subject_id",
    "check_variant_name",
    "check_variant_value",
    "check_weight",
    "to_utc",
]

MIN_SUBJECT_ID = -(2**63)
MAX_SUBJECT_ID = 2**63 - 1
MAX_WEIGHT = 2**31 - 1
MAX_VALUE_BYTES = 64 * 1024
_value_encoder = msgspec.json.Encoder()
# Names travel as URL path segments: no slashes, no control characters, no edge whitespace.
_NAME = re.compile(r"[^/\x00-\x1f\x7f]+")


def check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValidationError(f"A {kind} name must be a non-empty string, got {name!r}.")
    if len(name) > NAME_LENGTH:
        raise ValidationError(f"A {kind} name may have at most {NAME_LENGTH} characters.")
    if not _NAME.fullmatch(name) or name != name.strip():
        raise ValidationError(
            f"Invalid {kind} name {name!r}: no '/', no control characters, "
            "no leading or trailing spaces."
        )
    return name


def check_variant_name(name: object) -> str:
    name = check_name("variant", name)
    if name == DISABLE:
        raise ValidationError(
            f"{DISABLE!r} is reserved for the disabling variant: use add_disabling_variant()."
        )
    return name


def check_variant_value(value: object) -> JsonValue:
    """A variant value as OpenFeature types it: a boolean, a number (a signed 64-bit integer or
    a finite float), a string, or a JSON object (string keys) of at most 64 KiB encoded.

    Lists and null are refused: OpenFeature has no list type, and a missing value already
    means "the variant's name"."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not MIN_SUBJECT_ID <= value <= MAX_SUBJECT_ID:
            raise ValidationError(f"An integer value must fit in 64 bits, got {value}.")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"A number value must be finite, got {value!r}.")
        return value
    if isinstance(value, dict):
        return _check_object(value)
    raise ValidationError(
        "A variant value must be a boolean, a number, a string or a JSON object, "
        f"got {type(value).__name__} {value!r:.80}."
    )


def _check_object(value: dict[Any, Any]) -> dict[str, Any]:
    try:
        encoded = _value_encoder.encode(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValidationError(f"A variant's object value must be plain JSON: {error}.") from None
    if len(encoded) > MAX_VALUE_BYTES:
        raise ValidationError(
            f"A variant's object value may have at most {MAX_VALUE_BYTES} bytes as JSON, "
            f"got {len(encoded)}."
        )
    # Round-tripping gives the caller's object as the snapshot will hold it (no aliasing).
    decoded: dict[str, Any] = msgspec.json.decode(encoded)
    return decoded


def check_subject_id(subject_id: object) -> int:
    if not isinstance(subject_id, int) or isinstance(subject_id, bool):
        raise ValidationError(f"A subject id must be an integer, got {subject_id!r}.")
    if not MIN_SUBJECT_ID <= subject_id <= MAX_SUBJECT_ID:
        raise ValidationError(f"Subject id {subject_id} does not fit in a signed 64-bit integer.")
    return subject_id


def check_weight(weight: object) -> int:
    if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= MAX_WEIGHT:
        raise ValidationError(
            f"A weight must be an integer from 1 to {MAX_WEIGHT}, got {weight!r}."
        )
    return weight


def check_proportion(proportion: object) -> float:
    if (
        isinstance(proportion, bool)
        or not isinstance(proportion, int | float)
        or not math.isfinite(proportion)
        or not 0 <= proportion <= 1
    ):
        raise InvalidRolloutProportion(
            f"A proportion must be a number from 0 to 1 (0.25 for 25%), got {proportion!r}."
        )
    return float(proportion)


def to_utc(moment: object, what: str) -> datetime:
    """Aware datetimes keep their instant; naive ones are local time, as in 0.2.1."""
    if not isinstance(moment, datetime):
        raise ValidationError(f"{what} must be a datetime, got {moment!r}.")
    return moment.astimezone(UTC)

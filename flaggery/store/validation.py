"""Argument checks shared by the Python API and, through it, the REST API.

Every check raises ValidationError (or InvalidRolloutProportion) with a message that says
what was wrong and what is accepted, before the store touches the database. Names have two
rules: ``check_name`` for a name being created (strict, one rule for every kind of name on
both databases) and ``storable`` for a name being looked up (only what the database cannot
hold is refused, so names stored by earlier versions stay reachable).
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from flaggery.engine.model import DISABLE, JsonValue
from flaggery.errors import InvalidRolloutProportion, ValidationError
from flaggery.store.tables import NAME_LENGTH

__all__ = [
    "MAX_VALUE_BYTES",
    "MAX_VALUE_DEPTH",
    "MAX_WEIGHT",
    "NAME_RULES",
    "TOO_DEEP",
    "check_name",
    "check_proportion",
    "check_subject_id",
    "check_variant_name",
    "check_variant_value",
    "check_weight",
    "storable",
    "to_utc",
]

MIN_SUBJECT_ID = -(2**63)
MAX_SUBJECT_ID = 2**63 - 1
MAX_WEIGHT = 2**31 - 1
NAME_RULES = (
    "a name has 1-200 characters in NFKC form, no '/', no control, format or private-use "
    "characters, no spaces other than U+0020 and none at either end, no U+FFFD, and is not "
    "'.' or '..'"
)
# Unicode categories refused in names: Cc controls (C0, DEL, C1), Cf format characters
# (zero-width and bidi marks: invisible, so two names would look the same), Cs surrogates
# (not UTF-8), Co private use and Cn unassigned (no agreed glyph), Zl/Zp line breaks.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_CATEGORY_NAMES = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
# Invalid UTF-8 in a URL decodes to U+FFFD, so it would create a name nobody typed.
_REPLACEMENT = "\ufffd"
MAX_VALUE_BYTES = 64 * 1024
"""A variant value's JSON encoding may have at most this many bytes: values go to every client."""
MAX_VALUE_DEPTH = 32
"""An object value may nest objects this deep (the value itself is depth 1): deeper structure
is no configuration anybody writes by hand, and every client parses it on every fetch."""
TOO_DEEP = "the JSON is nested too deeply to decode"
"""Why a request body nested thousands deep (msgspec's RecursionError) is refused."""
LONE_SURROGATE = (
    "a string holds a lone UTF-16 surrogate (an escape \\ud800-\\udbff not followed by "
    "\\udc00-\\udfff): JSON strings are Unicode text, and a lone surrogate is not a character"
)
"""Why JSON with an unpaired high-surrogate escape is refused (`json_decode_error`)."""
_LONE_HIGH_SURROGATE = re.compile(
    rb"(?<!\\)(?:\\\\)*\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)
_value_encoder = msgspec.json.Encoder()


def check_name(kind: str, name: object) -> str:
    """``name`` if it may name a new feature, variant, group, A/B test or test group.

    Names travel as URL path segments and appear in admin lists, so a name must be typeable,
    addressable and tell-apart-able: see NAME_RULES. NFKC (not only NFC) is required so that
    compatibility look-alikes (fullwidth letters, ligatures, the micro sign, no-break spaces)
    cannot sit beside the plain name. Cross-script homoglyphs (Latin 'a' and Cyrillic U+0430)
    are not detected. Costs O(len(name)). Raises ValidationError saying what is wrong.
    """
    if not isinstance(name, str) or not name:
        raise ValidationError(f"A {kind} name must be a non-empty string, got {name!r}.")
    if len(name) > NAME_LENGTH:
        raise ValidationError(f"A {kind} name may have at most {NAME_LENGTH} characters.")
    problem = _name_problem(name)
    if problem is not None:
        raise ValidationError(f"Invalid {kind} name {name!r}: {problem} ({NAME_RULES}).")
    return name


def _name_problem(name: str) -> str | None:
    if name in (".", ".."):
        return "HTTP clients remove '.' and '..' from paths, so it could not be addressed"
    if "/" in name:
        return "it contains '/'"
    if name != name.strip(" "):
        return "it starts or ends with a space"
    for char in name:
        category = unicodedata.category(char)
        if category in _REFUSED_CATEGORIES or (category == "Zs" and char != " "):
            kind = _CATEGORY_NAMES.get(category, "a space other than U+0020")
            return f"it contains U+{ord(char):04X}, {kind} ({category})"
        if char == _REPLACEMENT:
            return "it contains U+FFFD, what invalid UTF-8 in a URL decodes to"
    if not unicodedata.is_normalized("NFKC", name):
        normal = unicodedata.normalize("NFKC", name)
        return f"it is not in NFKC form; write it as {normal!r}"
    return None


def storable(text: object) -> bool:
    """Whether the database can hold ``text`` at all. PostgreSQL refuses NUL in text, and
    neither database takes a lone surrogate (not UTF-8). Lookups use it: a name that cannot
    be stored cannot exist, so it is not found on either database, without asking them."""
    if not isinstance(text, str) or "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_variant_name(name: object) -> str:
    name = check_name("variant", name)
    if name == DISABLE:
        raise ValidationError(
            f"{DISABLE!r} is reserved for the disabling variant: use add_disabling_variant()."
        )
    return name


def check_variant_value(value: object) -> JsonValue:
    """A variant value as OpenFeature types it: a boolean, a number (a signed 64-bit integer or
    a finite float), a string, or a JSON object (string keys) nesting objects and lists at most
    MAX_VALUE_DEPTH deep; whatever the type, at most MAX_VALUE_BYTES (64 KiB) as JSON.

    Lists and null are refused: OpenFeature has no list type, and a missing value already
    means "the variant's name". Costs O(size of the value). Raises ValidationError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        # Each character encodes to at least one byte: a longer string needs no encoding.
        _check_size(
            len(value) if len(value) > MAX_VALUE_BYTES else len(_value_encoder.encode(value))
        )
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
    _check_depth(value)
    try:
        encoded = _value_encoder.encode(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValidationError(f"A variant's object value must be plain JSON: {error}.") from None
    _check_size(len(encoded))
    # Round-tripping gives the caller's object as the snapshot will hold it (no aliasing).
    decoded: dict[str, Any] = msgspec.json.decode(encoded)
    return decoded


def _check_depth(value: dict[Any, Any]) -> None:
    """Iterative, so that neither a value nested far deeper nor a cycle exhausts the stack: the
    walk stops at the first container below MAX_VALUE_DEPTH."""
    level: list[dict[Any, Any] | list[Any] | tuple[Any, ...]] = [value]
    for depth in range(1, MAX_VALUE_DEPTH + 1):
        children: list[dict[Any, Any] | list[Any] | tuple[Any, ...]] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            children.extend(item for item in items if isinstance(item, dict | list | tuple))
        if not children:
            return
        if depth == MAX_VALUE_DEPTH:
            break
        level = children
    raise ValidationError(
        f"A variant's object value may nest objects and lists at most {MAX_VALUE_DEPTH} deep."
    )


def _check_size(size: int) -> None:
    if size > MAX_VALUE_BYTES:
        raise ValidationError(
            f"A variant value may have at most {MAX_VALUE_BYTES} bytes as JSON, got {size}."
        )


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


def aware_utc(moment: object, what: str) -> datetime:
    """`to_utc` for an instant that must carry its offset (schedules, release plans): a
    naive datetime is refused with ValidationError rather than read as local time."""
    if isinstance(moment, datetime) and moment.utcoffset() is None:
        raise ValidationError(
            f"{what} ({moment.isoformat()}) has no UTC offset: give an aware datetime "
            "(datetime(..., tzinfo=UTC), or an RFC 3339 time ending in Z or +hh:mm)."
        )
    return to_utc(moment, what)


def to_utc(moment: object, what: str) -> datetime:
    """Aware datetimes keep their instant; naive ones are local time, as in 0.2.1.

    Raises ValidationError naming `what` for a non-datetime, or for an instant whose UTC value
    falls outside year 1 to 9999 (``9999-12-31T23:59:59-23:59`` is such an instant).
    """
    if not isinstance(moment, datetime):
        raise ValidationError(f"{what} must be a datetime, got {moment!r}.")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValidationError(
            f"{what} ({moment.isoformat()}) is outside the representable range in UTC "
            f"({datetime.min.isoformat()}Z to {datetime.max.isoformat()}Z)."
        ) from None


# A release plan's step holds at most this long: a bound far above any real ramp that keeps
# every instant a plan computes (start + its holds) inside datetime's range.
MAX_HOLD = timedelta(days=366)


def hold_from_seconds(seconds: object, what: str) -> timedelta:
    """``seconds`` (a finite number above 0, at most MAX_HOLD's 31,622,400) as a timedelta.

    Raises ValidationError naming ``what`` and the bound: ``timedelta(seconds=1e300)`` raises
    OverflowError, and a request must get a 400, not a 500."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or not 0 < seconds <= MAX_HOLD.total_seconds()
    ):
        raise ValidationError(
            f"{what} must be a number of seconds above 0 and at most "
            f"{MAX_HOLD.total_seconds():.0f} ({MAX_HOLD.days} days), got {seconds!r}."
        )
    return timedelta(seconds=seconds)


def check_hold(hold: object, what: str) -> timedelta:
    """A timedelta above 0 and at most MAX_HOLD, or ValidationError naming ``what``."""
    if not isinstance(hold, timedelta) or not timedelta(0) < hold <= MAX_HOLD:
        raise ValidationError(
            f"{what} must be a duration above 0 and at most {MAX_HOLD.days} days, got {hold!r}."
        )
    return hold


def check_until(start: datetime, total: timedelta, what: str) -> None:
    """Refuses (ValidationError naming ``what``) a ``start`` whose ``start + total`` falls past
    the last representable instant (9999-12-31T23:59:59.999999Z)."""
    last = datetime.max.replace(tzinfo=UTC)
    if start > last - total:
        raise ValidationError(
            f"{what} ({start.isoformat()}) plus the plan's holds ({total}) ends after "
            f"{last.isoformat()}: give an earlier start or shorter holds."
        )


def json_decode_error(error: msgspec.DecodeError, text: bytes | str) -> str:
    """What is wrong with JSON `text` that msgspec refused with `error`, for a reader: msgspec
    says "Input data was truncated" for a string holding an unpaired high-surrogate escape
    (``"\\ud800"``: it reads on for the low half), which sends one looking for a cut-off
    body; that case is named (`LONE_SURROGATE`), any other is msgspec's own message. Every
    JSON body decoder (REST, OFREP, the dashboard's object values) reports through this."""
    if "truncated" in str(error):
        raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        if _LONE_HIGH_SURROGATE.search(raw):
            return LONE_SURROGATE
    return str(error)

"""Whole numbers written as text by a client: the one rule every entry point applies.

REST paths and query strings, OFREP, the dashboard's forms and query strings, request headers
(Last-Event-ID, the minimum-revision header) and ``FLAGGERY_*`` settings read their integers
through :func:`parse_decimal`. Python's ``int()`` alone is not that rule: it also reads "²"-free
but non-ASCII digits such as "٣", "1_000", " 7 " and "+7", and refuses more than 4,300 digits
with a ValueError of its own; ``str.isdigit()`` takes "²", which ``int()`` then refuses.

The rule: ASCII digits 0-9 only, one leading '-' only where the field may be negative, no '+',
no spaces, no underscores, and a value within the field's bounds (by default 0 to 2**63 - 1, a
signed 64-bit column). The caller turns :class:`DecimalTextError` into its own error kind (a 422
for REST, a field message on a dashboard form, a SettingsError at start-up).
"""

from __future__ import annotations

import re

__all__ = ["INT64_MAX", "INT64_MIN", "DecimalTextError", "excerpt", "parse_decimal", "percent"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_EXCERPT = 40
# A percentage as typed: ASCII digits with an optional fraction ("5", "12.5", ".5"). float()
# alone also reads "٣", "1_0", "1e1", "nan" and "inf".
_PERCENT = re.compile(r"[0-9]{1,3}(\.[0-9]{0,9})?|\.[0-9]{1,9}")


class DecimalTextError(ValueError):
    """Text that is not a whole number in the field's bounds; ``str(error)`` names the field,
    says what it takes and quotes (at most 40 characters of) what it got."""


def parse_decimal(text: str, field: str, *, low: int = 0, high: int = INT64_MAX) -> int:
    """``text`` as an integer from ``low`` to ``high`` (inclusive) for the field named ``field``.

    A leading '-' is accepted only when ``low`` is negative (else: the bounds message). The
    text is not stripped: callers that allow surrounding spaces strip first. The length is
    checked before ``int()``, so a megabyte of digits costs nothing. Raises DecimalTextError."""
    # A '-' where no negative is allowed passes here and fails the bounds: the clearer message.
    negative = text[:1] == "-"
    digits = text[1:] if negative else text
    if not (digits.isascii() and digits.isdigit()):
        sign = ", with an optional leading '-'" if low < 0 else ""
        raise DecimalTextError(
            f"{field} must be a whole number written in the digits 0-9{sign}, got {excerpt(text)}."
        )
    significant = digits.lstrip("0") or "0"
    # int() counts leading zeros toward its 4,300-digit limit: read the significant digits only.
    if (low < 0 or not negative) and len(significant) <= len(str(max(-low, high))):
        value = -int(significant) if negative else int(significant)
        if low <= value <= high:
            return value
    kind = " (a signed 64-bit integer)" if (low, high) == (INT64_MIN, INT64_MAX) else ""
    raise DecimalTextError(
        f"{field} must be a whole number from {low} to {high}{kind}, got {excerpt(text)}."
    )


def percent(text: str) -> float | None:
    """``text`` as a percentage from 0 to 100 (ASCII digits, an optional fraction of up to 9
    digits), or None for anything else (the caller names the field in its message)."""
    if not _PERCENT.fullmatch(text):
        return None
    value = float(text)
    return value if value <= 100 else None


def excerpt(text: str) -> str:
    """``text`` for a message, shortened: a client may send megabytes of it."""
    if len(text) <= _EXCERPT:
        return repr(text)
    return f"{text[:_EXCERPT]!r}... ({len(text)} characters)"

"""One constraint compiled into a test on one context attribute.

A `Predicate` is a constraint without ``inverted`` (the matcher applies that, so a constraint
and its inversion share one evaluation). It names the attribute, how to read it (`Reader`:
each distinct reader runs once per attribute and request), the test on what was read, and its
result when the attribute is missing. Semantics follow the Unleash client specification 6.1.0:
``docs/targeting.md``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from flaggery.engine.rules.constraint import (
    DATE_OPERATORS,
    LIST_OPERATORS,
    NUMBER_OPERATORS,
    SEMVER_OPERATORS,
    STRING_OPERATORS,
    Constraint,
)
from flaggery.engine.rules.operands import (
    AddressRanges,
    Attribute,
    address_of,
    date_of,
    number_of,
    semver_of,
    text_of,
)
from flaggery.engine.rules.patterns import pattern_error

__all__ = [
    "CASE_OPERATORS",
    "Predicate",
    "Reader",
    "compile_predicate",
    "folded_text_of",
    "predicate_key",
]

Reader = Callable[[Attribute], Any]
"""Reads an attribute into what a test compares (``None``: unreadable, the test is false)."""

CASE_OPERATORS = STRING_OPERATORS | {"REGEX"}
"""Where ``caseInsensitive`` acts (Unleash: the string operators and REGEX; IN is exact)."""
_ORDERED = NUMBER_OPERATORS | DATE_OPERATORS | SEMVER_OPERATORS

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": operator.eq,
    "GT": operator.gt,
    "GTE": operator.ge,
    "LT": operator.lt,
    "LTE": operator.le,
    "AFTER": operator.gt,
    "BEFORE": operator.lt,
}


def folded_text_of(value: Attribute) -> str:
    """The attribute as text in lower case (``caseInsensitive``)."""
    return text_of(value).lower()


class Predicate(NamedTuple):
    attribute: str
    reader: Reader | None
    """``None`` for REGEX: the matcher searches its patterns together (`pattern`)."""
    test: Callable[[Any], bool] | None
    when_missing: bool
    pattern: str | None = None
    case_sensitive: bool = True
    date: datetime | None = None
    """The date a DATE_AFTER or DATE_BEFORE predicate compares with (its answer changes
    only there, which lets the matcher keep the clock's answer between dates)."""


def predicate_key(constraint: Constraint) -> Constraint:
    """What makes two constraints the same predicate: the constraint without ``inverted``,
    without ``caseInsensitive`` where it does not act, and with its list of values sorted
    (``IN ["DE", "AT"]`` is ``IN ["AT", "DE"]``)."""
    values = constraint.values
    if constraint.operator in LIST_OPERATORS:
        values = tuple(sorted(set(values)))
    return msgspec.structs.replace(
        constraint,
        values=values,
        inverted=False,
        case_insensitive=constraint.case_insensitive and constraint.operator in CASE_OPERATORS,
    )


def compile_predicate(constraint: Constraint) -> Predicate | None:
    """The constraint's predicate (``inverted`` aside), or ``None`` for a constraint that can
    never match (an unknown operator or an unreadable value: the store refuses both, and a
    rule that reaches the engine anyway fails closed, inverted or not)."""
    name, op = constraint.context_name, constraint.operator
    operands = constraint.operands()
    folded = constraint.case_insensitive
    predicate: Predicate | None = None
    if op in ("IN", "NOT_IN"):
        values = frozenset(operands)
        test = values.__contains__ if op == "IN" else _not_in(values)
        predicate = Predicate(name, text_of, test, op == "NOT_IN")
    elif op in STRING_OPERATORS:
        predicate = _string_predicate(name, op, operands, folded)
    elif op == "REGEX" and operands and pattern_error(operands[0], not folded) is None:
        predicate = Predicate(name, None, None, False, operands[0], not folded)
    elif op == "IN_CIDR":
        ranges = AddressRanges(operands)
        if ranges:
            predicate = Predicate(name, address_of, ranges.__contains__, False)
    elif op in _ORDERED and operands:
        predicate = _ordered_predicate(name, op, operands[0])
    return predicate


def _not_in(values: frozenset[str]) -> Callable[[str], bool]:
    return lambda text: text not in values


def _string_predicate(name: str, op: str, values: tuple[str, ...], folded: bool) -> Predicate:
    reader: Reader = folded_text_of if folded else text_of
    wanted = tuple(value.lower() for value in values) if folded else values
    test: Callable[[str], bool]
    if op == "STR_STARTS_WITH":
        test = lambda text: text.startswith(wanted)  # noqa: E731
    elif op == "STR_ENDS_WITH":
        test = lambda text: text.endswith(wanted)  # noqa: E731
    else:
        test = lambda text: any(part in text for part in wanted)  # noqa: E731
    return Predicate(name, reader, test, False)


def _ordered_predicate(name: str, op: str, value: str) -> Predicate | None:
    reader: Reader
    if op in NUMBER_OPERATORS:
        reader = number_of
    elif op in DATE_OPERATORS:
        reader = date_of
    else:
        reader = semver_of
    target = reader(value)
    if target is None:
        return None
    compare = _ORDER[op.partition("_")[2]]
    date = target if isinstance(target, datetime) else None
    return Predicate(name, reader, lambda operand: compare(operand, target), False, date=date)

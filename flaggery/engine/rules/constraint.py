"""A targeting rule as data: Unleash's constraint JSON, grouped into constraint sets.

A rule is a tuple of constraint sets, any of which may match (OR); a set matches when every
one of its constraints does (AND). A set with no constraints matches every request; a rule with
no sets matches none. The stored and wire form of one constraint is the object Unleash uses::

    {"contextName": "country", "operator": "IN", "values": ["DE", "AT"],
     "inverted": false, "caseInsensitive": false}

List operators take ``values``; single-value operators take ``value``
(`SINGLE_VALUE_OPERATORS`). Semantics: ``docs/targeting.md``.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import msgspec

__all__ = [
    "DATE_OPERATORS",
    "LIST_OPERATORS",
    "NUMBER_OPERATORS",
    "OPERATORS",
    "SEMVER_OPERATORS",
    "SINGLE_VALUE_OPERATORS",
    "STRING_OPERATORS",
    "Constraint",
    "ConstraintSet",
    "Rule",
]

STRING_OPERATORS: Final = frozenset({"STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH"})
NUMBER_OPERATORS: Final = frozenset({"NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE"})
DATE_OPERATORS: Final = frozenset({"DATE_AFTER", "DATE_BEFORE"})
SEMVER_OPERATORS: Final = frozenset(
    {"SEMVER_EQ", "SEMVER_GT", "SEMVER_GTE", "SEMVER_LT", "SEMVER_LTE"}
)
LIST_OPERATORS: Final = frozenset({"IN", "NOT_IN", "IN_CIDR"}) | STRING_OPERATORS
"""Operators that take ``values`` (a list of strings)."""
SINGLE_VALUE_OPERATORS: Final = NUMBER_OPERATORS | DATE_OPERATORS | SEMVER_OPERATORS | {"REGEX"}
"""Operators that take ``value`` (one string)."""
OPERATORS: Final = LIST_OPERATORS | SINGLE_VALUE_OPERATORS
"""The 19 operators of the Unleash client specification 6.1.0."""


class Constraint(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True):
    """One condition on one context attribute (Unleash's constraint object).

    ``inverted`` negates the operator's result, after the missing-attribute rule;
    ``caseInsensitive`` acts on the ``STR_*`` operators and ``REGEX`` only (as in Unleash;
    ``IN`` and ``NOT_IN`` compare exactly).
    """

    context_name: str
    operator: str
    values: tuple[str, ...] = ()
    value: str | None = None
    inverted: bool = False
    case_insensitive: bool = False

    def operands(self) -> tuple[str, ...]:
        """The values the operator compares with: ``values``, or ``(value,)``."""
        if self.operator in SINGLE_VALUE_OPERATORS:
            return () if self.value is None else (self.value,)
        return self.values


ConstraintSet: TypeAlias = tuple[Constraint, ...]
Rule: TypeAlias = tuple[ConstraintSet, ...]

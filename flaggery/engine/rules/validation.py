"""What the store accepts as a rule: shape, bounds and readable values, checked at write time.

Every refusal is a `ValidationError` whose message names the place (``rule[0][2]`` is the
third constraint of the first set), what is wrong and what would be right. The bounds keep a
request's rule work and a snapshot's memory small whatever a client sends.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from flaggery.engine.rules.constraint import (
    DATE_OPERATORS,
    LIST_OPERATORS,
    NUMBER_OPERATORS,
    OPERATORS,
    SEMVER_OPERATORS,
    Constraint,
    Rule,
)
from flaggery.engine.rules.operands import date_of, network_of, number_of, semver_of
from flaggery.engine.rules.patterns import pattern_error
from flaggery.errors import ValidationError

__all__ = [
    "CONTEXT_NAME",
    "MAX_CONSTRAINTS_PER_SET",
    "MAX_IN_VALUES",
    "MAX_OTHER_VALUES",
    "MAX_RULE_VALUES",
    "MAX_SETS",
    "MAX_VALUE_LENGTH",
    "check_rule",
    "parse_rule",
]

MAX_SETS: Final = 32
"""Constraint sets per rule."""
MAX_CONSTRAINTS_PER_SET: Final = 32
MAX_IN_VALUES: Final = 10_000
"""Values of one IN or NOT_IN constraint (a set lookup: the count costs no request time)."""
MAX_OTHER_VALUES: Final = 1_000
"""Values of one STR_* or IN_CIDR constraint."""
MAX_RULE_VALUES: Final = 20_000
"""Values in all constraints of one rule together."""
MAX_VALUE_LENGTH: Final = 1_000
"""Characters in one value, REGEX patterns included."""
CONTEXT_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,99}", re.ASCII)
"""An attribute name: 1 to 100 of letters, digits, ``_ . : -``, not starting with a digit
or punctuation other than ``_``."""

_EXAMPLES: Final = {
    "number": 'a number such as "12" or "-0.5"',
    "date": 'an RFC 3339 date-time with an offset, such as "2026-01-31T12:00:00Z"',
    "semver": 'a strict semantic version such as "1.2.3" or "2.0.0-rc.1" (no leading "v")',
}


def parse_rule(raw: object) -> Rule:
    """A rule from its JSON form (a list of constraint sets, each a list of constraint
    objects), checked; `ValidationError` says what is wrong."""
    try:
        rule = msgspec.convert(raw, Rule)
    except msgspec.ValidationError as refused:
        # msgspec names the place as `$[0][1].value`: say `rule[0][1].value`.
        raise ValidationError(f"Invalid rule: {str(refused).replace('`$', '`rule')}") from None
    check_rule(rule)
    return rule


def check_rule(rule: Rule) -> None:
    """Refuse a rule beyond the bounds, or with a constraint the engine could not use."""
    if len(rule) > MAX_SETS:
        raise ValidationError(f"A rule has at most {MAX_SETS} constraint sets; got {len(rule)}.")
    total = 0
    for set_index, constraint_set in enumerate(rule):
        if len(constraint_set) > MAX_CONSTRAINTS_PER_SET:
            raise ValidationError(
                f"rule[{set_index}]: a constraint set has at most {MAX_CONSTRAINTS_PER_SET} "
                f"constraints; got {len(constraint_set)}."
            )
        for index, constraint in enumerate(constraint_set):
            problem = _problem(constraint)
            if problem:
                raise ValidationError(
                    f"rule[{set_index}][{index}] ({constraint.context_name!r} "
                    f"{constraint.operator}): {problem}"
                )
            total += len(constraint.operands())
    if total > MAX_RULE_VALUES:
        raise ValidationError(
            f"A rule has at most {MAX_RULE_VALUES:,} values in all; got {total:,}."
        )


def _problem(constraint: Constraint) -> str | None:
    op = constraint.operator
    if not CONTEXT_NAME.fullmatch(constraint.context_name):
        return (
            "contextName must be 1 to 100 letters, digits or '_ . : -', starting with a "
            "letter or '_'."
        )
    if op not in OPERATORS:
        return f"unknown operator {op!r}. Operators: {', '.join(sorted(OPERATORS))}."
    return _shape_problem(constraint) or _value_problem(constraint)


def _shape_problem(constraint: Constraint) -> str | None:
    op, values, value = constraint.operator, constraint.values, constraint.value
    if op in LIST_OPERATORS:
        # Unleash exports carry both fields; the unused one empty.
        if value:
            return f"{op} takes a list in 'values', not 'value'."
        limit = MAX_IN_VALUES if op in ("IN", "NOT_IN") else MAX_OTHER_VALUES
        if len(values) > limit:
            return f"{op} takes at most {limit:,} values; got {len(values):,}."
    else:
        if values:
            return f"{op} takes one value in 'value', not a list in 'values'."
        if value is None:
            return f"{op} needs 'value'."
    for text in constraint.operands():
        if len(text) > MAX_VALUE_LENGTH:
            return f"a value is at most {MAX_VALUE_LENGTH:,} characters; got {len(text):,}."
        if "\x00" in text:
            return "values may not contain NUL characters."
    return None


def _value_problem(constraint: Constraint) -> str | None:
    op, operands = constraint.operator, constraint.operands()
    if op == "REGEX":
        error = pattern_error(operands[0], not constraint.case_insensitive)
        if error:
            return (
                f"the pattern does not compile with RE2 ({error}); RE2 has no lookaround "
                "or backreferences."
            )
        return None
    if op == "IN_CIDR":
        for position, text in enumerate(operands):
            if network_of(text) is None:
                return (
                    f"values[{position}] {text!r} is not an IP address or CIDR range "
                    '(such as "10.0.0.0/8" or "2001:db8::/32").'
                )
        return None
    for kind, operators, read in (
        ("number", NUMBER_OPERATORS, number_of),
        ("date", DATE_OPERATORS, date_of),
        ("semver", SEMVER_OPERATORS, semver_of),
    ):
        if op in operators and read(operands[0]) is None:
            return f"value {operands[0]!r} is not {_EXAMPLES[kind]}."
    return None

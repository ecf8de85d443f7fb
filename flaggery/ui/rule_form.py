"""The group page's rule editor: a rule as form rows and back, one row per constraint.

Each row has a set number (rows with the same number form one constraint set), an attribute
name, an operator, its values (one per line; the single-value operators take the first),
and the inverted and case-insensitive boxes. Rows without an attribute name are blank and
skipped, so the page can offer spare rows. The store checks the rule as for any client.
"""

from __future__ import annotations

from typing import NamedTuple

from starlette.datastructures import FormData

from flaggery.engine.rules import OPERATORS, Constraint, Rule
from flaggery.engine.rules.constraint import SINGLE_VALUE_OPERATORS
from flaggery.errors import ValidationError

__all__ = ["OPERATOR_CHOICES", "SPARE_ROWS", "RuleRow", "rows_of", "rule_of"]

OPERATOR_CHOICES = sorted(OPERATORS)
SPARE_ROWS = 3
MAX_ROWS = 64


class RuleRow(NamedTuple):
    set: int
    """1-based constraint set number."""
    name: str
    operator: str
    values: str
    """One value a line."""
    inverted: bool
    case_insensitive: bool


def rows_of(rule: Rule | None) -> list[RuleRow]:
    """The rule as rows, then SPARE_ROWS blank ones (in a new set)."""
    rows = [
        RuleRow(number, c.context_name, c.operator, "\n".join(c.operands()), c.inverted,
                c.case_insensitive)
        for number, constraint_set in enumerate(rule or (), start=1)
        for c in constraint_set
    ]  # fmt: skip
    spare = len(rule or ()) + 1
    return rows + [RuleRow(spare, "", "IN", "", False, False)] * SPARE_ROWS


def rule_of(form: FormData) -> Rule:
    """The rule the posted rows describe; ValidationError for a row that is not readable."""
    sets: dict[int, list[Constraint]] = {}
    for index in range(MAX_ROWS):
        name = _field(form, f"name-{index}")
        if not name:
            continue
        number = _field(form, f"set-{index}")
        if not number.isdigit() or not 1 <= int(number) <= 1_000:
            raise ValidationError(f"Row {index + 1}: the set is a number from 1, got {number!r}.")
        operator = _field(form, f"operator-{index}")
        values = tuple(line.strip() for line in _field(form, f"values-{index}").splitlines())
        values = tuple(value for value in values if value)
        single = operator in SINGLE_VALUE_OPERATORS
        sets.setdefault(int(number), []).append(
            Constraint(
                name,
                operator,
                values=() if single else values,
                value=(values[0] if values else "") if single else None,
                inverted=form.get(f"inverted-{index}") == "on",
                case_insensitive=form.get(f"case-{index}") == "on",
            )
        )
    return tuple(tuple(sets[number]) for number in sorted(sets))


def _field(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""

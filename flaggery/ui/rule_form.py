"""The group page's rule editor: a rule as form rows and back, one row per constraint.

Each row has a set number (rows with the same number form one constraint set), an attribute
name, an operator, its values (one per line, exactly as typed: spaces are part of a value;
blank lines are skipped; the single-value operators take the first), and the inverted and
case-insensitive boxes. Rows without an attribute name are blank and skipped, so the page can
offer spare rows. Every row posted is read, up to the largest rule the store takes, so saving
the form never drops a constraint of the rule it shows. The store checks the rule as for any
client.
"""

from __future__ import annotations

from typing import NamedTuple

from starlette.datastructures import FormData

from flaggery.engine.rules import OPERATORS, Constraint, Rule
from flaggery.engine.rules.constraint import SINGLE_VALUE_OPERATORS
from flaggery.engine.rules.validation import MAX_CONSTRAINTS_PER_SET, MAX_SETS
from flaggery.errors import ValidationError

__all__ = ["OPERATOR_CHOICES", "SPARE_ROWS", "RuleRow", "rows_of", "rule_of"]

OPERATOR_CHOICES = sorted(OPERATORS)
SPARE_ROWS = 3
MAX_ROWS = MAX_SETS * MAX_CONSTRAINTS_PER_SET + SPARE_ROWS
"""The most rows a form may post: the largest rule the store takes, and the spare rows."""


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
    rows = sorted({int(key[5:]) for key in form if key.startswith("name-") and _digits(key[5:])})
    if len(rows) > MAX_ROWS:
        raise ValidationError(f"A rule form has at most {MAX_ROWS:,} rows; got {len(rows):,}.")
    for index in rows:
        name = _field(form, f"name-{index}")
        if not name:
            continue
        number = _field(form, f"set-{index}")
        if not number.isdigit() or not 1 <= int(number) <= 1_000:
            raise ValidationError(f"Row {index + 1}: the set is a number from 1, got {number!r}.")
        operator = _field(form, f"operator-{index}")
        text = form.get(f"values-{index}")
        lines = text.splitlines() if isinstance(text, str) else []
        values = tuple(line for line in lines if line)
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


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()

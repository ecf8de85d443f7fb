"""Targeting rules: groups defined by the evaluation context (Unleash's constraint format).

`parse_rule` checks a rule at write time; `RuleMatcher` compiles every rule group's rule once
per snapshot and answers, per request, which rule groups the context matches. Pure: the
standard library, msgspec and RE2 (``google-re2``, a library without I/O). The model, the
operators and their semantics: ``docs/targeting.md``.
"""

from flaggery.engine.rules.constraint import OPERATORS, Constraint, ConstraintSet, Rule
from flaggery.engine.rules.matcher import CURRENT_TIME, RuleMatch, RuleMatcher
from flaggery.engine.rules.validation import (
    CONTEXT_NAME,
    MAX_CONSTRAINTS_PER_SET,
    MAX_IN_VALUES,
    MAX_OTHER_VALUES,
    MAX_RULE_VALUES,
    MAX_SETS,
    MAX_VALUE_LENGTH,
    check_rule,
    parse_rule,
)

__all__ = [
    "CONTEXT_NAME",
    "CURRENT_TIME",
    "MAX_CONSTRAINTS_PER_SET",
    "MAX_IN_VALUES",
    "MAX_OTHER_VALUES",
    "MAX_RULE_VALUES",
    "MAX_SETS",
    "MAX_VALUE_LENGTH",
    "OPERATORS",
    "Constraint",
    "ConstraintSet",
    "Rule",
    "RuleMatch",
    "RuleMatcher",
    "check_rule",
    "parse_rule",
]

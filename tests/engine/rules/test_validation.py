"""parse_rule: what the store accepts, and the message for what it refuses."""

from __future__ import annotations

import pytest

from flaggery.engine.rules import (
    MAX_CONSTRAINTS_PER_SET,
    MAX_IN_VALUES,
    MAX_OTHER_VALUES,
    MAX_RULE_VALUES,
    MAX_SETS,
    MAX_VALUE_LENGTH,
    Constraint,
    parse_rule,
)
from flaggery.errors import ValidationError


def one(**fields: object) -> list[list[dict[str, object]]]:
    return [[{"contextName": "x", **fields}]]


def refusal(raw: object) -> str:
    with pytest.raises(ValidationError) as refused:
        parse_rule(raw)
    return str(refused.value)


def test_an_unleash_export_with_both_value_fields_is_accepted() -> None:
    exported = [
        [
            {
                "contextName": "version",
                "operator": "SEMVER_GT",
                "values": [],
                "value": "1.2.2",
                "inverted": False,
                "caseInsensitive": False,
            },
            {"contextName": "country", "operator": "IN", "values": ["DE"], "value": ""},
        ]
    ]
    assert parse_rule(exported) == (
        (
            Constraint("version", "SEMVER_GT", value="1.2.2"),
            Constraint("country", "IN", values=("DE",), value=""),
        ),
    )


def test_empty_rules_and_sets_are_rules() -> None:
    assert parse_rule([]) == ()
    assert parse_rule([[]]) == ((),)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("DE", "Expected `array`, got `str`"),
        (one(operator="IN", values=[1]), "Expected `str`, got `int` - at `rule[0][0].values[0]`"),
        (one(operator="IN", values=["a"], operater="IN"), "unknown field `operater`"),
        (one(operator="LIKE", value="a"), "rule[0][0] ('x' LIKE): unknown operator 'LIKE'."),
        (one(operator="IN", value="a"), "IN takes a list in 'values', not 'value'."),
        (one(operator="NUM_EQ", values=["1"]), "NUM_EQ takes one value in 'value'"),
        (one(operator="NUM_EQ"), "NUM_EQ needs 'value'."),
        (one(operator="NUM_EQ", value="twelve"), "'twelve' is not a number such as"),
        (one(operator="NUM_EQ", value="1e999"), "'1e999' is not a number"),
        (one(operator="DATE_AFTER", value="2026-01-31"), "is not an RFC 3339 date-time"),
        (one(operator="SEMVER_EQ", value="1.2"), "'1.2' is not a strict semantic version"),
        (one(operator="SEMVER_EQ", value="01.2.3"), "is not a strict semantic version"),
        (one(operator="REGEX", value="(a)\\1"), "does not compile with RE2 (invalid escape"),
        (one(operator="IN_CIDR", values=["10.0.0.0/8", "10.0.0.0/33"]), "values[1] '10.0.0.0/33'"),
        (one(operator="IN", values=["a\x00"]), "may not contain NUL characters"),
        ([[{"contextName": "9lives", "operator": "IN", "values": []}]], "contextName must be"),
        ([[{"contextName": "a b", "operator": "IN", "values": []}]], "contextName must be"),
    ],
)
def test_refusals_say_where_and_what(raw: object, message: str) -> None:
    assert message in refusal(raw)


def test_the_bounds_are_refused_with_their_numbers() -> None:
    in_list = [f"v{i}" for i in range(MAX_IN_VALUES)]
    assert parse_rule(one(operator="IN", values=in_list))
    assert f"at most {MAX_IN_VALUES:,} values; got {MAX_IN_VALUES + 1:,}" in refusal(
        one(operator="NOT_IN", values=[*in_list, "one more"])
    )
    cidrs = [f"10.{i // 256}.{i % 256}.0/24" for i in range(MAX_OTHER_VALUES + 1)]
    assert f"IN_CIDR takes at most {MAX_OTHER_VALUES:,} values" in refusal(
        one(operator="IN_CIDR", values=cidrs)
    )
    long_value = "a" * (MAX_VALUE_LENGTH + 1)
    assert f"at most {MAX_VALUE_LENGTH:,} characters" in refusal(
        one(operator="REGEX", value=long_value)
    )
    constraint = {"contextName": "x", "operator": "IN", "values": ["a"]}
    assert f"at most {MAX_CONSTRAINTS_PER_SET} constraints" in refusal(
        [[constraint] * (MAX_CONSTRAINTS_PER_SET + 1)]
    )
    assert f"at most {MAX_SETS} constraint sets" in refusal([[constraint]] * (MAX_SETS + 1))
    wide = {"contextName": "x", "operator": "IN", "values": in_list}
    assert f"at most {MAX_RULE_VALUES:,} values in all" in refusal([[wide], [wide], [wide]])

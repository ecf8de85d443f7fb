"""Every case of the Unleash client specification's constraint files, through flaggery's rules.

Two answers per case: the engine's (a rule compiled as given, even one the store refuses: the
engine must fail closed or follow the specification) and the store's (a rule the store refuses
was never written, so its feature is off). docs/targeting.md quotes the counts asserted here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from flaggery.engine.rules import Rule, RuleMatcher, parse_rule
from flaggery.errors import ValidationError
from tests.engine.rules.unleash_spec import SPEC_FILES, SpecCase, load_cases

# Every case with a date gives currentTime; the clock is for the others (they ignore it).
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

# Rules the store refuses, each for a value the engine could not use as written.
REFUSED = {
    "F7.invalid-operator": "unknown operator",
    "F8.invalidSemverWithLeadingV": "is not a strict semantic version",
    "invalid-regex-defaults-to-false": "does not compile with RE2",
    "R90.reject_lookahead": "does not compile with RE2",
    "R91.reject_backreference": "does not compile with RE2",
    "CIDR.mixed.values": "is not an IP address or CIDR range",
    "CIDR.invalid.only": "is not an IP address or CIDR range",
    "CIDR.ipv6.mixed.values": "is not an IP address or CIDR range",
    "Feature.remoteAddress.C": "is not an IP address or CIDR range",
}
# The cases whose answer differs through the store: Unleash skips an invalid entry of an
# IP list and matches on the others; flaggery refuses the list when it is written.
STORE_DIFFERS = {
    "Valid CIDR should match even when invalid entries exist",
    "Valid IPv6 CIDR should match even when invalid entries exist",
    "Feature.remoteAddress.C should be enabled for remoteAddress 192.168.0.3",
}
CASES = 161


@pytest.fixture(scope="module")
def spec() -> tuple[dict[str, dict[str, Rule]], list[SpecCase]]:
    return load_cases()


def engine_answer(rules: dict[str, Rule], case: SpecCase) -> bool:
    return case.feature in RuleMatcher(rules).groups(case.context, NOW)


@pytest.mark.parametrize("file", SPEC_FILES)
def test_the_engine_answers_every_case(
    spec: tuple[dict[str, dict[str, Rule]], list[SpecCase]], file: str
) -> None:
    rules, cases = spec
    mine = [case for case in cases if case.file == file]
    wrong = [case.description for case in mine if engine_answer(rules[file], case) != case.expected]
    assert mine and not wrong


def test_the_store_refuses_exactly_the_rules_with_unusable_values(
    spec: tuple[dict[str, dict[str, Rule]], list[SpecCase]],
) -> None:
    refused: dict[str, str] = {}
    for rules in spec[0].values():
        for feature, rule in rules.items():
            try:
                parse_rule(msgspec.to_builtins(rule))
            except ValidationError as error:
                refused[feature] = str(error)
    assert sorted(refused) == sorted(REFUSED)
    for feature, reason in REFUSED.items():
        assert reason in refused[feature]


def test_through_the_store_all_but_three_cases_pass(
    spec: tuple[dict[str, dict[str, Rule]], list[SpecCase]],
) -> None:
    rules, cases = spec
    differ = []
    for case in cases:
        stored = {name: rule for name, rule in rules[case.file].items() if name not in REFUSED}
        if engine_answer(stored, case) is not case.expected:
            differ.append(case.description)
    assert len(cases) == CASES
    assert set(differ) == STORE_DIFFERS
    assert len(cases) - len(differ) == 158

"""RuleMatcher: which rule groups a context matches, each distinct predicate evaluated once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flaggery.engine.rules import Constraint, Rule, RuleMatch, RuleMatcher, parse_rule
from flaggery.engine.rules import predicates as predicates_module
from flaggery.engine.rules.matcher import KNOWN_LENGTH
from flaggery.engine.rules.predicates import Predicate

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def rule(*sets: list[dict[str, object]]) -> Rule:
    return parse_rule(list(sets))


def c(name: str, operator: str, *values: str, **flags: bool) -> dict[str, object]:
    one = {"contextName": name, "operator": operator, **flags}
    if operator in ("IN", "NOT_IN", "IN_CIDR") or operator.startswith("STR_"):
        return {**one, "values": list(values)}
    return {**one, "value": values[0]}


GERMANY = rule([c("country", "IN", "DE", "AT")])
NEW_APP = rule([c("version", "SEMVER_GTE", "2.1.0")], [c("plan", "IN", "pro")])


def test_groups_come_in_name_order_with_the_set_that_matched() -> None:
    matcher = RuleMatcher({"zz-new-app": NEW_APP, "germany": GERMANY, "never": ()})
    found = matcher.explain({"country": "DE", "plan": "pro", "version": "1.0.0"}, NOW)
    assert found == RuleMatch(("germany", "zz-new-app"), (0, 1))
    assert matcher.groups({"country": "FR"}, NOW) == ()


def test_an_empty_set_matches_every_request_and_no_set_matches_none() -> None:
    matcher = RuleMatcher({"everyone": ((),), "nobody": ()})
    assert matcher.groups({}, NOW) == ("everyone",)
    assert matcher.groups({"anything": "x"}, NOW) == ("everyone",)


def test_no_rule_groups_match_nothing() -> None:
    assert not RuleMatcher({})
    assert RuleMatcher({}).groups({"country": "DE"}, NOW) == ()


@pytest.mark.parametrize(
    ("value", "matches"),
    [(3, True), (3.0, True), ("3", True), (True, False), ([3], False), ({"n": 3}, False)],
)
def test_numbers_and_text_read_alike_and_other_types_are_missing(
    value: object, matches: bool
) -> None:
    matcher = RuleMatcher(
        {"three": rule([c("n", "NUM_EQ", "3")]), "t": rule([c("b", "IN", "true")])}
    )
    assert ("three" in matcher.groups({"n": value}, NOW)) is matches
    assert matcher.groups({"b": True}, NOW) == ("t",)


def test_missing_attributes_follow_the_specification_and_inverted_applies_after() -> None:
    matcher = RuleMatcher(
        {
            "in": rule([c("x", "IN", "a")]),
            "not-in": rule([c("x", "NOT_IN", "a")]),
            "not-num": rule([c("x", "NUM_GT", "1", inverted=True)]),
        }
    )
    assert matcher.groups({}, NOW) == ("not-in", "not-num")
    assert matcher.groups({"x": None}, NOW) == ("not-in", "not-num")
    assert matcher.groups({"x": "a"}, NOW) == ("in", "not-num")


def test_user_id_falls_back_to_the_targeting_key() -> None:
    matcher = RuleMatcher({"staff": rule([c("userId", "STR_ENDS_WITH", "@example.com")])})
    assert matcher.groups({"targetingKey": "ann@example.com"}, NOW) == ("staff",)
    assert matcher.groups({"targetingKey": "ann@example.com", "userId": "bob"}, NOW) == ()


def test_current_time_is_the_callers_clock_unless_the_context_gives_one() -> None:
    matcher = RuleMatcher({"after": rule([c("currentTime", "DATE_AFTER", "2026-12-01T00:00:00Z")])})
    assert matcher.groups({}, NOW) == ("after",)
    assert matcher.groups({}, datetime(2026, 11, 30, tzinfo=UTC)) == ()
    assert matcher.groups({"currentTime": "2026-11-30T23:59:59.999+00:00"}, NOW) == ()
    assert matcher.groups({"currentTime": "2026-12-01T01:00:00+01:00"}, NOW) == ()


def test_case_insensitive_acts_on_string_operators_and_regex_not_on_in() -> None:
    matcher = RuleMatcher(
        {
            "contains": rule([c("e", "STR_CONTAINS", "EXAMPLE", caseInsensitive=True)]),
            "regex": rule([c("e", "REGEX", "^ann@", caseInsensitive=True)]),
            "in": rule([c("e", "IN", "ANN@EXAMPLE.COM", caseInsensitive=True)]),
        }
    )
    assert matcher.groups({"e": "Ann@example.com"}, NOW) == ("contains", "regex")


def test_cidr_ranges_merge_and_match_both_ip_versions() -> None:
    matcher = RuleMatcher(
        {"office": rule([c("ip", "IN_CIDR", "10.0.0.0/9", "10.128.0.0/9", "2001:db8::/32")])}
    )
    assert matcher.groups({"ip": "10.200.1.1"}, NOW) == ("office",)
    assert matcher.groups({"ip": "2001:db8::5"}, NOW) == ("office",)
    assert matcher.groups({"ip": "11.0.0.1"}, NOW) == ()
    assert matcher.groups({"ip": "not an address"}, NOW) == ()


def test_each_distinct_predicate_is_evaluated_once_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    original = predicates_module.compile_predicate

    def counting(constraint: Constraint) -> Predicate:
        predicate = original(constraint)
        assert predicate is not None and predicate.test is not None
        test = predicate.test

        def counted(operand: object) -> bool:
            calls.append(constraint.context_name)
            return test(operand)

        return predicate._replace(test=counted)

    monkeypatch.setattr("flaggery.engine.rules.matcher.compile_predicate", counting)
    shared = [c("country", "IN", "DE", "AT")]
    flipped = [c("country", "IN", "AT", "DE", inverted=True), c("n", "NUM_LT", "5")]
    matcher = RuleMatcher({f"g{i}": rule(shared, flipped) for i in range(10)})
    assert matcher.groups({"country": "FR", "n": 1}, NOW) == tuple(f"g{i}" for i in range(10))
    assert sorted(calls) == ["country", "n"]


def test_a_rule_the_store_would_refuse_fails_closed_even_inverted() -> None:
    broken = (
        (Constraint("x", "NO_SUCH_OPERATOR", value="1", inverted=True),),
        (Constraint("x", "SEMVER_GT", value="v1.0.0", inverted=True),),
        (Constraint("x", "REGEX", value="(?=a)", inverted=True),),
    )
    matcher = RuleMatcher({"broken": broken})
    assert matcher.groups({"x": "1.0.0"}, NOW) == ()
    assert matcher.groups({}, NOW) == ()


def test_only_short_values_are_kept_between_requests() -> None:
    matcher = RuleMatcher({"long": rule([c("x", "STR_CONTAINS", "needle")])})
    long_value = "needle" + "h" * KNOWN_LENGTH
    for _ in range(2):
        assert matcher.groups({"x": long_value}, NOW) == ("long",)
        assert matcher.groups({"x": "needle"}, NOW) == ("long",)
    (attribute,) = matcher._attributes
    assert list(attribute.known) == ["needle"]


def test_the_clocks_answer_is_kept_between_dates_only() -> None:
    """Date rules on the caller's clock answer as the same instant given as text would, in
    any order of instants: before, at, between and after the rules' dates, and back."""
    start, end = datetime(2026, 12, 20, tzinfo=UTC), datetime(2027, 1, 6, tzinfo=UTC)
    matcher = RuleMatcher(
        {
            "holiday": rule(
                [
                    c("currentTime", "DATE_AFTER", "2026-12-20T00:00:00Z"),
                    c("currentTime", "DATE_BEFORE", "2027-01-06T00:00:00Z"),
                ]
            ),
            "not-yet": rule([c("currentTime", "DATE_BEFORE", "2026-12-20T00:00:00Z")]),
        }
    )
    tick = timedelta(microseconds=1)
    instants = [
        start - timedelta(days=1), start - tick, start, start + tick, start + timedelta(days=3),
        end - tick, end, end + tick, start + tick, start, start - tick, end + timedelta(days=9),
        end - tick, start - timedelta(days=400),
    ]  # fmt: skip
    for now in instants:
        as_text = now.isoformat().replace("+00:00", "Z")
        assert matcher.groups({}, now) == matcher.groups({"currentTime": as_text}, now), now
    assert matcher.groups({}, start) == ()
    assert matcher.groups({}, start + tick) == ("holiday",)
    assert matcher.groups({}, start - tick) == ("not-yet",)
    assert matcher.groups({}, end) == ()
    naive = datetime(2026, 12, 24, 12)  # a naive clock reads as UTC
    assert matcher.groups({}, naive) == ("holiday",)


def test_the_clock_is_read_afresh_when_other_operators_read_current_time() -> None:
    matcher = RuleMatcher(
        {
            "after": rule([c("currentTime", "DATE_AFTER", "2026-12-01T00:00:00Z")]),
            "december": rule([c("currentTime", "STR_STARTS_WITH", "2026-12")]),
        }
    )
    assert matcher.groups({}, NOW) == ("after", "december")
    assert matcher.groups({}, datetime(2027, 1, 1, tzinfo=UTC)) == ("after",)
    assert matcher.groups({}, NOW) == ("after", "december")

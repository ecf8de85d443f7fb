"""No rule the store accepts can make a snapshot fail to build or a request fail to match.

Rules are drawn at the edges of what `parse_rule` accepts (every operator, the longest names
and values, the most values, patterns RE2 finds hardest within the length bound, dates at both
ends of the calendar with extreme offsets) and kept only when `parse_rule` accepts them;
contexts carry the awkward values a client can send (NaN, infinities, huge integers, lone
surrogates, nested objects).
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flaggery.engine import build_snapshot
from flaggery.engine.model import Group
from flaggery.engine.rules import (
    MAX_CONSTRAINTS_PER_SET,
    MAX_IN_VALUES,
    MAX_VALUE_LENGTH,
    OPERATORS,
    Rule,
    parse_rule,
)
from flaggery.errors import ValidationError
from tests.engine.strategies import make_state

NAMES = ["a", "_", "x" * 100, "currentTime", "userId", "app.version:major-1"]
LONG = "\U0010fffd" * MAX_VALUE_LENGTH
TEXTS = ["", "a", LONG, "é" * 999, "DE", "0", "-0", "1e308", ".5", "5.", "1.2.3"]
NUMBERS = [
    "0",
    "-0",
    "1e308",
    "-1e308",
    "5e-324",
    ".5",
    "5.",
    "+7",
    "123456789012345678901234567890",
]
DATES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999999-14:00",
    "2026-12-07T12:00:00Z",
    "2026-12-07 12:00:00.1z",
]
SEMVERS = ["0.0.0", "1.2.3-rc.1+build.5", "999999999999999999999.0.0", "1.0.0-" + "a." * 100 + "a"]
PATTERNS = ["", "^$", "(a|aa)*b", "(?i)(x+x+)+y", "[[:alpha:]]{1000}", "(" * 300 + ")" * 300, LONG]
CIDRS = ["0.0.0.0/0", "::/0", "255.255.255.255", "2001:db8::1/128", "10.1.2.3/8"]
VALUES = {
    "IN_CIDR": CIDRS,
    "REGEX": PATTERNS,
    **{op: NUMBERS for op in OPERATORS if op.startswith("NUM_")},
    **{op: DATES for op in OPERATORS if op.startswith("DATE_")},
    **{op: SEMVERS for op in OPERATORS if op.startswith("SEMVER_")},
}
SINGLE = {op for op in OPERATORS if op.startswith(("NUM_", "DATE_", "SEMVER_")) or op == "REGEX"}


@st.composite
def constraints(draw: st.DrawFn) -> dict[str, object]:
    operator = draw(st.sampled_from(sorted(OPERATORS)))
    pool = VALUES.get(operator, TEXTS)
    constraint: dict[str, object] = {
        "contextName": draw(st.sampled_from(NAMES)),
        "operator": operator,
        "inverted": draw(st.booleans()),
        "caseInsensitive": draw(st.booleans()),
    }
    if operator in SINGLE:
        constraint["value"] = draw(st.sampled_from(pool))
    elif operator in ("IN", "NOT_IN") and draw(st.integers(0, 9)) == 0:
        constraint["values"] = [str(i) for i in range(MAX_IN_VALUES)]
    else:
        constraint["values"] = draw(st.lists(st.sampled_from(pool), max_size=5))
    return constraint


rules = st.lists(
    st.lists(constraints(), max_size=MAX_CONSTRAINTS_PER_SET).map(list), min_size=0, max_size=4
)
attribute_values = st.sampled_from(
    [
        None,
        True,
        0,
        -(2**63),
        2**64,
        10**5000,
        float("nan"),
        float("inf"),
        -0.0,
        1e308,
        "",
        LONG * 4,
        "\ud800",
        "1.2.3",
        "2026-12-07T12:00:00Z",
        "::1",
        "10.0.0.1",
        "a" * 1000 + "b",
        ["DE"],
        {"nested": "DE"},
    ]
)
contexts = st.dictionaries(st.sampled_from([*NAMES, "targetingKey"]), attribute_values)
times = st.sampled_from(
    [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC), datetime(2026, 12, 7)]
)


def accepted(raw: object) -> Rule:
    try:
        return parse_rule(raw)
    except ValidationError:
        assume(False)
        raise


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(rules, min_size=1, max_size=3), contexts, times)
def test_accepted_rules_build_and_match_any_context(
    raws: list[object], context: dict[str, object], now: datetime
) -> None:
    groups = [Group(f"g{i}", {}, accepted(raw)) for i, raw in enumerate(raws)]
    snapshot = build_snapshot(make_state(buckets=[1], groups=groups), now)
    matched = snapshot.config.rules.explain(context, now)
    assert set(matched.groups) <= {group.name for group in groups}
    snapshot.config.rules.view_groups(("g0",), context, now)

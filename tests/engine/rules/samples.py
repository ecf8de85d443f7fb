"""A few rules over a small vocabulary of attributes, and contexts that hit and miss them, for
the engine's random states (tests/engine/strategies.py)."""

from __future__ import annotations

from hypothesis import strategies as st

from flaggery.engine.rules import Rule, parse_rule

__all__ = ["SAMPLE_CONTEXTS", "SAMPLE_RULES"]

_RAW: tuple[list[list[dict[str, object]]], ...] = (
    [],
    [[]],
    [[{"contextName": "plan", "operator": "IN", "values": ["pro", "team"]}]],
    [[{"contextName": "country", "operator": "NOT_IN", "values": ["DE"]}]],
    [
        [{"contextName": "version", "operator": "SEMVER_GTE", "value": "2.0.0"}],
        [{"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"]}],
    ],
    [
        [
            {"contextName": "plan", "operator": "IN", "values": ["pro"]},
            {"contextName": "country", "operator": "IN", "values": ["DE"], "inverted": True},
        ]
    ],
)
SAMPLE_RULES: tuple[Rule, ...] = tuple(parse_rule(raw) for raw in _RAW)

SAMPLE_CONTEXTS = st.dictionaries(
    st.sampled_from(["plan", "country", "version", "email", "other"]),
    st.sampled_from(["pro", "team", "free", "DE", "FR", "1.9.0", "2.0.0", "a@example.com", 3]),
    max_size=4,
)

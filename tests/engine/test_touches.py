"""What a change-log fact touches (flaggery.engine.touches): removals name what they removed."""

from __future__ import annotations

from datetime import UTC, datetime

from flaggery.engine.model import (
    AbTest,
    AbTestFact,
    BucketFact,
    Feature,
    FeatureFact,
    Group,
    GroupFact,
    GrownTest,
    GrowthFact,
    ReloadFact,
    Rollout,
    RolloutFact,
    Subject,
    SubjectFact,
    TestGroup,
    decode_facts,
    encode_facts,
)
from flaggery.engine.touches import Touched, touched

T0 = datetime(2030, 1, 1, tzinfo=UTC)
TEST = AbTest("t", T0, T0, (TestGroup("a", 1.0, {"layout": "A"}, frozenset({1})),))


def test_each_fact_type() -> None:
    assert touched(SubjectFact(7, Subject(1, 1, ("g1",)), left=("g2",))) == Touched(
        members=frozenset({"g1", "g2"}), subjects=frozenset({7})
    )
    assert touched(SubjectFact(7, None, left=("g1",))).members == {"g1"}
    assert touched(FeatureFact("f", None)) == Touched(features=frozenset({"f"}))
    assert touched(RolloutFact("f", Rollout("f", "A", 0.5, frozenset()))).features == {"f"}
    assert touched(AbTestFact("t", TEST)) == Touched(
        features=frozenset({"layout"}), tests=frozenset({"t"})
    )
    assert touched(AbTestFact("t", None, ("layout",))).features == {"layout"}
    assert touched(GroupFact("g", Group("g", {"f": "A"}), ("h",))) == Touched(
        features=frozenset({"f", "h"}), groups=frozenset({"g"})
    )
    growth = GrowthFact(3, 4, {"f": [3]}, {"t": GrownTest(("layout",), {"a": [4]})})
    assert touched(growth) == Touched(features=frozenset({"f", "layout"}), tests=frozenset({"t"}))
    assert touched(BucketFact(3)) == Touched()
    assert touched(ReloadFact(10)).everything


def test_what_a_removal_names_travels_in_the_change_log_and_only_when_set() -> None:
    facts = (SubjectFact(7, None, left=("g1",)), GroupFact("g", None, ("f",)))
    assert decode_facts(encode_facts(facts)) == facts
    # Facts without removals encode as before (rows written by older versions stay readable).
    assert encode_facts((SubjectFact(7, None),)) == b'[{"type":"subject","id":7,"subject":null}]'
    assert encode_facts((FeatureFact("f", Feature("f", ("A",))),)) == (
        b'[{"type":"feature","name":"f","feature":{"name":"f","variants":["A"]}}]'
    )

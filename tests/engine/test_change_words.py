"""A change-log row in words (flaggery.engine.change_words): one sentence per fact kind, with
before -> after when the row recorded its before (migration 0015), the new state and "(before
not recorded)" for older rows. No database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flaggery.engine.change_words import entity_key, sentences
from flaggery.engine.model import (
    DISABLE,
    AbTest,
    AbTestFact,
    BucketFact,
    Fact,
    Feature,
    FeatureFact,
    Group,
    GroupFact,
    GrowthFact,
    ReloadFact,
    Rollout,
    RolloutFact,
    Subject,
    SubjectFact,
    TestGroup,
)

START, END, STOP = (datetime(2026, 12, d, 9, 0, tzinfo=UTC) for d in (1, 31, 7))
TEST = AbTest("ab", START, END, (TestGroup("a", 0.5, {"f": "A"}, frozenset()),))
F = Feature("f", ("A", "B", DISABLE), "A", {"B": 3})


@pytest.mark.parametrize(
    ("fact", "before", "said"),
    [
        (RolloutFact("f", Rollout("f", "B", 0.5, frozenset())),
         RolloutFact("f", Rollout("f", "B", 0.1, frozenset())), "Rollout of f: B 10% -> 50%"),
        (RolloutFact("f", Rollout("f", DISABLE, 0.125, frozenset(), "beta")),
         RolloutFact("f", Rollout("f", "B", 0.125, frozenset())),
         "Rollout of f: B 12.5% -> Off (disabled) 12.5% of group beta"),
        (RolloutFact("f", Rollout("f", "B", 0.1, frozenset())), RolloutFact("f", None),
         "Rollout of f created: B 10%"),
        (RolloutFact("f", None), RolloutFact("f", Rollout("f", "B", 0.3, frozenset())),
         "Rollout of f removed (was B 30%)"),
        (FeatureFact("f", F), FeatureFact("f", Feature("f", ("A", "B"), "B", {"B": 2})),
         "Feature f: variant Off (disabled) added; default B -> A; value of B 2 -> 3"),
        (FeatureFact("f", Feature("f", ("A",), "A", killed=True)),
         FeatureFact("f", Feature("f", ("A",), "A")), "Feature f: kill switch on"),
        (FeatureFact("f", Feature("f", ())), FeatureFact("f", None), "Feature f created"),
        (FeatureFact("f", None), FeatureFact("f", F), "Feature f removed"),
        (GroupFact("beta", Group("beta", {"f": DISABLE})), GroupFact("beta", Group("beta", {})),
         "Group beta: override of f none -> Off (disabled)"),
        (GroupFact("beta", None, ("f",)), GroupFact("beta", Group("beta", {"f": "A"})),
         "Group beta removed with its overrides of f"),
        (SubjectFact(5, Subject(3, 1, ("beta",))), SubjectFact(5, Subject(1, 1)),
         "Subject 5: weight 1 -> 3; joined beta"),
        (SubjectFact(5, Subject(1, 1), ("beta",)), SubjectFact(5, Subject(1, 1, ("beta",))),
         "Subject 5: left beta"),
        (SubjectFact(5, Subject(1, 2)), SubjectFact(5, None),
         "Subject 5 added: weight 1, bucket 2"),
        (SubjectFact(5, None, ("beta",)), SubjectFact(5, Subject(1, 2, ("beta",))),
         "Subject 5 removed, it was in beta"),
        (AbTestFact("ab", TEST), AbTestFact("ab", None),
         "A/B test ab created: a 50%; 2026-12-01 09:00 to 2026-12-31 09:00 UTC"),
        (AbTestFact("ab", AbTest("ab", START, STOP, TEST.groups)), AbTestFact("ab", TEST),
         "A/B test ab stopped: end 2026-12-31 09:00 -> 2026-12-07 09:00 UTC"),
        (AbTestFact("ab", None, ("f",)), AbTestFact("ab", TEST), "A/B test ab removed (it set f)"),
    ],
)  # fmt: skip
def test_a_fact_with_its_before_says_before_and_after(fact: Fact, before: Fact, said: str) -> None:
    assert sentences([fact], [before]) == [said]


def test_rows_without_a_before_give_the_new_state() -> None:
    facts: list[Fact] = [
        RolloutFact("f", Rollout("f", "B", 0.5, frozenset())),
        FeatureFact("f", F),
        GroupFact("beta", Group("beta", {"f": "A"})),
        SubjectFact(5, Subject(2, 1, ("beta",))),
    ]
    assert sentences(facts, None) == [
        "Rollout of f: B 50% (before not recorded)",
        "Feature f: variants A, B, Off (disabled); default A (before not recorded)",
        "Group beta: overrides f -> A (before not recorded)",
        "Subject 5: weight 2, groups beta (before not recorded)",
    ]


def test_facts_about_no_one_entity() -> None:
    growth = GrowthFact(11, 20, {"f": [12]}, {})
    split = GrowthFact(21, 40, {}, {}, split=2)
    assert sentences([growth, split, BucketFact(7), ReloadFact(20_000)], []) == [
        "Buckets 11-20 added; rollouts of f took their share",
        "Buckets 21-40 added (every bucket split in 2: hashed keys keep their variants)",
        "Bucket 7 added",
        "A bulk change of 20000 items (too many to list one by one)",
    ]
    assert entity_key(growth) is None and entity_key(RolloutFact("f", None)) == ("rollout", "f")

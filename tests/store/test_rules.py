"""Group rules and audiences in the store: each write one transaction, one revision, one
change-log row; refusals write nothing; the loader reads back what the facts said.
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flaggery import errors
from flaggery.core import Flaggery
from flaggery.engine.config import Config
from flaggery.engine.model import AbTestFact, GroupFact, RolloutFact
from flaggery.engine.rules import Constraint
from flaggery.store.loader import load_state
from flaggery.store.repository import AsyncFlaggery
from tests.fakes import FakeClock

GERMANY = [[{"contextName": "country", "operator": "IN", "values": ["DE", "AT"]}]]


async def _seed(store: AsyncFlaggery) -> None:
    await store.increase_buckets(4)
    await store.add_feature("checkout")
    await store.add_variant("old", "checkout", make_default=True)
    await store.add_variant("new", "checkout")
    await store.add_group("germany")


async def test_a_rule_is_set_read_replaced_and_removed_one_revision_each(
    store: AsyncFlaggery,
) -> None:
    await _seed(store)
    before = await store.revision()
    await store.set_group_rule("germany", GERMANY)
    assert (await store.get_group("germany")).rule == (
        (Constraint("country", "IN", values=("DE", "AT")),),
    )
    await store.set_group_rule("germany", GERMANY)  # the same rule: nothing written
    assert await store.revision() == before + 1
    await store.set_group_rule("germany", [[], *GERMANY])
    await store.rm_group_rule("germany")
    await store.rm_group_rule("germany")  # no rule: nothing written
    assert (await store.get_group("germany")).rule is None
    page = await store.changes(after=before)
    assert [c.operation for c in page.changes] == ["set_group_rule"] * 2 + ["rm_group_rule"]
    facts = [fact for change in page.changes for fact in change.facts]
    assert len(facts) == 3
    rules = [fact.group.rule for fact in facts if isinstance(fact, GroupFact) and fact.group]
    assert rules == [
        ((Constraint("country", "IN", values=("DE", "AT")),),),
        ((), (Constraint("country", "IN", values=("DE", "AT")),)),
        None,
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ([[{"contextName": "v", "operator": "REGEX", "value": "(?=x)"}]], "does not compile"),
        ([[{"contextName": "v", "operator": "SEMVER_GT", "value": "v2"}]], "semantic version"),
        ("country=DE", "Expected `array`"),
        ([[{"contextName": "v", "operator": "IN", "values": ["x"] * 10_001}]], "at most 10,000"),
    ],
)
async def test_a_refused_rule_writes_nothing(
    store: AsyncFlaggery, rule: object, message: str
) -> None:
    await _seed(store)
    before = await store.revision()
    with pytest.raises(errors.ValidationError, match=message):
        await store.set_group_rule("germany", rule)
    with pytest.raises(errors.GroupNotFound):
        await store.set_group_rule("nowhere", GERMANY)
    assert await store.revision() == before
    assert (await store.get_group("germany")).rule is None


async def test_a_rollout_audience_changes_with_its_proportion_in_one_revision(
    store: AsyncFlaggery,
) -> None:
    await _seed(store)
    await store.add_rollout("new", "checkout")
    before = await store.revision()
    await store.set_rollout("checkout", proportion=0.5, audience="germany")
    rollout = await store.get_rollout("checkout")
    assert (rollout.proportion, rollout.audience) == (0.5, "germany")
    (change,) = (await store.changes(after=before)).changes
    (fact,) = change.facts
    assert isinstance(fact, RolloutFact) and fact.rollout and fact.rollout.audience == "germany"
    with pytest.raises(errors.GroupNotFound):
        await store.set_rollout("checkout", proportion=1.0, audience="nowhere")
    assert (await store.get_rollout("checkout")).proportion == 0.5  # all or nothing
    with pytest.raises(errors.GroupIsUsed, match="audience of the rollout of 'checkout'"):
        await store.rm_group("germany")
    await store.set_rollout("checkout", audience="")
    assert (await store.get_rollout("checkout")).audience is None
    await store.set_rollout_audience("checkout", "germany")
    await store.set_rollout_audience("checkout", None)
    await store.rm_group("germany")
    assert await store.revision() == before + 5


async def test_an_abtest_audience_is_given_at_creation_and_changed(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    await _seed(store)
    groups = {"a": {"checkout": "old"}, "b": {"checkout": "new"}}
    end = clock.now + timedelta(days=7)
    with pytest.raises(errors.GroupNotFound):
        await store.add_abtest("t", None, end, groups, audience="nowhere")
    with pytest.raises(errors.AbTestNotFound):
        await store.get_abtest("t")
    await store.add_abtest("t", None, end, groups, audience="germany")
    assert (await store.get_abtest("t")).audience == "germany"
    with pytest.raises(errors.GroupIsUsed, match="A/B test 't'"):
        await store.rm_group("germany")
    before = await store.revision()
    await store.set_abtest_audience("t", None)
    await store.set_abtest_audience("t", None)
    assert (await store.get_abtest("t")).audience is None
    (change,) = (await store.changes(after=before)).changes
    assert isinstance(change.facts[0], AbTestFact)


async def test_an_empty_audience_is_no_audience_everywhere(
    store: AsyncFlaggery, clock: FakeClock
) -> None:
    """ "" is no audience on every write that takes one, as set_rollout's "" (it was
    GroupNotFound for an A/B test and a new rollout, so one entry point cleared, another
    refused)."""
    await _seed(store)
    groups = {"a": {"checkout": "old"}, "b": {"checkout": "new"}}
    await store.add_abtest("t", None, clock.now + timedelta(days=7), groups, audience="")
    assert (await store.get_abtest("t")).audience is None
    await store.set_abtest_audience("t", "germany")
    await store.set_abtest_audience("t", "")
    assert (await store.get_abtest("t")).audience is None
    await store.add_rollout("new", "checkout", proportion=0.5, audience="")
    assert (await store.get_rollout("checkout")).audience is None
    await store.set_rollout_audience("checkout", "germany")
    await store.set_rollout_audience("checkout", "")
    assert (await store.get_rollout("checkout")).audience is None


async def test_the_loader_reads_what_the_facts_said(store: AsyncFlaggery, clock: FakeClock) -> None:
    await _seed(store)
    empty = Config.of(await load_state(store.database))
    await store.set_group_rule("germany", GERMANY)
    await store.add_rollout("new", "checkout")
    await store.set_rollout("checkout", proportion=0.5, audience="germany")
    groups = {"a": {"checkout": "old"}, "b": {"checkout": "new"}}
    await store.add_abtest("t", None, clock.now + timedelta(days=1), groups, audience="germany")
    changes = (await store.changes(after=await store.revision() - 4)).changes
    applied = empty.with_facts(fact for change in changes for fact in change.facts)
    loaded = Config.of(await load_state(store.database))
    assert loaded == applied
    assert loaded.rules.groups({"country": "AT"}, clock.now) == ("germany",)


def test_the_sync_facade_edits_rules_and_audiences(db_url: str) -> None:
    with Flaggery.from_db_url(db_url) as flaggery:
        flaggery.increase_buckets(1)
        flaggery.add_feature("f")
        flaggery.add_variant("A", "f")
        flaggery.add_group("g")
        flaggery.set_group_rule("g", GERMANY)
        flaggery.add_rollout("A", "f")
        flaggery.set_rollout("f", proportion=1.0, audience="g")
        flaggery.set_rollout_audience("f", None)
        flaggery.rm_group_rule("g")
        assert flaggery.get_group("g").rule is None
        assert flaggery.get_rollout("f").audience is None


async def test_rule_writes_are_conditional_on_the_group_unchanged(store: AsyncFlaggery) -> None:
    await _seed(store)
    seen = await store.revision()
    await store.set_group_rule("germany", GERMANY, if_revision=seen)
    with pytest.raises(errors.EntityChanged):
        await store.rm_group_rule("germany", if_revision=seen)  # the rule changed since
    assert (await store.get_group("germany")).rule is not None
    await store.rm_group_rule("germany", if_revision=await store.revision())
    assert (await store.get_group("germany")).rule is None

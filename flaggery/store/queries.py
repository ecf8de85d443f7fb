"""Read the configuration entities as engine model objects.

Used twice: inside a write transaction, to record the new state of what it changed as a
change-log fact; and by the loader, to build a full State. Configuration (features, rollouts,
tests, groups) is small, so these read whole tables or one entity without cleverness.

A name the database cannot hold (`storable`) names nothing: looking it up answers "not found"
here, once for every caller, instead of an error that differs between the databases.
"""

from __future__ import annotations

from collections import defaultdict

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from flaggery.engine.model import AbTest, Feature, Group, JsonValue, Rollout, Subject, TestGroup
from flaggery.engine.rules import Rule
from flaggery.errors import GroupNotFound
from flaggery.store import tables as t
from flaggery.store.validation import storable

__all__ = [
    "decode_rule",
    "decode_value",
    "encode_rule",
    "encode_value",
    "read_abtests",
    "read_bucket_weights",
    "read_features",
    "read_groups",
    "read_key_splits",
    "read_members_without",
    "read_rollouts",
    "read_subject",
    "read_subject_groups",
    "require_group",
]

_value_encoder = msgspec.json.Encoder()
_value_decoder = msgspec.json.Decoder(JsonValue)
_rule_decoder = msgspec.json.Decoder(Rule)


async def read_bucket_weights(conn: AsyncConnection) -> dict[int, int]:
    """bucket id -> weight, for the allocation algorithms."""
    return dict((await conn.execute(select(t.buckets.c.id, t.buckets.c.weight))).all())


async def read_features(conn: AsyncConnection, name: str | None = None) -> dict[str, Feature]:
    if name is not None and not storable(name):
        return {}
    f = t.features.c
    query = select(f.name, f.default_variant, f.killed).order_by(f.name)
    variant_query = select(t.variants.c.feature, t.variants.c.name, t.variants.c.value).order_by(
        t.variants.c.feature, t.variants.c.name
    )
    if name is not None:
        query = query.where(t.features.c.name == name)
        variant_query = variant_query.where(t.variants.c.feature == name)
    variants: dict[str, list[str]] = defaultdict(list)
    values: dict[str, dict[str, JsonValue]] = defaultdict(dict)
    for feature, variant, value in await conn.execute(variant_query):
        variants[feature].append(variant)
        if value is not None:
            values[feature][variant] = decode_value(value)
    return {
        feature: Feature(feature, tuple(variants[feature]), default, values[feature], killed)
        for feature, default, killed in await conn.execute(query)
    }


def encode_value(value: JsonValue | None) -> str | None:
    """A variant value as its column holds it: JSON text, NULL for "the name"."""
    return None if value is None else _value_encoder.encode(value).decode()


def decode_value(text: str) -> JsonValue:
    return _value_decoder.decode(text)


async def read_rollouts(conn: AsyncConnection, feature: str | None = None) -> dict[str, Rollout]:
    if feature is not None and not storable(feature):
        return {}
    query = select(t.rollouts)
    bucket_query = select(t.rollout_buckets)
    if feature is not None:
        query = query.where(t.rollouts.c.feature == feature)
        bucket_query = bucket_query.where(t.rollout_buckets.c.feature == feature)
    buckets: dict[str, set[int]] = defaultdict(set)
    for name, bucket_id in await conn.execute(bucket_query):
        buckets[name].add(bucket_id)
    return {
        row.feature: Rollout(
            row.feature,
            row.variant,
            row.proportion,
            frozenset(buckets[row.feature]),
            row.audience,
        )
        for row in await conn.execute(query)
    }


async def read_abtests(conn: AsyncConnection, name: str | None = None) -> dict[str, AbTest]:
    if name is not None and not storable(name):
        return {}
    tests_query = select(t.abtests).order_by(t.abtests.c.name)
    groups_query = select(t.abtest_groups).order_by(t.abtest_groups.c.position)
    variants_query = select(t.abtest_group_variants)
    buckets_query = select(t.abtest_group_buckets)
    if name is not None:
        tests_query = tests_query.where(t.abtests.c.name == name)
        groups_query = groups_query.where(t.abtest_groups.c.test == name)
        variants_query = variants_query.where(t.abtest_group_variants.c.test == name)
        buckets_query = buckets_query.where(t.abtest_group_buckets.c.test == name)
    variants: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for row in await conn.execute(variants_query):
        variants[row.test, row.group][row.feature] = row.variant
    buckets: dict[tuple[str, str], set[int]] = defaultdict(set)
    for row in await conn.execute(buckets_query):
        buckets[row.test, row.group].add(row.bucket_id)
    groups: dict[str, list[TestGroup]] = defaultdict(list)
    for row in await conn.execute(groups_query):
        key = (row.test, row.name)
        groups[row.test].append(
            TestGroup(row.name, row.proportion, variants[key], frozenset(buckets[key]))
        )
    return {
        row.name: AbTest(
            row.name, row.start, row.end, tuple(groups[row.name]), row.audience, row.auto_stop
        )
        for row in await conn.execute(tests_query)
    }


async def read_groups(conn: AsyncConnection, name: str | None = None) -> dict[str, Group]:
    if name is not None and not storable(name):
        return {}
    groups_query = select(t.groups.c.name, t.groups.c.rule).order_by(t.groups.c.name)
    overrides_query = select(t.group_overrides)
    if name is not None:
        groups_query = groups_query.where(t.groups.c.name == name)
        overrides_query = overrides_query.where(t.group_overrides.c.group == name)
    overrides: dict[str, dict[str, str]] = defaultdict(dict)
    for row in await conn.execute(overrides_query):
        overrides[row.group][row.feature] = row.variant
    return {
        group: Group(group, overrides[group], None if rule is None else decode_rule(rule))
        for group, rule in await conn.execute(groups_query)
    }


async def require_group(conn: AsyncConnection, name: str) -> Group:
    """The group named `name`; GroupNotFound if there is none."""
    group = (await read_groups(conn, name)).get(name)
    if group is None:
        raise GroupNotFound(f"Group {name!r} does not exist.")
    return group


def encode_rule(rule: Rule | None) -> str | None:
    """A rule as ``groups.rule`` holds it: Unleash's JSON, NULL for "no rule"."""
    return None if rule is None else _value_encoder.encode(rule).decode()


def decode_rule(text: str) -> Rule:
    return _rule_decoder.decode(text)


async def read_subject_groups(conn: AsyncConnection, subject_id: int) -> tuple[str, ...]:
    """The subject's groups in the order it joined them."""
    rows = await conn.execute(
        select(t.group_members.c.group)
        .where(t.group_members.c.subject_id == subject_id)
        .order_by(t.group_members.c.joined, t.group_members.c.group)
    )
    return tuple(rows.scalars())


async def read_subject(conn: AsyncConnection, subject_id: int) -> Subject | None:
    row = (
        await conn.execute(
            select(t.subjects.c.weight, t.subjects.c.bucket_id).where(t.subjects.c.id == subject_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return Subject(row.weight, row.bucket_id, await read_subject_groups(conn, subject_id))


async def read_members_without(conn: AsyncConnection, group_name: str) -> dict[int, Subject]:
    """subject id -> the subject as it is once it has left the group, for every member.

    Two statements whatever the group's size (the members are a subquery, not parameters).
    """
    members = t.group_members.c
    member_ids = select(members.subject_id).where(members.group == group_name)
    subjects = t.subjects.c
    rows = await conn.execute(
        select(subjects.id, subjects.weight, subjects.bucket_id).where(subjects.id.in_(member_ids))
    )
    other_groups = await conn.execute(
        select(members.subject_id, members.group)
        .where(members.subject_id.in_(member_ids), members.group != group_name)
        .order_by(members.subject_id, members.joined, members.group)
    )
    groups: dict[int, list[str]] = defaultdict(list)
    for subject_id, group in other_groups:
        groups[subject_id].append(group)
    return {row.id: Subject(row.weight, row.bucket_id, tuple(groups[row.id])) for row in rows}


async def read_key_splits(conn: AsyncConnection) -> tuple[tuple[int, int], ...]:
    """Every growth that split the buckets, in order (flaggery.engine.targeting.Split)."""
    s = t.bucket_splits.c
    rows = await conn.execute(select(s.start, s.multiple).order_by(s.start))
    return tuple((start, multiple) for start, multiple in rows)

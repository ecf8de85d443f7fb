"""A change-log row in words: one sentence per fact, with what it was before and after.

"Rollout of checkout: new_flow 10% -> 50%". The row's ``before`` (migration 0015) holds each
changed entity as it stood before the write; rows written earlier have none, and their
sentences give the new state only ("before not recorded"). The switch over the fact union ends
in `typing.assert_never`: mypy lists this module when a new fact type is added.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import assert_never

from flaggery.engine.model import (
    DISABLE,
    AbTest,
    AbTestFact,
    BucketFact,
    DeliveryFact,
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
    SubjectsFact,
)

__all__ = ["EntityKey", "entity_key", "sentences", "variant_words"]

EntityKey = tuple[str, str | int]
"""(kind, name): the one entity a fact replaces, as History and a revert pair them."""

NOT_RECORDED = " (before not recorded)"
LATE_AFTER_SECONDS = 60
"""A scheduled step or plan move applied this long after its instant is said to be late (the
applier looks every second; only a server that was down or busy misses by a minute)."""


def entity_key(fact: Fact) -> EntityKey | None:
    """The entity `fact` replaces whole; None for growth, buckets and reloads (no one entity)."""
    match fact:
        case SubjectFact(id=sub_id):
            return ("subject", sub_id)
        case FeatureFact(name=name):
            return ("feature", name)
        case RolloutFact(feature=name):
            return ("rollout", name)
        case AbTestFact(name=name):
            return ("abtest", name)
        case GroupFact(name=name):
            return ("group", name)
        case GrowthFact() | BucketFact() | ReloadFact() | DeliveryFact() | SubjectsFact():
            return None
        case _:
            assert_never(fact)


def sentences(facts: Sequence[Fact], before: Sequence[Fact] | None) -> list[str]:
    """One sentence per fact of a change-log row; ``before``: the row's before facts (None for
    a row written before they were recorded)."""
    earlier = {entity_key(fact): fact for fact in before or ()}
    return [_sentence(fact, earlier.get(entity_key(fact)), before is not None) for fact in facts]


def variant_words(variant: str | None) -> str:
    """A variant as a PM reads it: the reserved disabling variant is "Off (disabled)"."""
    if variant is None:
        return "none"
    return "Off (disabled)" if variant == DISABLE else variant


def _sentence(fact: Fact, old: Fact | None, recorded: bool) -> str:
    match fact:
        case SubjectFact(id=sub_id, subject=subject, left=left):
            was = old.subject if isinstance(old, SubjectFact) else None
            return _subject(sub_id, was, subject, left, recorded and old is not None)
        case FeatureFact(name=name, feature=feature):
            was_feature = old.feature if isinstance(old, FeatureFact) else None
            return _feature(name, was_feature, feature, recorded and old is not None)
        case RolloutFact(feature=name, rollout=rollout):
            was_rollout = old.rollout if isinstance(old, RolloutFact) else None
            return _rollout(name, was_rollout, rollout, recorded and old is not None)
        case AbTestFact(name=name, test=test, removed_features=features):
            was_test = old.test if isinstance(old, AbTestFact) else None
            return _abtest(name, was_test, test, features, recorded and old is not None)
        case GroupFact(name=name, group=group, removed_overrides=overrides):
            was_group = old.group if isinstance(old, GroupFact) else None
            return _group(name, was_group, group, overrides, recorded and old is not None)
        case GrowthFact(first=first, last=last, rollouts=rollouts, abtests=abtests):
            took = _names(sorted(rollouts), "rollouts of ") + _names(sorted(abtests), "A/B tests ")
            return f"Buckets {first}-{last} added" + (f"; {took} took their share" if took else "")
        case BucketFact() | SubjectsFact():
            return _added(fact)
        case DeliveryFact(kind=kind, name=name, event=event, detail=detail, late_seconds=late):
            return f"{kind.capitalize()} {name} {event.replace('_', ' ')}" + _delivery(detail, late)
        case ReloadFact(facts=count):
            return f"A bulk change of {count} items (too many to list one by one)"
        case _:
            assert_never(fact)


def _added(fact: BucketFact | SubjectsFact) -> str:
    if isinstance(fact, BucketFact):
        return f"Bucket {fact.id} added"
    return f"{len(fact):,} subjects added in bulk"


def _delivery(detail: str, late_seconds: float | None) -> str:
    late = "" if late_seconds is None else f" ({_late_words(late_seconds)})"
    return (f": {detail}" if detail else "") + late


def _late_words(seconds: float) -> str:
    if seconds < LATE_AFTER_SECONDS:
        return "on time"
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    parts = [f"{hours} h"] * bool(hours) + [f"{minute} min"] * bool(minute)
    return "late by " + " ".join(parts or [f"{second} s"])


def _names(names: Iterable[str], label: str) -> str:
    listed = ", ".join(names)
    return f"{label}{listed}" if listed else ""


def _percent(proportion: float) -> str:
    return f"{proportion * 100:.6g}%"


def _subject(
    sub_id: int, was: Subject | None, now: Subject | None, left: Sequence[str], known: bool
) -> str:
    if now is None:
        groups = f", it was in {', '.join(left)}" if left else ""
        return f"Subject {sub_id} removed{groups}"
    if known and was is None:
        return f"Subject {sub_id} added: weight {now.weight}, bucket {now.bucket}"
    if not known:
        gone = f"; left {', '.join(left)}" if left else ""
        groups = ", ".join(now.groups) or "none"
        return f"Subject {sub_id}: weight {now.weight}, groups {groups}{gone}{NOT_RECORDED}"
    assert was is not None
    parts: list[str] = []
    if was.weight != now.weight:
        parts.append(f"weight {was.weight} -> {now.weight}")
    joined = [group for group in now.groups if group not in was.groups]
    parts += [f"joined {group}" for group in joined]
    parts += [f"left {group}" for group in was.groups if group not in now.groups]
    return f"Subject {sub_id}: " + ("; ".join(parts) or "unchanged")


def _feature(name: str, was: Feature | None, now: Feature | None, known: bool) -> str:
    if now is None:
        return f"Feature {name} removed"
    if known and was is None:
        return f"Feature {name} created"
    if not known or was is None:
        variants = ", ".join(variant_words(v) for v in now.variants) or "none"
        default = variant_words(now.default)
        return f"Feature {name}: variants {variants}; default {default}{NOT_RECORDED}"
    parts = [f"variant {variant_words(v)} added" for v in now.variants if v not in was.variants]
    parts += [f"variant {variant_words(v)} removed" for v in was.variants if v not in now.variants]
    if was.default != now.default:
        parts.append(f"default {variant_words(was.default)} -> {variant_words(now.default)}")
    for variant in now.variants:
        old, new = was.values.get(variant), now.values.get(variant)
        if variant in was.variants and old != new:
            parts.append(f"value of {variant} {_value(old)} -> {_value(new)}")
    if was.killed != now.killed:
        parts.append("kill switch on" if now.killed else "kill switch off")
    return f"Feature {name}: " + ("; ".join(parts) or "unchanged")


def _value(value: object) -> str:
    return "its name" if value is None else repr(value)


def _rollout_words(rollout: Rollout) -> str:
    audience = f" of group {rollout.audience}" if rollout.audience else ""
    return f"{variant_words(rollout.variant)} {_percent(rollout.proportion)}{audience}"


def _rollout(name: str, was: Rollout | None, now: Rollout | None, known: bool) -> str:
    if now is None:
        return f"Rollout of {name} removed" + (f" (was {_rollout_words(was)})" if was else "")
    if known and was is None:
        return f"Rollout of {name} created: {_rollout_words(now)}"
    if not known or was is None:
        return f"Rollout of {name}: {_rollout_words(now)}{NOT_RECORDED}"
    if (was.variant, was.audience) == (now.variant, now.audience):
        moved = f"{_percent(was.proportion)} -> {_rollout_words(now).split(' ', 1)[1]}"
        return f"Rollout of {name}: {variant_words(now.variant)} {moved}"
    return f"Rollout of {name}: {_rollout_words(was)} -> {_rollout_words(now)}"


def _test_words(test: AbTest) -> str:
    groups = ", ".join(f"{group.name} {_percent(group.proportion)}" for group in test.groups)
    audience = f", group {test.audience} only" if test.audience else ""
    span = f"{test.start:%Y-%m-%d %H:%M} to {test.end:%Y-%m-%d %H:%M} UTC"
    return f"{groups}; {span}{audience}"


def _abtest(
    name: str, was: AbTest | None, now: AbTest | None, features: Sequence[str], known: bool
) -> str:
    if now is None:
        return f"A/B test {name} removed" + (f" (it set {', '.join(features)})" if features else "")
    if known and was is None:
        return f"A/B test {name} created: {_test_words(now)}"
    if not known or was is None:
        return f"A/B test {name}: {_test_words(now)}{NOT_RECORDED}"
    if was.end != now.end and was.start == now.start and was.groups == now.groups:
        return (
            f"A/B test {name} stopped: end {was.end:%Y-%m-%d %H:%M} -> {now.end:%Y-%m-%d %H:%M} UTC"
        )
    return f"A/B test {name}: {_test_words(was)} -> {_test_words(now)}"


def _group(
    name: str, was: Group | None, now: Group | None, removed: Sequence[str], known: bool
) -> str:
    if now is None:
        gone = f" with its overrides of {', '.join(removed)}" if removed else ""
        return f"Group {name} removed{gone}"
    if known and was is None:
        return f"Group {name} created"
    if not known or was is None:
        overrides = _overrides(now.overrides)
        gone = f"; override of {', '.join(removed)} removed" if removed else ""
        return f"Group {name}: overrides {overrides}{gone}{NOT_RECORDED}"
    parts = [
        f"override of {feature} {variant_words(was.overrides.get(feature))} -> "
        f"{variant_words(now.overrides.get(feature))}"
        for feature in sorted({*was.overrides, *now.overrides})
        if was.overrides.get(feature) != now.overrides.get(feature)
    ]
    if was.rule != now.rule:
        parts.append(
            "rule removed"
            if now.rule is None
            else "rule set"
            if was.rule is None
            else "rule changed"
        )
    return f"Group {name}: " + ("; ".join(parts) or "unchanged")


def _overrides(overrides: dict[str, str]) -> str:
    pairs = ", ".join(f"{f} -> {variant_words(v)}" for f, v in sorted(overrides.items()))
    return pairs or "none"

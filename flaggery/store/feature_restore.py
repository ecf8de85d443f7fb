"""Restore a feature as it was at a revision: itself, its rollout and every group's override
of it, in one write (`RevertAdmin.restore_feature`).

The state of then is read from the change log: for each of those entities, the ``before`` of
the first change to it after the revision. Later changes to them are undone together; A/B
tests are left as they are (stopping or removing a test is its own decision).
"""

from __future__ import annotations

from flaggery.engine.change_words import EntityKey, entity_key
from flaggery.engine.model import Fact, FeatureFact, GroupFact, RolloutFact
from flaggery.errors import RevertRefused, ValidationError
from flaggery.store.conditions import MAX_CONDITION_SPAN
from flaggery.store.database import WriteTransaction
from flaggery.store.entity_restore import restore_entity, restore_override, rows_after

__all__ = ["restore_as_of"]


async def restore_as_of(tx: WriteTransaction, feature: str, revision: int) -> None:
    head = tx.revision - 1
    if isinstance(revision, bool) or not isinstance(revision, int) or not 0 <= revision <= head:
        raise ValidationError(
            f"revision must be a revision from 0 to the latest, {head}, got {revision!r:.40}."
        )
    if head - revision > MAX_CONDITION_SPAN:
        raise RevertRefused(
            f"Revision {revision} is more than {MAX_CONDITION_SPAN} writes old: too far back "
            "to restore from. Make the changes back by hand."
        )
    targets: dict[EntityKey, Fact] = {}
    for logged in await rows_after(tx, revision):
        for fact in logged.facts:
            key = entity_key(fact)
            if key is None or key in targets or not _concerns(fact, feature):
                continue
            was = {entity_key(b): b for b in logged.before or ()}.get(key)
            if was is None:
                raise RevertRefused(
                    f"{feature} cannot be restored as of revision {revision}: revision "
                    f"{logged.revision} did not record what it replaced (written before "
                    "migration 0015, or a bulk write). Make the changes back by hand."
                )
            targets[key] = was
    feature_target = targets.pop(("feature", feature), None)
    if feature_target is not None:
        await restore_entity(tx, ("feature", feature), feature_target)
    for key, target in targets.items():
        if isinstance(target, GroupFact):
            await restore_override(tx, target.name, feature, target.group)
        else:
            await restore_entity(tx, key, target)


def _concerns(fact: Fact, feature: str) -> bool:
    """Whether `fact` changed the feature itself, its rollout or a group's override of it."""
    match fact:
        case FeatureFact(name=name) | RolloutFact(feature=name):
            return name == feature
        case GroupFact(group=group, removed_overrides=removed):
            return feature in removed or (group is not None and feature in group.overrides)
        case _:
            return False

"""Revert: put back what one change replaced, in one write, previewed first.

A change-log row holds the new state of each entity it changed and (since migration 0015) the
state it replaced. Reverting restores the replaced states, entity by entity, inside one write
transaction (one revision), after checking under the revision lock that no later write changed
any of those entities: a later change is a conflict, named in the refusal, never overwritten.
A rollout comes back by proportion: its remembered buckets (flaggery.engine.restore) make it
get exactly the buckets it had, while the bucket weights are unchanged since.

A preview runs the same write and rolls it back, so what it shows is what the revert does.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy import select

from flaggery.engine.change_words import EntityKey, entity_key, sentences
from flaggery.engine.model import Fact, decode_facts
from flaggery.errors import ChangeNotFound, RevertRefused
from flaggery.store import tables as t
from flaggery.store.conditions import MAX_CONDITION_SPAN
from flaggery.store.database import Database, WriteTransaction
from flaggery.store.entity_restore import restore_entity, rows_after
from flaggery.store.feature_restore import restore_as_of

__all__ = ["RevertAdmin", "RevertPreview"]


class RevertPreview(msgspec.Struct, frozen=True):
    """What reverting `revision` changes: one sentence per entity, before -> after."""

    revision: int
    """The change to revert."""
    sentences: tuple[str, ...]
    """Empty: everything it changed is as it was before it already (nothing to write)."""
    written: int | None = None
    """The revert's own revision (None for a preview, or when nothing had to change)."""


class _Previewed(Exception):
    """Rolls a preview's write back, carrying what it would have written."""

    def __init__(self, facts: list[Fact], before: list[Fact]) -> None:
        super().__init__("preview")
        self.facts, self.before = facts, before


class RevertAdmin:
    _db: Database

    async def preview_revert(self, revision: int) -> RevertPreview:
        """What `revert` would change, in words; nothing is written. Raises as `revert`."""
        try:
            async with self._db.write("revert") as tx:
                await _revert(tx, revision)
                raise _Previewed(tx.facts, tx.before)
        except _Previewed as preview:
            return RevertPreview(revision, tuple(sentences(preview.facts, preview.before)))
        return RevertPreview(revision, ())  # pragma: no cover - the block always raises

    async def revert(self, revision: int) -> RevertPreview:
        """Undo the change made at `revision`: every entity it changed (a feature's default,
        variants, values or kill switch; a rollout; a group's overrides or rule; a subject's
        weight or groups) gets back the state it replaced, in one write with its own revision.
        A reverted rollout gets exactly its old buckets back while the bucket weights are
        unchanged (sticky allocation). Returns what changed and the revert's revision.

        Raises ChangeNotFound (no such revision in the log), RevertRefused (a later change
        touched one of those entities: the message names it; the change was written before
        migration 0015 or was too large to itemize; it created or removed an A/B test, a
        group or a subject; or what it would restore is no longer valid), ValidationError,
        DatabaseUnavailable. Nothing is written when refused.
        """
        async with self._db.write(f"revert {revision}"[:64]) as tx:
            await _revert(tx, revision)
        written = tx.revision if tx.facts else None
        return RevertPreview(revision, tuple(sentences(tx.facts, tx.before)), written)

    async def preview_restore_feature(self, feature_name: str, revision: int) -> RevertPreview:
        """What `restore_feature` would change, in words; nothing is written. Raises as it."""
        try:
            async with self._db.write("restore") as tx:
                await restore_as_of(tx, feature_name, revision)
                raise _Previewed(tx.facts, tx.before)
        except _Previewed as preview:
            return RevertPreview(revision, tuple(sentences(preview.facts, preview.before)))
        return RevertPreview(revision, ())  # pragma: no cover - the block always raises

    async def restore_feature(self, feature_name: str, revision: int) -> RevertPreview:
        """Put the feature back as it was at `revision`, in one write: itself (default,
        variants, values, kill switch), its rollout (exactly its buckets of then, while the
        bucket weights are unchanged) and every group's override of it; later changes to them
        are undone together, A/B tests are left as they are. Returns what changed and the
        write's revision (None: nothing to change).

        Raises ValidationError (a revision after the head), RevertRefused (a change since
        was written before migration 0015; the feature did not exist then or does not now;
        more than 10,000 writes since; what it would restore is no longer valid),
        DatabaseUnavailable. Nothing is written when refused."""
        async with self._db.write(f"restore {feature_name} as of {revision}"[:64]) as tx:
            await restore_as_of(tx, feature_name, revision)
        written = tx.revision if tx.facts else None
        return RevertPreview(revision, tuple(sentences(tx.facts, tx.before)), written)


async def _revert(tx: WriteTransaction, revision: int) -> None:
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 1:
        raise ChangeNotFound(f"There is no change with revision {revision!r:.40}.")
    log = t.change_log.c
    query = select(log.payload, log.before).where(log.revision == revision)
    row = (await tx.conn.execute(query)).one_or_none()
    if row is None:
        raise ChangeNotFound(
            f"There is no change with revision {revision} (never written, or pruned by retention)."
        )
    before = None if row.before is None else decode_facts(row.before)
    targets = _targets(decode_facts(row.payload), before, revision)
    await _refuse_later(tx, revision, set(targets))
    for key, target in targets.items():
        await restore_entity(tx, key, target)


def _targets(
    facts: Sequence[Fact], before: Sequence[Fact] | None, revision: int
) -> dict[EntityKey, Fact]:
    """Entity -> the fact to restore it to, features first (a rollout needs its variant)."""
    order = {"feature": 0, "group": 1, "rollout": 2, "subject": 3}
    for fact in facts:
        key = entity_key(fact)
        if key is None or key[0] not in order:
            raise RevertRefused(
                f"Revision {revision} cannot be reverted: it {_kind_words(fact)}, which a "
                "revert does not undo."
            )
    if before is None:
        raise RevertRefused(
            f"Revision {revision} cannot be reverted: it was written before flaggery recorded "
            "what a change replaced (migration 0015), or it was too large to itemize. Make the "
            "change back by hand."
        )
    earlier = {entity_key(fact): fact for fact in before}
    targets: dict[EntityKey, Fact] = {}
    for fact in facts:
        key = entity_key(fact)
        assert key is not None
        was = earlier.get(key)
        if was is None:
            raise RevertRefused(
                f"Revision {revision} cannot be reverted: it did not record what {key[0]} "
                f"{key[1]} was before it (a bulk write). Make the change back by hand."
            )
        targets[key] = was
    return dict(sorted(targets.items(), key=lambda item: order[item[0][0]]))


def _entity_words(key: EntityKey) -> str:
    kind, name = key
    return f"the rollout of {name}" if kind == "rollout" else f"{kind} {name}"


def _kind_words(fact: Fact) -> str:
    key = entity_key(fact)
    if key is None:
        return "added buckets or changed many things at once"
    if key[0] == "abtest":
        return f"changed A/B test {key[1]} (stop or remove the test on its page instead)"
    return f"changed {key[0]} {key[1]}"


async def _refuse_later(tx: WriteTransaction, revision: int, keys: set[EntityKey]) -> None:
    """RevertRefused if a write after `revision` changed one of `keys`."""
    head = tx.revision - 1
    if head - revision > MAX_CONDITION_SPAN:
        raise RevertRefused(
            f"Revision {revision} is more than {MAX_CONDITION_SPAN} writes old: too far back "
            "to check what changed since. Make the change back by hand."
        )
    later = await rows_after(tx, revision)
    for logged in later:
        for fact in logged.facts:
            key = entity_key(fact)
            if key in keys:
                assert key is not None
                by = f" by {logged.actor}" if logged.actor else ""
                raise RevertRefused(
                    f"Revision {revision} cannot be reverted: revision {logged.revision} "
                    f"({logged.operation}{by}) changed {_entity_words(key)} after it. "
                    f"Revert revision {logged.revision} first, or change it by hand."
                )

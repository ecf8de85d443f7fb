"""The immutable snapshot every resolution reads: built once, evaluated many times.

A snapshot is a `SubjectIndex` (subject id -> slot and weight) over a tuple of resolved views
(slot -> flags). Resolving a subject is an array lookup and a tuple lookup; everything else was
done by `build_snapshot`, `Snapshot.apply` or `Snapshot.at`.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from itertools import chain, compress
from types import MappingProxyType

import msgspec

from flaggery.engine.catch_up import facts_after, subject_updates
from flaggery.engine.config import Config
from flaggery.engine.evaluation import SUBJECT_ATTRIBUTE, Evaluation, Placement, ResolvedView
from flaggery.engine.explanation import Explanation, FeatureExplanation, KeyExplanation
from flaggery.engine.model import Change, Fact, State, Subject, SubjectColumns
from flaggery.engine.reach import FeatureReach, Move, feature_reach, membership_moves, moves
from flaggery.engine.readers import FlagsAnswer, Readers
from flaggery.engine.steps import Steps, finish
from flaggery.engine.subject_index import Columns, Entry, SubjectIndex, slot_column
from flaggery.engine.units import NO_BUCKET, Units, keyed_context
from flaggery.engine.view_usage import ViewUsage
from flaggery.engine.views import (
    ViewKey,
    ViewKeys,
    Views,
    default_variants,
    next_boundary,
    resolve_views,
    resolve_views_in_steps,
)
from flaggery.errors import SubjectNotFound

__all__ = ["Snapshot", "SubjectView", "build_snapshot"]


class SubjectView(msgspec.Struct, frozen=True):
    """One subject as ``GET /subjects/{id}`` shows it."""

    id: int
    weight: int
    bucket: int
    groups: list[str]
    """Group names in join order."""


class Snapshot:
    """Everything needed to resolve any subject's flags at one revision, for one time range.

    Immutable: derive new snapshots with `apply` (changes) and `at` (time). Only
    `build_snapshot` makes one from scratch.
    """

    __slots__ = (
        "_base",
        "_built_at",
        "_config",
        "_defaults",
        "_dense",
        "_etags",
        "_flags",
        "_index",
        "_json",
        "_next_boundary",
        "_on_view",
        "_revision",
        "_units",
        "_usage",
        "_views",
        "evaluate",
        "flags_answer",
        "flags_etag",
        "flags_json",
        "variant",
        "variants",
    )

    _revision: int
    _built_at: datetime
    _next_boundary: datetime | None
    _config: Config
    _index: SubjectIndex
    _views: Views
    _usage: ViewUsage
    _base: int
    _dense: array[int]
    _flags: tuple[Mapping[str, str], ...]
    _json: tuple[bytes, ...]
    _etags: tuple[bytes, ...]
    _defaults: Mapping[str, str]
    _units: Units
    _on_view: Mapping[int, int] | None

    variants: Callable[[int], Mapping[str, str]]
    """``variants(subject_id)``: the subject's feature -> variant map (read-only);
    `SubjectNotFound` if unknown, `ValidationError` if the id is not an int. A function built
    with the snapshot (flaggery.engine.readers), not a method: no attribute lookup per call."""
    variant: Callable[[int, str], str | None]
    """``variant(subject_id, feature)``: the subject's variant of one feature, or None if it
    gets none; `SubjectNotFound`, `ValidationError` as `variants`."""
    flags_json: Callable[[int], bytes]
    """``flags_json(subject_id)``: ``{"flags": {...}}`` for the subject, pre-encoded;
    `SubjectNotFound`, `ValidationError` as `variants`."""
    flags_etag: Callable[[int], bytes]
    """``flags_etag(subject_id)``: the quoted HTTP ETag of `flags_json`, precomputed."""
    flags_answer: Callable[[int], FlagsAnswer]
    """``flags_answer(subject_id)``: (`flags_json`, `flags_etag`, the subject's bucket) in one
    lookup: what the flags route serves and counts; errors as `variants`."""
    evaluate: Callable[..., Evaluation]
    """``evaluate(key, context=None, subject_attribute=SUBJECT_ATTRIBUTE, now=None)``: what a
    request for targeting key `key` gets: the one request-time entry point.

    `key` is any string of 1 to 256 characters without NUL (`InvalidTargetingKey`
    otherwise). Its unit: the registered subject ``context[subject_attribute]`` names (an
    int or canonical decimal text), else the subject whose canonical decimal id `key` is,
    else `key` hashed into a bucket (flaggery.engine.targeting), which gets what a subject
    in that bucket with no group gets. No I/O; a key seen before in this snapshot without
    context costs one dictionary lookup, a new one hashing (a few microseconds).

    Its groups: the rule groups whose rule `context` matches (name order), then the
    unit's explicit groups (join order); later ones' overrides win (docs/targeting.md).
    `now` (aware UTC; the snapshot's `built_at` if None) is ``currentTime`` for rules
    when the context has none. A request without context (None or no attribute) is in
    its explicit groups only: rules cost it nothing, as they cost nothing when the
    snapshot has none.
    """

    def __init__(self) -> None:
        raise TypeError("A Snapshot is made by build_snapshot(state, now), not constructed.")

    @classmethod
    def _assemble(  # noqa: PLR0913 - every part of a Snapshot, put together once
        cls,
        revision: int,
        built_at: datetime,
        config: Config,
        index: SubjectIndex,
        views: Views,
        usage: ViewUsage,
    ) -> Snapshot:
        snapshot = object.__new__(cls)
        index = index.with_room_for(len(views.keys))
        snapshot._usage = usage
        snapshot._revision = revision
        snapshot._built_at = built_at
        snapshot._next_boundary = next_boundary(config.abtests, built_at)
        snapshot._config = config
        snapshot._index = index
        snapshot._views = views
        # The hot path reads these directly rather than through the index and the views.
        snapshot._base = index.base
        snapshot._dense = index.dense_slots
        snapshot._flags = views.flags
        snapshot._json = views.json
        snapshot._etags = views.etags
        snapshot._defaults = default_variants(config)
        snapshot._units = units = Units(config, views, snapshot.view_slot, built_at)
        snapshot._on_view = None
        readers = Readers.build(index, views.flags, views.json, views.etags, views.answers)
        (
            snapshot.variants,
            snapshot.variant,
            snapshot.flags_json,
            snapshot.flags_etag,
            snapshot.flags_answer,
        ) = readers
        snapshot.evaluate = units.key_evaluator(None)
        return snapshot

    def key_evaluator(self, clock: Callable[[], datetime]) -> Callable[..., Evaluation]:
        """`evaluate` with ``clock()`` as ``now`` whenever a request has a context: what an
        `Evaluator` binds as its own ``evaluate``."""
        return self._units.key_evaluator(clock)

    @property
    def revision(self) -> int:
        """The change-log revision this snapshot reflects."""
        return self._revision

    @property
    def built_at(self) -> datetime:
        """The time the views were resolved for."""
        return self._built_at

    @property
    def next_boundary(self) -> datetime | None:
        """When an A/B test next starts or stops being live: call `at` then. None if never."""
        return self._next_boundary

    @property
    def subject_count(self) -> int:
        """The number of subjects."""
        return len(self._index)

    @property
    def view_count(self) -> int:
        """Resolved (bucket, groups) views: the buckets plus, at most about twice over, the
        distinct group combinations subjects have now (never those they had before)."""
        return len(self._views.keys)

    @property
    def live_tests(self) -> tuple[str, ...]:
        """The A/B tests live when the views were resolved: those its answers apply."""
        return self._views.live_tests

    @property
    def config(self) -> Config:
        """Buckets, features, rollouts, A/B tests and groups (read-only)."""
        return self._config

    def view_slot(self, subject_id: int) -> int:
        """The number of the subject's resolved view, shared by every subject in the same
        bucket and groups: a key for caching anything derived from a view. `SubjectNotFound`."""
        offset = subject_id - self._base
        if offset >= 0:
            try:
                slot = self._dense[offset]
            except IndexError:  # beyond the dense window
                pass
            else:
                if slot < len(self._flags):  # a hole's marker is beyond every view
                    return slot
        return self._index.slot(subject_id)

    @property
    def defaults(self) -> Mapping[str, str]:
        """What a subject that is not registered gets: each feature's default variant
        (features without one are absent). Read-only."""
        return self._defaults

    def variants_or_defaults(self, subject_id: int) -> Mapping[str, str]:
        """`variants(subject_id)`, or for a subject that is not registered each feature's
        default variant (features without one are absent), in feature-name order."""
        try:
            return self.variants(subject_id)
        except SubjectNotFound:
            return self._defaults

    def subject(self, subject_id: int) -> SubjectView:
        """The subject's id, weight, bucket and groups; `SubjectNotFound` if unknown."""
        slot, weight = self._index.entry(subject_id)
        key = self._views.keys[slot]
        return SubjectView(id=subject_id, weight=weight, bucket=key.bucket, groups=list(key.groups))

    def explain(self, subject_id: int) -> Explanation:
        """Where each of the subject's variants comes from; `SubjectNotFound` if unknown.

        Re-walks the configuration for the subject's view (O(rollout and test buckets)), so it
        is for debugging and admin tools, not the serving path.
        """
        slot, _ = self._index.entry(subject_id)
        key = self._views.keys[slot]
        return Explanation(
            subject_id=subject_id,
            revision=self._revision,
            bucket=key.bucket,
            groups=list(key.groups),
            features=self._units.explain_view(key),
        )

    def view(self, bucket: int, groups: tuple[str, ...] = ()) -> ResolvedView:
        """What a unit in `bucket` and `groups` (overrides applied in this order) gets: a view
        built with the snapshot, or resolved on first use into a bounded cache.
        `BucketNotFound` for an unknown bucket."""
        return self._units.view(bucket, groups)

    def place(
        self,
        key: str,
        context: Mapping[str, object] | None = None,
        subject_attribute: str = SUBJECT_ATTRIBUTE,
        now: datetime | None = None,
    ) -> Placement:
        """Where `evaluate(key, context, subject_attribute, now)` falls (unit, bucket,
        groups) without resolving its view: for adapters that explain one feature at a time
        (`explain_feature`). Raises what `evaluate` raises."""
        return self._units.place(key, context, subject_attribute, now)

    def explain_view(
        self, bucket: int | None, groups: tuple[str, ...]
    ) -> dict[str, FeatureExplanation]:
        """feature -> why a unit in `bucket` (None: no bucket exists) and `groups` gets its
        variant, in feature-name order. Uses the snapshot's resolver (one pass over the
        configuration per snapshot, on first use; then about as much as resolving the view):
        fit for serving."""
        return self._units.explain_view(_view_key(bucket, groups))

    def explain_feature(
        self, bucket: int | None, groups: tuple[str, ...], feature: str
    ) -> FeatureExplanation | None:
        """``explain_view(bucket, groups).get(feature)`` without explaining the other
        features: what a request for one flag needs (a few dict lookups)."""
        return self._units.explain_feature(_view_key(bucket, groups), feature)

    def explain_key(
        self,
        key: str,
        context: Mapping[str, object] | None = None,
        subject_attribute: str = SUBJECT_ATTRIBUTE,
        now: datetime | None = None,
    ) -> KeyExplanation:
        """Why `evaluate(key, context)` answers as it does: the unit (registered subject, or
        the key's hash and bucket), the groups, the rule groups the context matched with the
        constraint set that matched each, and per feature the step that chose the variant
        (``rule_set`` set on an override from a group the unit is in by its rule). For
        debugging and admin tools, not the serving path."""
        context = keyed_context(key, context)
        evaluation = self._units.evaluate(key, context, subject_attribute, now)
        explicit = self._units.unit(key, context, subject_attribute).view.groups
        by_rule: dict[str, int] = {}
        if context:
            matched = self._config.rules.explain(context, now or self._built_at)
            by_rule = {
                group: position
                for group, position in zip(matched.groups, matched.sets, strict=True)
                if group not in explicit
            }
        hashed = None if evaluation.subject is not None else self._units.hashed_bucket(key)
        view = evaluation.view
        features = self._units.explain_view(_view_key(view.bucket, view.groups))
        for feature, why in features.items():
            if why.source == "override" and why.group in by_rule:
                features[feature] = msgspec.structs.replace(why, rule_set=by_rule[why.group])
        return KeyExplanation(
            key=key,
            subject_id=evaluation.subject,
            hashed=evaluation.hashed,
            key_hash=None if hashed is None else f"{hashed[0]:016x}",
            bucket_count=len(self._config.buckets),
            revision=self._revision,
            bucket=view.bucket,
            groups=list(view.groups),
            features=features,
            rule_groups=by_rule,
        )

    def subject_ids(self) -> Sequence[int]:
        """Every registered subject id, ascending (do not mutate). One C-level pass."""
        ids, _, _ = self._index.columns()
        return ids

    def subjects_on_views(self) -> Mapping[int, int]:
        """view slot -> the number of subjects on it (views nobody is on left out). One
        C-level pass over the subjects the first time (about 5 ms for 100,000), kept after."""
        if self._on_view is None:
            _, slots, _ = self._index.columns()
            self._on_view = MappingProxyType(Counter(slots))
        return self._on_view

    def reach(self, feature: str) -> FeatureReach:
        """Who gets each variant of `feature` now, after precedence: registered subjects and
        hashed keys per (variant, step) (flaggery.engine.reach). O(views) after the first
        call's pass over the subjects."""
        return feature_reach(
            self._config, self._views.keys, self.subjects_on_views(), feature, self._built_at
        )

    def moves(self, facts: Sequence[Fact]) -> list[Move]:
        """Who applying configuration `facts` would move, per feature, from what to what: the
        effect of a change, named before it is made (flaggery.engine.reach)."""
        return moves(
            self._config, self._views.keys, self.subjects_on_views(), facts, self._built_at
        )

    def membership_moves(self, subject_id: int, group: str) -> list[Move]:
        """What subject `subject_id` gets differently once it leaves `group`;
        `SubjectNotFound` if unknown."""
        slot, _ = self._index.entry(subject_id)
        return membership_moves(self._config, self._views.keys[slot], group, self._built_at)

    def apply(self, changes: Sequence[Change], now: datetime) -> Snapshot:
        """The snapshot after `changes`, resolved at `now`.

        Changes at or below `revision` are skipped; the rest must continue it without a gap,
        or `ChangeGap` is raised and the caller should build from a full state. Subject and
        bucket facts only patch the subject index (and resolve the views of new (bucket,
        groups) keys); a configuration fact re-resolves only the features whose resolution
        it changed (`views.changed_features`), in the views those can move.
        """
        return finish(self.apply_in_steps(changes, now))

    def apply_in_steps(self, changes: Sequence[Change], now: datetime) -> Steps[Snapshot]:
        """`apply`, yielding between steps (flaggery.engine.steps): while dropping unused
        views (which renumbers the subject index) and while resolving views. Raises
        what `apply` raises, from the first step."""
        revision, facts = facts_after(self._revision, changes)
        if revision == self._revision:
            return self.at(now)
        config = self._config.with_facts(facts)
        subjects, added = subject_updates(facts)
        new_buckets = config.buckets[len(self._config.buckets) :]
        kept = [subject for subject in subjects.values() if subject is not None]
        keys = self._views.keys.with_keys(chain(map(ViewKey, new_buckets), map(_key_of, kept)))
        entries = {subject_id: _entry_of(subject, keys) for subject_id, subject in subjects.items()}
        moves = {sid: (self._slot_or_none(sid), entry) for sid, entry in entries.items()}
        usage = self._usage.moved(keys, moves)  # bulk-added subjects join no group view
        index = self._index.patched(entries).with_added(*_plain_entries(added, keys))
        previous: Views | None = self._views
        if usage.wants_compaction(keys, len(config.buckets)):
            yield
            compacted = yield from usage.compact_in_steps(keys, index, previous)
            usage, keys, index, previous = compacted
        # Only the features whose resolution the facts (or the time) changed are resolved
        # again, in the views they can move; the others keep their flags, bodies and ETags.
        views = yield from resolve_views_in_steps(config, keys, now, previous, self._config)
        return Snapshot._assemble(revision, now, config, index, views, usage)

    def _slot_or_none(self, subject_id: int) -> int | None:
        try:
            return self._index.slot(subject_id)
        except SubjectNotFound:
            return None

    def to_state(self) -> State:
        """The State this snapshot resolves, as of `revision`: what a saved copy needs.

        Its subject columns may share this snapshot's arrays (do not mutate them). Three
        C-level passes over the subjects: about 1 s for ten million on a busy machine.
        """
        ids, slots, weights = self._index.columns()
        keys = self._views.keys
        bucket_of_slot = [key.bucket for key in keys]
        member_slots = {slot for slot, key in enumerate(keys) if key.groups}
        # map() and compress() run in C: no Python-level loop over ten million subjects.
        members = compress(range(len(slots)), map(member_slots.__contains__, slots))
        memberships = {ids[position]: keys[slots[position]].groups for position in members}
        buckets = array("q", map(bucket_of_slot.__getitem__, slots))
        return State(
            revision=self._revision,
            buckets=self._config.buckets,
            subjects=SubjectColumns(ids, weights, buckets),
            memberships=memberships,
            features=self._config.features,
            rollouts=self._config.rollouts,
            abtests=self._config.abtests,
            groups=self._config.groups,
            key_salt=self._config.key_salt,
            key_splits=self._config.key_splits,
        )

    def at(self, now: datetime) -> Snapshot:
        """This snapshot resolved at `now`; self if that changes nothing."""
        views = resolve_views(self._config, self._views.keys, now, self._views)
        if views is self._views and next_boundary(self._config.abtests, now) == self._next_boundary:
            return self
        return Snapshot._assemble(
            self._revision, now, self._config, self._index, views, self._usage
        )


def build_snapshot(state: State, now: datetime) -> Snapshot:
    """Build the snapshot of `state` resolved at `now` (a timezone-aware UTC datetime).

    Every subject's bucket must be one of ``state.buckets``.
    """
    config = Config.of(state)
    plain_keys = ViewKeys(ViewKey(bucket) for bucket in state.buckets)
    keys, index, usage = _index_subjects(state, plain_keys)
    views = resolve_views(config, keys, now)
    return Snapshot._assemble(state.revision, now, config, index, views, usage)


def _index_subjects(state: State, plain_keys: ViewKeys) -> tuple[ViewKeys, SubjectIndex, ViewUsage]:
    """Give every subject the slot of its view key, numbering the keys of group members."""
    columns = state.subjects
    bucket_slots = {key.bucket: slot for slot, key in enumerate(plain_keys)}
    member_keys = {}
    for subject_id, groups in state.memberships.items():
        position = bisect_left(columns.ids, subject_id)
        if groups and position < len(columns.ids) and columns.ids[position] == subject_id:
            member_keys[position] = ViewKey(columns.buckets[position], groups)
    keys = plain_keys.with_keys(member_keys.values())
    slots = slot_column(len(keys))
    # map() and extend() run in C: no Python-level loop over a million subjects.
    slots.extend(map(bucket_slots.__getitem__, columns.buckets))
    for position, key in member_keys.items():
        slots[position] = keys.slot(key)
    usage = ViewUsage(MappingProxyType(Counter(map(keys.slot, member_keys.values()))))
    return keys, SubjectIndex.build(columns.ids, slots, columns.weights), usage


def _view_key(bucket: int | None, groups: tuple[str, ...]) -> ViewKey:
    """The view key of a unit in `bucket` (NO_BUCKET while there is no bucket) and `groups`."""
    return ViewKey(NO_BUCKET if bucket is None else bucket, groups)


def _plain_entries(added: Columns, keys: ViewKeys) -> Columns:
    """The ids, slots and weights of subjects added in no group: each on its bucket's
    plain view (KeyError for a bucket the snapshot does not have)."""
    ids, weights, buckets = added
    slot_of = {bucket: keys.slot(ViewKey(bucket)) for bucket in set(buckets)}
    slots = slot_column(len(keys))
    slots.extend(map(slot_of.__getitem__, buckets))  # in C: no Python loop per subject
    return ids, slots, weights


def _key_of(subject: Subject) -> ViewKey:
    return ViewKey(subject.bucket, subject.groups)


def _entry_of(subject: Subject | None, keys: ViewKeys) -> Entry | None:
    """A subject's index entry (None for a deleted subject)."""
    return None if subject is None else (keys.slot(_key_of(subject)), subject.weight)

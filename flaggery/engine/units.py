"""Which unit a request is, and the view it gets: the request-time half of a snapshot.

A request is a targeting key and an optional evaluation context. Its *unit* is a registered
subject (the key is the subject's canonical id, or the context names one in its subject
attribute) or else the key itself, hashed into a bucket (flaggery.engine.targeting). The unit
decides the view key (bucket, groups): a subject's bucket and explicit groups; for a hashed key
its bucket and no group. `Units` finds the resolved view of that key: built with the snapshot,
or resolved on first use into a bounded cache. Evaluations of context-free keys are cached too,
so a key seen again costs one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from flaggery.engine.config import Config
from flaggery.engine.evaluation import (
    TARGETING_KEY,
    BoundedCache,
    Evaluation,
    Placement,
    ResolvedView,
)
from flaggery.engine.explanation import FeatureExplanation
from flaggery.engine.readers import key_evaluator
from flaggery.engine.targeting import (
    check_targeting_key,
    key_bucketer,
    subject_id_of,
)
from flaggery.engine.views import ViewKey, ViewResolver, Views
from flaggery.errors import BucketNotFound, SubjectNotFound

__all__ = [
    "EVALUATION_CACHE_SIZE",
    "NO_BUCKET",
    "REQUEST_VIEW_CACHE_SIZE",
    "RULED_VIEW_CACHE_SIZE",
    "Units",
    "keyed_context",
]

EVALUATION_CACHE_SIZE = 32_768
"""Evaluated keys kept per snapshot: at most about 15 MB even with 256-character keys."""

REQUEST_VIEW_CACHE_SIZE = 16_384
"""Views first met at request time kept per snapshot (each about 1 KB for 20 features: at
most about 16 MB). Rule groups multiply the (bucket, groups) pairs requests meet: 100 buckets
and ten rule groups made about 5,000 in bench/ofrep_path_bench.py, which a cache of 4,096,
emptied when full, resolved again and again."""

RULED_VIEW_CACHE_SIZE = 16_384
"""(unit's view, truth) pairs kept per snapshot for requests with a context (each a key of a
few small objects and a reference to a view: about 3 MB at most)."""

NO_BUCKET = -1
"""The bucket of a view for a database with no bucket yet: defaults and overrides only."""


class Units:
    """The request-time lookups of one snapshot (its caches are part of it)."""

    __slots__ = (
        "_bucket_index",
        "_bucket_views",
        "_bucketer",
        "_built_at",
        "_config",
        "_evaluations",
        "_request_views",
        "_resolver",
        "_ruled_views",
        "_rules",
        "_slot_of",
        "_slot_views",
        "_views",
    )

    def __init__(
        self, config: Config, views: Views, slot_of: Callable[[int], int], built_at: datetime
    ) -> None:
        self._config = config
        self._views = views
        self._slot_of = slot_of
        self._built_at = built_at
        self._slot_views: list[ResolvedView | None] = [None] * len(views.keys)
        self._bucket_views: dict[int, ResolvedView] = {}
        """bucket -> the view of a unit in it with no group: what every hashed key gets."""
        self._evaluations: BoundedCache[str, Evaluation] = BoundedCache(EVALUATION_CACHE_SIZE)
        self._request_views: BoundedCache[ViewKey, ResolvedView] = BoundedCache(
            REQUEST_VIEW_CACHE_SIZE
        )
        self._ruled_views: BoundedCache[tuple[int | None, tuple[str, ...], int], ResolvedView] = (
            BoundedCache(RULED_VIEW_CACHE_SIZE)
        )
        """(bucket, explicit groups, truth of a context) -> the view (`evaluate`)."""
        self._resolver: ViewResolver | None = None
        self._rules = config.rules if config.rules else None
        """The compiled rules; None when there are none."""
        buckets = config.buckets
        self._bucketer = (
            key_bucketer(config.key_salt, len(buckets), config.key_splits) if buckets else None
        )
        self._bucket_index = None if self._bucketer is None else self._bucketer.index

    def evaluate(
        self,
        key: str,
        context: Mapping[str, object] | None,
        subject_attribute: str,
        now: datetime | None = None,
    ) -> Evaluation:
        """See `Snapshot.evaluate`."""
        context = keyed_context(key, context)
        evaluation = self.unit(key, context, subject_attribute)
        rules = self._rules
        if rules is None or not context:
            return evaluation  # what it cost before rules
        view = evaluation.view
        # The view depends on the unit's own view and the context's truth (which predicates
        # hold) only: requests sharing both share one lookup, whatever their attributes.
        ruled_key = (view.bucket, view.groups, rules.truth(context, now or self._built_at))
        ruled = self._ruled_views.get(ruled_key)
        if ruled is None:
            groups = rules.view_groups_of(view.groups, ruled_key[2])
            ruled = view if groups == view.groups else self._grouped(view.bucket, groups)
            self._ruled_views.put(ruled_key, ruled)
        if ruled is view:
            return evaluation  # no rule group matched: the unit's view as it is
        return Evaluation(evaluation.key, evaluation.subject, ruled)

    def place(
        self,
        key: str,
        context: Mapping[str, object] | None,
        subject_attribute: str,
        now: datetime | None = None,
    ) -> Placement:
        """See `Snapshot.place`."""
        context = keyed_context(key, context)
        evaluation = self.unit(key, context, subject_attribute)
        view = evaluation.view
        groups = self._matched_groups(view.groups, context, now)
        return Placement(evaluation.key, evaluation.subject, view.bucket, groups)

    def _matched_groups(
        self, groups: tuple[str, ...], context: Mapping[str, object] | None, now: datetime | None
    ) -> tuple[str, ...]:
        """A unit's explicit `groups` with the rule groups `context` matches; `groups` itself
        (the same object) when there are no rules, no context or no match."""
        rules = self._rules
        if rules is None or not context:
            return groups  # what it cost before rules
        matched = rules.view_groups(groups, context, now or self._built_at)
        return groups if matched == groups else matched

    def key_evaluator(self, clock: Callable[[], datetime] | None) -> Callable[..., Evaluation]:
        """`evaluate` as a function with this snapshot's cache of context-free keys read
        directly (flaggery.engine.readers.key_evaluator); ``clock()`` is ``now`` for requests
        with a context when the caller gives none (None: the snapshot's build time)."""
        return key_evaluator(self._evaluations.young, self.evaluate, self.evaluate_new, clock)

    def evaluate_new(self, key: str) -> Evaluation:
        """A context-free key not in the cache of evaluated keys: checked, evaluated and kept
        (`InvalidTargetingKey` if it is not a key). `key_evaluator`'s path for a key it has not
        seen, without `evaluate`'s and `unit`'s steps for contexts and the second lookup. A key
        of the cache's old generation is kept again, not evaluated (`BoundedCache`)."""
        evaluations = self._evaluations
        try:
            evaluation = evaluations.old.get(key)
        except TypeError:  # unhashable (a JSON list), so not a key: check_targeting_key says why
            evaluation = None
        if evaluation is None:
            evaluation = self._evaluate_key(check_targeting_key(key))
        evaluations.put(key, evaluation)
        return evaluation

    def unit(
        self, key: str, context: Mapping[str, object] | None, subject_attribute: str
    ) -> Evaluation:
        """The request's unit and its own view (explicit groups only, no rule group)."""
        if context:
            value = context.get(subject_attribute)
            named = None if value is None else self.registered_subject(value)
            if named is not None:
                return Evaluation(check_targeting_key(key), named, self._subject_view(named))
        try:
            evaluation = self._evaluations.get(key)
        except TypeError:  # unhashable, so not a key: `evaluate_new` says why
            evaluation = None
        return evaluation or self.evaluate_new(key)

    def registered_subject(self, value: object) -> int | None:
        """The id of the registered subject `value` names (an int, or its canonical decimal
        text), or None."""
        if isinstance(value, str):
            subject_id = subject_id_of(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            subject_id = value
        else:
            return None
        if subject_id is None:
            return None
        try:
            self._slot_of(subject_id)
        except SubjectNotFound:
            return None
        return subject_id

    def hashed_bucket(self, key: str) -> tuple[int, int] | None:
        """(64-bit hash, bucket) of a key hashed into the current buckets; None if there is
        no bucket yet."""
        bucketer = self._bucketer
        if bucketer is None:
            return None
        return bucketer.hash(key), self._config.buckets[bucketer.index(key)]

    def view(self, bucket: int, groups: tuple[str, ...] = ()) -> ResolvedView:
        """The resolved view of (bucket, groups); `BucketNotFound` for an unknown bucket."""
        try:
            return self._slot_view(self._views.keys.slot(ViewKey(bucket, groups)))
        except KeyError:
            pass
        view = self._request_views.get(ViewKey(bucket, groups))
        if view is None:
            if bucket not in self._config.buckets:
                raise BucketNotFound(f"Bucket {bucket} does not exist.")
            view = self._resolved(ViewKey(bucket, groups))
            self._request_views.put(ViewKey(bucket, groups), view)
        return view

    def _evaluate_key(self, key: str) -> Evaluation:
        subject_id = subject_id_of(key)
        if subject_id is not None:
            try:
                slot = self._slot_of(subject_id)
            except SubjectNotFound:
                pass  # an unregistered id is a key like any other
            else:
                return Evaluation(key, subject_id, self._slot_view(slot))
        if self._bucket_index is None:
            return Evaluation(key, None, self._no_bucket_view())
        bucket = self._config.buckets[self._bucket_index(key)]
        view = self._bucket_views.get(bucket)
        if view is None:
            view = self._bucket_views[bucket] = self.view(bucket)
        return Evaluation(key, None, view)

    def _subject_view(self, subject_id: int) -> ResolvedView:
        return self._slot_view(self._slot_of(subject_id))

    def _slot_view(self, slot: int) -> ResolvedView:
        view = self._slot_views[slot]
        if view is None:
            views = self._views
            key = views.keys[slot]
            view = ResolvedView(
                key.bucket, key.groups, views.flags[slot], views.json[slot], views.etags[slot]
            )
            self._slot_views[slot] = view
        return view

    def _grouped(self, bucket: int | None, groups: tuple[str, ...]) -> ResolvedView:
        """The view of a unit in rule groups: a combination first met at request time, so the
        bounded cache is asked first (a view built with the snapshot is found after)."""
        key = ViewKey(NO_BUCKET if bucket is None else bucket, groups)
        view = self._request_views.get(key)
        if view is not None:
            return view
        if bucket is not None:
            return self.view(bucket, groups)
        resolved = self._resolved(key)
        view = ResolvedView(None, groups, resolved.flags, resolved.json, resolved.etag)
        self._request_views.put(key, view)
        return view

    def _no_bucket_view(self) -> ResolvedView:
        view = self._request_views.get(ViewKey(NO_BUCKET))
        if view is None:
            view = self._resolved(ViewKey(NO_BUCKET))
            view = ResolvedView(None, (), view.flags, view.json, view.etag)
            self._request_views.put(ViewKey(NO_BUCKET), view)
        return view

    def explain_view(self, key: ViewKey) -> dict[str, FeatureExplanation]:
        """Why a unit of `key` gets each variant (`ViewResolver.explain`), with no pass over
        the configuration: the snapshot's resolver is built once, on first use."""
        return self.resolver().explain(key)

    def explain_feature(self, key: ViewKey, feature: str) -> FeatureExplanation | None:
        """`explain_view` of one feature (`ViewResolver.explain_feature`)."""
        return self.resolver().explain_feature(key, feature)

    def resolver(self) -> ViewResolver:
        """The snapshot's resolver at its build time, for views met after the build."""
        resolver = self._resolver
        if resolver is None:
            resolver = self._resolver = ViewResolver(self._config, self._built_at)
        return resolver

    def _resolved(self, key: ViewKey) -> ResolvedView:
        flags, body, etag = self.resolver().resolve(key)
        return ResolvedView(key.bucket, key.groups, flags, body, etag)


def keyed_context(key: str, context: Mapping[str, object] | None) -> Mapping[str, object] | None:
    """The context rules read for a request for `key`: `context` with `key` as its
    ``targetingKey`` (so rules on ``targetingKey``, and on ``userId`` through its fallback,
    see the key whichever entry point the request came by: OFREP's context carries it, the
    Python API, the OpenFeature provider and the dashboard pass it apart). The key wins over
    a different ``targetingKey`` in `context`, as on the REST routes. No context stays none:
    a request without attributes is in its explicit groups only. Costs one lookup when the
    context already names the key (OFREP)."""
    if not context:
        return context
    named = context.get(TARGETING_KEY)
    if named is key or named == key:
        return context
    return {**context, TARGETING_KEY: key}

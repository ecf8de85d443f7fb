"""Per-bucket resolution: the resolved flags of every (bucket, groups) combination.

A subject's flags depend only on its bucket and its groups (given configuration and time), so
they are resolved once per distinct `ViewKey` when a snapshot is built, never per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from hashlib import blake2b
from types import MappingProxyType
from typing import NamedTuple

import msgspec

from flaggery.engine.config import Config
from flaggery.engine.explanation import FeatureExplanation
from flaggery.engine.kill import kill_layer
from flaggery.engine.model import AbTest, Group, Rollout, TestGroup
from flaggery.engine.readers import FlagsAnswer
from flaggery.engine.steps import STEP_KEYS, STEP_PATCHES, Steps, finish

__all__ = [
    "ResolutionChange",
    "ViewKey",
    "ViewKeys",
    "ViewResolver",
    "Views",
    "changed_features",
    "default_layer",
    "default_variants",
    "entity_tag",
    "explain_key",
    "live_tests",
    "next_boundary",
    "resolve_views",
    "resolve_views_in_steps",
    "view_explainer",
]

# Liveness is inclusive (start <= now <= end): a test is still live at `end` and stops being
# live at the next representable instant.
_AFTER_END = timedelta(microseconds=1)

_encoder = msgspec.json.Encoder()


class ViewKey(NamedTuple):
    """What a subject's flags depend on besides configuration and time."""

    bucket: int
    groups: tuple[str, ...] = ()
    """Group names in join order; () for a subject in no group."""


class ViewKeys:
    """An append-only numbering of view keys: once assigned, a key keeps its slot."""

    __slots__ = ("_keys", "_slots")

    def __init__(self, keys: Iterable[ViewKey] = ()) -> None:
        self._keys: tuple[ViewKey, ...] = tuple(dict.fromkeys(keys))
        self._slots = {key: slot for slot, key in enumerate(self._keys)}

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, slot: int) -> ViewKey:
        return self._keys[slot]

    def __iter__(self) -> Iterator[ViewKey]:
        return iter(self._keys)

    def slot(self, key: ViewKey) -> int:
        """The slot of a numbered key (KeyError if it has none)."""
        return self._slots[key]

    def with_keys(self, wanted: Iterable[ViewKey]) -> ViewKeys:
        """These keys plus any missing wanted ones, appended in order; self if none is new."""
        new = [key for key in dict.fromkeys(wanted) if key not in self._slots]
        return ViewKeys(self._keys + tuple(new)) if new else self

    def since(self, slot: int) -> tuple[ViewKey, ...]:
        """The keys numbered `slot` and later."""
        return self._keys[slot:]


class Views(msgspec.Struct, frozen=True):
    """The resolved flags of each numbered key, indexed by slot."""

    keys: ViewKeys
    flags: tuple[Mapping[str, str], ...]
    """Read-only feature -> variant maps, keys sorted by feature name."""
    json: tuple[bytes, ...]
    """``{"flags": {...}}`` encoded: byte for byte what the REST API sends."""
    etags: tuple[bytes, ...]
    """The HTTP entity tag of each ``json`` body (see `entity_tag`)."""
    live_tests: tuple[str, ...]
    """Names of the A/B tests that were live when these views were resolved."""
    answers: tuple[FlagsAnswer, ...]
    """(``json``, ``etags``, the key's bucket) of each view: what the flags route serves,
    kept with the views so a change allocates new ones only for the views it moved."""


def resolve_views(
    config: Config,
    keys: ViewKeys,
    now: datetime,
    previous: Views | None = None,
    previous_config: Config | None = None,
) -> Views:
    """Resolve every key at `now`.

    `previous` views (resolved from `previous_config`, or from `config` itself when that is
    None) are kept where they still hold: only the features whose resolution differs between
    the two configurations and instants (`changed_features`) are resolved again, in the views
    they can change.
    """
    return finish(resolve_views_in_steps(config, keys, now, previous, previous_config))


def resolve_views_in_steps(
    config: Config,
    keys: ViewKeys,
    now: datetime,
    previous: Views | None = None,
    previous_config: Config | None = None,
) -> Steps[Views]:
    """`resolve_views`, yielding after every `STEP_KEYS` keys it resolves whole and every
    `STEP_PATCHES` previous views it re-resolves features of (flaggery.engine.steps).

    A key `previous` covers keeps its flags, body and ETag (the same objects) unless one of
    the changed features resolves differently for it; then only that view's changed features
    are resolved again (`ViewResolver` restricted to them) and its body re-encoded. Keys
    `previous` does not cover are resolved whole.
    """
    live = live_tests(config.abtests, now)
    live_names = tuple(test.name for test in live)
    if previous is None:
        previous = Views(ViewKeys(), flags=(), json=(), etags=(), live_tests=(), answers=())
        change = ResolutionChange(frozenset(), frozenset(), frozenset())
    else:
        before = config if previous_config is None else previous_config
        change = changed_features(before, previous.live_tests, config, live)
    kept = len(previous.flags)
    patched = previous.flags, previous.json, previous.etags, previous.answers
    if change.features and kept:
        restricted = ViewResolver(config, now, live, change.features)
        patched = yield from _patch_features(previous, keys, restricted, change)
    flags, json, etags, answers = patched
    if kept == len(keys):
        if flags is previous.flags and previous.keys is keys and previous.live_tests == live_names:
            return previous
        return Views(keys, flags, json, etags, live_names, answers)
    resolver = ViewResolver(config, now, live)
    pending = keys.since(kept)
    resolved: list[tuple[Mapping[str, str], bytes, bytes]] = []
    for first in range(0, len(pending), STEP_KEYS):
        if first:
            yield
        resolved.extend(map(resolver.resolve, pending[first : first + STEP_KEYS]))
    return Views(
        keys=keys,
        flags=(*flags, *(view_flags for view_flags, _, _ in resolved)),
        json=(*json, *(body for _, body, _ in resolved)),
        etags=(*etags, *(etag for _, _, etag in resolved)),
        live_tests=live_names,
        answers=(
            *answers,
            *(
                FlagsAnswer(body, etag, key.bucket)
                for (_, body, etag), key in zip(resolved, pending, strict=True)
            ),
        ),
    )


_Resolved = tuple[Mapping[str, str], bytes, bytes]
"""(flags, ``{"flags": ...}`` bytes, ETag) of one view."""

_ViewColumns = tuple[
    tuple[Mapping[str, str], ...], tuple[bytes, ...], tuple[bytes, ...], tuple[FlagsAnswer, ...]
]
"""The flags, bodies, ETags and answers of views, by slot."""


def _patch_features(
    previous: Views, keys: ViewKeys, restricted: ViewResolver, change: ResolutionChange
) -> Steps[_ViewColumns]:
    """The flags, bodies, ETags and answers of `previous`'s views with the features `restricted`
    resolves (and only those) resolved again in the views `change` reaches; a view none of
    whose features moved is kept as it is (the same objects).

    A restricted feature's variant depends only on the view's bucket and on which of the
    groups that can change it (`ViewResolver.groups_in_play`) it holds, in order: each such
    place is resolved once, and views that shared their flags and now move alike share the
    new ones.
    """
    features = restricted.features
    in_play = restricted.groups_in_play
    explain_feature = restricted.explain_feature
    by_place: dict[ViewKey, tuple[str | None, ...]] = {}
    moved: dict[tuple[int, tuple[str | None, ...]], _Resolved] = {}
    interned: dict[bytes, _Resolved] = {}
    flags, json, etags = list(previous.flags), list(previous.json), list(previous.etags)
    answers = list(previous.answers)
    reaches = change.reaches
    for slot, key in enumerate(keys.since(0)[: len(flags)]):
        if slot and not slot % STEP_PATCHES:
            yield
        if not reaches(key):
            continue
        bucket, groups = key
        # Groups out of play change none of these features: the view resolves as its bucket
        # and the groups in play (in join order) do.
        place = (
            ViewKey(bucket, tuple(name for name in groups if name in in_play))
            if groups and not in_play.isdisjoint(groups)
            else ViewKey(bucket)
        )
        variants = by_place.get(place)
        if variants is None:
            variants = by_place[place] = tuple(
                None if (why := explain_feature(place, feature)) is None else why.variant
                for feature in features
            )
        old = flags[slot]
        if tuple(map(old.get, features)) == variants:
            continue
        done = moved.get((id(old), variants))
        if done is None:
            done = moved[id(old), variants] = _with_variants(old, features, variants, interned)
        flags[slot], json[slot], etags[slot] = done
        answers[slot] = FlagsAnswer(done[1], done[2], bucket)
    return tuple(flags), tuple(json), tuple(etags), tuple(answers)


def _with_variants(
    flags: Mapping[str, str],
    features: tuple[str, ...],
    variants: tuple[str | None, ...],
    interned: dict[bytes, _Resolved],
) -> _Resolved:
    """`flags` with each of `features` set to its variant (None: removed), feature-name order
    kept, encoded; equal bodies share one (flags, body, ETag)."""
    updated = dict(flags)
    added = False
    for feature, variant in zip(features, variants, strict=True):
        if variant is None:
            updated.pop(feature, None)
        else:
            added |= feature not in updated
            updated[feature] = variant
    if added:
        updated = dict(sorted(updated.items()))
    body = _encoder.encode({"flags": updated})
    done = interned.get(body)
    if done is None:
        done = interned[body] = (MappingProxyType(updated), body, entity_tag(body))
    return done


class ResolutionChange(NamedTuple):
    """What resolves differently between two configurations (and instants): the features
    whose variant may differ, and the views that may see it."""

    features: frozenset[str]
    buckets: frozenset[int] | None
    """A view may move if its bucket is one of these (None: whatever its bucket) ..."""
    groups: frozenset[str]
    """... or if it holds one of these groups (whose overrides changed)."""

    def reaches(self, key: ViewKey) -> bool:
        """Whether the view of `key` may resolve differently."""
        buckets = self.buckets
        return (
            buckets is None
            or key.bucket in buckets
            or bool(key.groups and not self.groups.isdisjoint(key.groups))
        )


def changed_features(
    before: Config, live_before: Sequence[str], after: Config, live_after: Sequence[AbTest]
) -> ResolutionChange:
    """What may resolve differently in some view between `before` (with the tests named
    `live_before` live) and `after` (with `live_after` live): the features whose default or
    kill switch (any view), rollout (the buckets it entered or left, or all of its buckets
    when its variant or audience changed), live test groups (their buckets) or group
    overrides (the views holding the group) differ. Every other feature, and every view
    out of reach, resolves alike. O(features + rollouts + tests + groups), by identity first:
    unchanged entries are the same objects after `Config.with_facts`."""
    changed: set[str] = set()
    buckets: set[int] | None = set()
    groups: set[str] = set()
    for name in _differing(before.features, after.features):
        changed.add(name)
        buckets = None  # a default or a kill switch: every view
    for name in _differing(before.rollouts, after.rollouts):
        old, new = before.rollouts.get(name), after.rollouts.get(name)
        changed.update(rollout.feature for rollout in (old, new) if rollout is not None)
        if buckets is not None:
            buckets.update(_rollout_reach(old, new))
    for test in _moved_tests(before, live_before, live_after):
        for group in test.groups:
            changed.update(group.variants)
            if buckets is not None:
                buckets.update(group.buckets)
    for name in _differing(before.groups, after.groups):
        old_overrides = _overrides_of(before.groups.get(name))
        new_overrides = _overrides_of(after.groups.get(name))
        overridden = {
            feature
            for feature in old_overrides.keys() | new_overrides.keys()
            if old_overrides.get(feature) != new_overrides.get(feature)
        }
        if overridden:
            changed.update(overridden)
            groups.add(name)
    return ResolutionChange(
        frozenset(changed), None if buckets is None else frozenset(buckets), frozenset(groups)
    )


def _rollout_reach(old: Rollout | None, new: Rollout | None) -> frozenset[int]:
    """The buckets where a rollout's change may change a variant: those it entered or left,
    or all it held before and after when its variant or audience changed (or it came or
    went)."""
    if old is None or new is None:
        return (old or new or _NO_ROLLOUT).buckets
    if (old.variant, old.audience) != (new.variant, new.audience):
        return old.buckets | new.buckets
    return old.buckets ^ new.buckets


_NO_ROLLOUT = Rollout(feature="", variant="", proportion=0.0, buckets=frozenset())


def _moved_tests(
    before: Config, live_before: Sequence[str], live_after: Sequence[AbTest]
) -> list[AbTest]:
    """The live tests, before or after, whose part in resolution may differ: those that
    started or stopped being live or changed while live (both versions); every live test, if
    the order of the ones live throughout changed (of two tests setting one feature in one
    bucket, the later wins)."""
    was_live = {name: before.abtests[name] for name in live_before if name in before.abtests}
    now_live = {test.name: test for test in live_after}
    names = list(_differing(was_live, now_live))
    if [name for name in was_live if name in now_live] != [
        name for name in now_live if name in was_live
    ]:
        names = [*was_live, *now_live]
    return [test for name in names for test in (was_live.get(name), now_live.get(name)) if test]


def _differing(before: Mapping[str, object], after: Mapping[str, object]) -> Iterator[str]:
    """The names whose entries differ (one side missing included)."""
    for name, entry in before.items():
        other = after.get(name)
        if other is not entry and other != entry:
            yield name
    for name in after.keys() - before.keys():
        yield name


def _overrides_of(group: Group | None) -> Mapping[str, str]:
    return {} if group is None else group.overrides


def entity_tag(body: bytes) -> bytes:
    """A strong HTTP ETag for `body`: 64 bits of BLAKE2b in quotes, the same in every process
    (so replicas behind one load balancer agree). About 1 us per body, paid at build time."""
    return b'"%s"' % blake2b(body, digest_size=8).hexdigest().encode()


def default_layer(config: Config) -> dict[str, FeatureExplanation]:
    """Resolution step 1 with the kill switches (step 5) over it: feature -> its default
    variant, or ``__DISABLE__`` if killed, in feature-name order. Alone, it is what a subject
    that is not registered gets."""
    features = sorted(config.features.values(), key=lambda feature: feature.name)
    layer = {
        feature.name: FeatureExplanation(feature.default, "default")
        for feature in features
        if feature.default is not None
    }
    layer.update(kill_layer(features))
    return dict(sorted(layer.items()))


def default_variants(config: Config) -> Mapping[str, str]:
    """The variants of `default_layer`, read-only."""
    return MappingProxyType({name: why.variant for name, why in default_layer(config).items()})


def explain_key(config: Config, key: ViewKey, now: datetime) -> dict[str, FeatureExplanation]:
    """Why `key` resolves as it does at `now`. Costs one pass over the configuration (rollout
    and test buckets), not over subjects: meant for explaining one subject, not for serving."""
    return ViewResolver(config, now).explain(key)


def view_explainer(
    config: Config, now: datetime
) -> Callable[[ViewKey], dict[str, FeatureExplanation]]:
    """`explain_key` for many keys: the configuration pass is paid once, when it is built."""
    return ViewResolver(config, now).explain


def live_tests(abtests: Mapping[str, AbTest], now: datetime) -> list[AbTest]:
    """The tests live at `now`, in mapping order."""
    return [test for test in abtests.values() if test.is_live(now)]


def next_boundary(abtests: Mapping[str, AbTest], now: datetime) -> datetime | None:
    """The first instant after `now` at which some test starts or stops being live."""
    instants = (
        instant
        for test in abtests.values()
        for instant in (test.start, _after(test.end))
        if instant is not None and instant > now
    )
    return min(instants, default=None)


def _after(end: datetime) -> datetime | None:
    """The first instant a test ending at `end` is no longer live; None if there is none.

    A test may end at the last representable instant (9999-12-31T23:59:59.999999Z): it then
    never stops being live, and there is no later instant to wake up at.
    """
    try:
        return end + _AFTER_END
    except OverflowError:
        return None


class ViewResolver:
    """Resolution steps 1-5 of docs/semantics.md at one instant: any view key resolves or
    explains from what it was built with. Building one is a pass over the features, groups
    and tests; a bucket's rollouts and test groups (steps 2 and 3) are gathered on first use
    (a pass over the rollouts and live test groups) and kept. A snapshot keeps one for the
    views requests meet (flaggery.engine.units).

    Restricted to `features`, it resolves and explains those features only, exactly as the
    unrestricted resolver does (each step sets features independently): what re-resolving
    a change's features in views resolved before costs.

    Each step is a feature -> `FeatureExplanation` layer; later layers overwrite earlier ones.
    The flags are the variants of the merged layers, so flags and explanations cannot differ.
    """

    def __init__(
        self,
        config: Config,
        now: datetime,
        live: Iterable[AbTest] | None = None,
        features: Iterable[str] | None = None,
    ) -> None:
        """`live`: the tests live at `now` (`live_tests`), when the caller has them;
        `features`: the features to resolve (None: all)."""
        if live is None:
            live = live_tests(config.abtests, now)
        wanted = None if features is None else frozenset(features)
        self.features: tuple[str, ...] = () if wanted is None else tuple(sorted(wanted))
        """The features it is restricted to, in name order; () if it resolves all."""
        self._defaults = _only(default_layer(config), wanted)
        bucket_count = len(config.buckets)
        rollouts = config.rollouts.values()
        self._steps: list[tuple[frozenset[int], str | None, dict[str, FeatureExplanation]]] = [
            (
                rollout.buckets,
                rollout.audience,
                {rollout.feature: _rollout_why(rollout, bucket_count)},
            )
            for rollout in rollouts
            if wanted is None or rollout.feature in wanted
        ]
        """(buckets, audience, layer) of each rollout (step 2), then of each live test group
        (step 3), in step order."""
        for test in live:
            for group in test.groups:
                layer = _only(_test_layer(test, group, bucket_count), wanted)
                if layer:
                    self._steps.append((group.buckets, test.audience, layer))
        self._by_bucket: dict[int, _Layers] = {}
        self._overrides = {
            group.name: layer
            for group in config.groups.values()
            if (layer := _only(_override_layer(group), wanted))
        }
        self._kills = _only(kill_layer(config.features.values()), wanted)
        self.groups_in_play: frozenset[str] = frozenset(
            {audience for _, audience, _ in self._steps if audience is not None}
            | self._overrides.keys()
        )
        """The groups a view's resolution depends on: audiences and groups with overrides.
        Two views of one bucket whose groups hold the same of these, in the same order,
        resolve alike."""
        # Many keys resolve alike (most buckets of a rollout, say): share one map and one body.
        self._interned: dict[bytes, tuple[Mapping[str, str], bytes, bytes]] = {}

    def _layers(self, bucket: int) -> _Layers:
        """What rollouts then live test groups assign to `bucket`, as (audience, layer) pairs
        in step order (`_add_layer` merges consecutive ones of one audience)."""
        layers = self._by_bucket.get(bucket)
        if layers is None:
            layers = []
            for buckets, audience, layer in self._steps:
                if bucket in buckets:
                    _add_layer(layers, audience, layer)
            if layers:  # kept only for buckets some step holds: any bucket may be asked
                self._by_bucket[bucket] = layers
        return layers

    def explain(self, key: ViewKey) -> dict[str, FeatureExplanation]:
        """feature -> why it has its variant, in feature-name order."""
        explained = dict(self._defaults)
        for audience, layer in self._layers(key.bucket):
            # A rollout or test with an audience serves only the audience group's members.
            if audience is None or audience in key.groups:
                explained.update(layer)
        for name in key.groups:
            # A deleted group no longer overrides anything; of several groups, the last joined
            # wins because its layer is applied last.
            explained.update(self._overrides.get(name, {}))
        explained.update(self._kills)  # last: a killed feature is off whatever else applies
        return dict(sorted(explained.items()))

    def explain_feature(self, key: ViewKey, feature: str) -> FeatureExplanation | None:
        """`explain` of one feature (None: the view has no variant of it), without merging
        every feature's layers: what a request asking for one flag needs."""
        if feature in self._kills:
            return self._kills[feature]
        why = self._defaults.get(feature)
        for audience, layer in self._layers(key.bucket):
            if feature in layer and (audience is None or audience in key.groups):
                why = layer[feature]
        for name in key.groups:
            why = self._overrides.get(name, {}).get(feature, why)
        return why

    def resolve(self, key: ViewKey) -> tuple[Mapping[str, str], bytes, bytes]:
        """(flags, ``{"flags": ...}`` bytes, ETag) of `key`; views that resolve alike share
        them."""
        flags = {feature: why.variant for feature, why in self.explain(key).items()}
        body = _encoder.encode({"flags": flags})
        interned = self._interned.get(body)
        if interned is None:
            interned = (MappingProxyType(flags), body, entity_tag(body))
            self._interned[body] = interned
        return interned


_Layers = list[tuple[str | None, dict[str, FeatureExplanation]]]


_Layer = dict[str, FeatureExplanation]


def _only(layer: _Layer, features: frozenset[str] | None) -> _Layer:
    """`layer` restricted to `features` (None: all of it, the same dict)."""
    if features is None:
        return layer
    return {feature: why for feature, why in layer.items() if feature in features}


def _rollout_why(rollout: Rollout, bucket_count: int) -> FeatureExplanation:
    """Step 2: what a rollout gives the units in its buckets (and audience)."""
    return FeatureExplanation(
        rollout.variant,
        "rollout",
        proportion=rollout.proportion,
        audience=rollout.audience,
        key_share=_share(rollout.buckets, bucket_count),
    )


def _test_layer(test: AbTest, group: TestGroup, bucket_count: int) -> _Layer:
    """Step 3: what a live test's group gives the units in its buckets (and audience)."""
    return {
        feature: FeatureExplanation(
            variant,
            "abtest",
            test=test.name,
            test_group=group.name,
            audience=test.audience,
            key_share=_share(group.buckets, bucket_count),
        )
        for feature, variant in group.variants.items()
    }


def _override_layer(group: Group) -> _Layer:
    """Step 4: a group's overrides, for the views holding it."""
    return {
        feature: FeatureExplanation(variant, "override", group=group.name)
        for feature, variant in group.overrides.items()
    }


def _share(buckets: frozenset[int], bucket_count: int) -> float:
    """The share of hashed keys `buckets` serve: their count out of all buckets."""
    return len(buckets) / bucket_count if bucket_count else 0.0


def _add_layer(
    layers: _Layers, audience: str | None, layer: Mapping[str, FeatureExplanation]
) -> None:
    if layers and layers[-1][0] == audience:
        layers[-1][1].update(layer)
    else:
        layers.append((audience, dict(layer)))

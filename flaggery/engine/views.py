"""Per-bucket resolution: the resolved flags of every (bucket, groups) combination.

A subject's flags depend only on its bucket and its groups (given configuration and time), so
they are resolved once per distinct `ViewKey` when a snapshot is built, never per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from hashlib import blake2b
from types import MappingProxyType
from typing import NamedTuple

import msgspec

from flaggery.engine.config import Config
from flaggery.engine.explanation import FeatureExplanation
from flaggery.engine.kill import kill_layer
from flaggery.engine.model import AbTest, Rollout
from flaggery.engine.steps import STEP_KEYS, Steps, finish

__all__ = [
    "ViewKey",
    "ViewKeys",
    "ViewResolver",
    "Views",
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


def resolve_views(
    config: Config, keys: ViewKeys, now: datetime, previous: Views | None = None
) -> Views:
    """Resolve every key at `now`.

    `previous` views are kept for the keys they cover when the same tests are live; pass them
    only if they were resolved from a configuration that resolves alike (one that differs at
    most in its bucket list).
    """
    return finish(resolve_views_in_steps(config, keys, now, previous))


def resolve_views_in_steps(
    config: Config,
    keys: ViewKeys,
    now: datetime,
    previous: Views | None = None,
    stale_groups: frozenset[str] = frozenset(),
) -> Steps[Views]:
    """`resolve_views`, yielding after every `STEP_KEYS` keys it resolves. The keys of
    `previous` that hold one of `stale_groups` are resolved again (their groups' definitions
    changed); the others are kept."""
    live = live_tests(config.abtests, now)
    live_names = tuple(test.name for test in live)
    if previous is None or previous.live_tests != live_names:
        previous = Views(keys=ViewKeys(), flags=(), json=(), etags=(), live_tests=live_names)
    kept = len(previous.flags)
    stale = [slot for slot in range(kept) if not stale_groups.isdisjoint(keys[slot].groups)]
    if kept == len(keys) and not stale:
        return previous if previous.keys is keys else msgspec.structs.replace(previous, keys=keys)
    resolver = ViewResolver(config, now, live)
    pending = [*(keys[slot] for slot in stale), *keys.since(kept)]
    resolved: list[tuple[Mapping[str, str], bytes, bytes]] = []
    for first in range(0, len(pending), STEP_KEYS):
        if first:
            yield
        resolved.extend(map(resolver.resolve, pending[first : first + STEP_KEYS]))
    kept_flags, kept_json, kept_etags = (
        list(previous.flags),
        list(previous.json),
        list(previous.etags),
    )
    for slot, (flags, body, etag) in zip(stale, resolved, strict=False):
        kept_flags[slot], kept_json[slot], kept_etags[slot] = flags, body, etag
    added = resolved[len(stale) :]
    return Views(
        keys=keys,
        flags=(*kept_flags, *(flags for flags, _, _ in added)),
        json=(*kept_json, *(body for _, body, _ in added)),
        etags=(*kept_etags, *(etag for _, _, etag in added)),
        live_tests=live_names,
    )


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
    """Resolution steps 1-5 of docs/semantics.md at one instant, with the per-bucket steps
    precomputed: building one is a pass over the configuration (rollout and test buckets),
    after which any view key resolves or explains without another. A snapshot keeps one for
    the views requests meet (flaggery.engine.units).

    Each step is a feature -> `FeatureExplanation` layer; later layers overwrite earlier ones.
    The flags are the variants of the merged layers, so flags and explanations cannot differ.
    """

    def __init__(self, config: Config, now: datetime, live: Iterable[AbTest] | None = None) -> None:
        """`live`: the tests live at `now` (`live_tests`), when the caller has them."""
        if live is None:
            live = live_tests(config.abtests, now)
        self._defaults = default_layer(config)
        self._by_bucket = _bucket_assignments(config.rollouts.values(), live, len(config.buckets))
        self._overrides = {
            group.name: {
                feature: FeatureExplanation(variant, "override", group=group.name)
                for feature, variant in group.overrides.items()
            }
            for group in config.groups.values()
        }
        self._kills = kill_layer(config.features.values())
        # Many keys resolve alike (most buckets of a rollout, say): share one map and one body.
        self._interned: dict[bytes, tuple[Mapping[str, str], bytes, bytes]] = {}

    def explain(self, key: ViewKey) -> dict[str, FeatureExplanation]:
        """feature -> why it has its variant, in feature-name order."""
        explained = dict(self._defaults)
        for audience, layer in self._by_bucket.get(key.bucket, ()):
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
        for audience, layer in self._by_bucket.get(key.bucket, ()):
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


def _bucket_assignments(
    rollouts: Iterable[Rollout], live: Iterable[AbTest], bucket_count: int
) -> dict[int, _Layers]:
    """bucket -> what rollouts (step 2) then live test groups (step 3) assign to it, as
    (audience, layer) pairs in step order; a layer applies to a view whose groups hold its
    audience (None: to every view).

    Each step overwrites the previous per feature, so layering them in step order gives the
    same result as applying the steps one after another; consecutive layers of one audience
    are merged, so without audiences each bucket has one layer.
    """
    by_bucket: dict[int, _Layers] = {}
    for rollout in rollouts:
        why = FeatureExplanation(
            rollout.variant,
            "rollout",
            proportion=rollout.proportion,
            audience=rollout.audience,
            key_share=_share(rollout.buckets, bucket_count),
        )
        for bucket in rollout.buckets:
            _add_layer(by_bucket.setdefault(bucket, []), rollout.audience, {rollout.feature: why})
    for test in live:
        for group in test.groups:
            layer = {
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
            for bucket in group.buckets:
                _add_layer(by_bucket.setdefault(bucket, []), test.audience, layer)
    return by_bucket


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

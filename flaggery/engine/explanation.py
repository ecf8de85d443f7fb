"""Why a subject gets each variant: the structured answer every adapter formats.

The snapshot resolves views through these types (`views.ViewResolver.explain`), so an
explanation is not a second resolution that could disagree with the flags: the flags *are*
the explanation's variants. Adapters (REST, an OpenFeature/OFREP provider, a dashboard) only
translate it, e.g. source "default" -> reason DEFAULT, "rollout"/"abtest" -> SPLIT,
"override" -> TARGETING_MATCH, ``disabled`` (also every "killed") -> DISABLED.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from flaggery.engine.model import DISABLE

__all__ = ["Explanation", "FeatureExplanation", "KeyExplanation", "Source"]

Source = Literal["default", "rollout", "abtest", "override", "killed"]
"""The resolution step that decided a feature's variant (docs/semantics.md steps 1-5;
"killed": the feature's kill switch is on)."""


class FeatureExplanation(msgspec.Struct, frozen=True, omit_defaults=True):
    """One feature's variant and the step that chose it.

    Only the fields of that step are set: ``proportion`` (0 to 1, of the weight) for a
    rollout, ``test`` and ``test_group`` for an A/B test, ``audience`` for a rollout or test
    that serves one group, ``group`` for a group override, and ``rule_set`` (the position of
    the constraint set that matched) when that group applied by its targeting rule rather than
    by membership; for a rollout or test group ``key_share``, its share of hashed targeting
    keys (its buckets out of all, 0 to 1), which differs from its share of weight when bucket
    weights are uneven.
    """

    variant: str
    source: Source
    proportion: float | None = None
    test: str | None = None
    test_group: str | None = None
    audience: str | None = None
    group: str | None = None
    key_share: float | None = None
    rule_set: int | None = None

    @property
    def disabled(self) -> bool:
        """The variant is the disabling variant ``__DISABLE__``."""
        return self.variant == DISABLE


class Explanation(msgspec.Struct, frozen=True, omit_defaults=True):
    """A subject's resolution at one snapshot revision.

    ``features`` maps feature name -> explanation, in name order, with exactly the features
    and variants the subject's flags have (a feature with no default and no other source is
    absent from both). ``groups`` are the subject's groups in join order: on a feature several
    of them override, the last joined wins. Explained with an evaluation context, ``groups``
    starts with the rule groups it matched (name order), and ``rule_groups`` maps each to the
    position of the first constraint set that matched (absent without one).
    """

    subject_id: int
    revision: int
    bucket: int
    groups: list[str]
    features: dict[str, FeatureExplanation]
    rule_groups: dict[str, int] = {}


class KeyExplanation(msgspec.Struct, frozen=True):
    """A targeting key's resolution at one snapshot revision (`Snapshot.explain_key`).

    ``hashed`` is true when the key names no registered subject: ``key_hash`` is then its
    64-bit hash (16 hex digits; flaggery.engine.targeting), and ``bucket`` the bucket that hash
    jumps to among ``bucket_count`` buckets; it gets what a subject in that bucket with no
    group gets. Otherwise ``subject_id`` is the registered subject it was bucketed by (the key
    itself, or the one the context named), with that subject's bucket and groups. ``bucket`` is
    None only while there is no bucket (defaults only). ``features`` as in `Explanation`.
    """

    key: str
    subject_id: int | None
    hashed: bool
    key_hash: str | None
    bucket_count: int
    revision: int
    bucket: int | None
    groups: list[str]
    features: dict[str, FeatureExplanation]
    rule_groups: dict[str, int] = {}
    """The groups the request is in by their rule (not joined), in name order: group ->
    position of the first constraint set of its rule that the context matched."""

"""The kill switch as a resolution layer: a killed feature is off for everyone.

Applied last (docs/semantics.md, "Resolution", step 5), over the default, rollouts, A/B tests
and group overrides, which stay as they are: turning the switch off restores exactly what they
give, with no rewrite to undo.
"""

from __future__ import annotations

from collections.abc import Iterable

from flaggery.engine.explanation import FeatureExplanation
from flaggery.engine.model import DISABLE, Feature

__all__ = ["kill_layer"]

_KILLED = FeatureExplanation(DISABLE, "killed")


def kill_layer(features: Iterable[Feature]) -> dict[str, FeatureExplanation]:
    """Resolution step 5: killed feature -> ``__DISABLE__`` (source "killed")."""
    return {feature.name: _KILLED for feature in features if feature.killed}

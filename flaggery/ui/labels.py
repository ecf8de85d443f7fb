"""How the dashboard names what the API names otherwise: the reserved disabling variant
``__DISABLE__`` is "Off (disabled)" on every page; forms still send the reserved name. A
resolution step (flaggery.engine.reach.Via) and a change's moves are named in words."""

from __future__ import annotations

from collections.abc import Sequence

from flaggery.engine.model import DISABLE
from flaggery.engine.reach import Move, Via

__all__ = ["OFF", "effect", "step_label", "variant_label"]

OFF = "Off (disabled)"


def variant_label(variant: str | None) -> str | None:
    """A variant as a PM reads it: ``__DISABLE__`` -> "Off (disabled)", any other unchanged."""
    return OFF if variant == DISABLE else variant


def step_label(via: Via) -> str:
    """The step serving a variant, in words: "the rollout", "A/B test t, group a", ..."""
    match via.source:
        case None:
            return "nothing (no default)"
        case "default":
            return "the default"
        case "rollout":
            return "the rollout"
        case "abtest":
            return f"A/B test {via.test}, group {via.test_group}"
        case "override":
            return f"the override of group {via.group}"
        case "killed":
            return "the kill switch"


def _served(via: Via) -> str:
    return f"{variant_label(via.variant) or 'no variant'} ({step_label(via)})"


def effect(moves: Sequence[Move], units: str = "subjects") -> list[str]:
    """Each move as a sentence: "9,998 subjects and the hashed keys of 50 buckets: checkout
    goes from new_flow (A/B test checkout-ab, group B) to old (the rollout)"."""
    sentences = []
    for move in moves:
        count = f"{move.subjects:,} {units if move.subjects != 1 else units[:-1]}"
        keys = f" and the hashed keys of {move.buckets:,} buckets" if move.buckets else ""
        sentences.append(
            f"{count}{keys}: {move.feature} goes from {_served(move.before)} "
            f"to {_served(move.after)}"
        )
    return sentences

"""How the dashboard names what the API names otherwise: the reserved disabling variant
``__DISABLE__`` is "Off (disabled)" on every page; forms still send the reserved name."""

from __future__ import annotations

from flaggery.engine.model import DISABLE

__all__ = ["OFF", "variant_label"]

OFF = "Off (disabled)"


def variant_label(variant: str | None) -> str | None:
    """A variant as a PM reads it: ``__DISABLE__`` -> "Off (disabled)", any other unchanged."""
    return OFF if variant == DISABLE else variant

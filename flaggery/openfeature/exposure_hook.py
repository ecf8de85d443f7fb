"""ExposureHook: an OpenFeature hook that records an exposure for every evaluation an A/B
test decided, so an app records exposures in one line::

    api.add_hooks([ExposureHook(flaggery_client.record_exposure)])

It reads the flag metadata flaggery's provider (and flaggery's OFREP answers) attach:
``abTest`` and ``abTestGroup`` (flaggery.flag_evaluation), and the evaluation context's
targeting key. An evaluation without them (no test decided it, an error, no targeting key)
records nothing. ``record(key, test, group)`` must not block: the remote client's
`record_exposure` only appends to its batch (flaggery.client.exposures).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openfeature.flag_evaluation import FlagEvaluationDetails
from openfeature.hook import Hook, HookContext, HookHints

__all__ = ["ExposureHook"]


class ExposureHook(Hook):
    """Calls ``record(targeting key, A/B test, test group)`` after each evaluation an A/B
    test decided."""

    def __init__(self, record: Callable[[str, str, str], object]) -> None:
        self._record = record

    def after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        metadata = details.flag_metadata
        test, group = metadata.get("abTest"), metadata.get("abTestGroup")
        key = hook_context.evaluation_context.targeting_key
        if isinstance(test, str) and isinstance(group, str) and key:
            self._record(key, test, group)

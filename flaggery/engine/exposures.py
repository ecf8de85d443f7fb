"""Exposures as clients report them, classified against a snapshot's allocation (pure).

An exposure says: this unit (targeting key or registered subject id) saw this test group of
this A/B test at this time. Classifying it finds the unit (the snapshot's request-time entry
point, `Snapshot.evaluate`), its bucket, the group the allocation assigns it (the test group
holding that bucket) and whether the time falls inside the test's window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from flaggery.engine.snapshot import Snapshot
from flaggery.errors import AbTestNotFound, ValidationError

__all__ = ["ClassifiedExposure", "Exposure", "Window", "classify"]

Window = Literal["early", "live", "late"]


class Exposure(msgspec.Struct, frozen=True):
    """One exposure as reported: the OpenTelemetry ``feature_flag.context.id`` (the targeting
    key), the A/B test, the test group the client saw, and when (aware datetime)."""

    context_id: str
    test: str
    group: str
    timestamp: datetime


class ClassifiedExposure(msgspec.Struct, frozen=True):
    test: str
    group: str
    """The group the client reported."""
    assigned: str | None
    """The group the allocation assigns the unit's bucket (None: the test holds no bucket of
    it, e.g. a key hashed into a bucket added after the test's groups were dealt)."""
    unit: int | str
    """The registered subject's id, or the hashed targeting key (`hashed`)."""
    hashed: bool
    bucket: int
    window: Window


def classify(snapshot: Snapshot, exposure: Exposure) -> ClassifiedExposure:
    """`exposure` against `snapshot`. Raises AbTestNotFound for an unknown test,
    ValidationError for a group the test does not have, and InvalidTargetingKey."""
    test = snapshot.config.abtests.get(exposure.test)
    if test is None:
        raise AbTestNotFound(f"A/B test {exposure.test!r} does not exist.")
    if all(group.name != exposure.group for group in test.groups):
        names = ", ".join(repr(group.name) for group in test.groups)
        raise ValidationError(
            f"A/B test {test.name!r} has no group {exposure.group!r}. Groups: {names}."
        )
    evaluation = snapshot.evaluate(exposure.context_id)
    bucket = evaluation.view.bucket
    if bucket is None:
        raise ValidationError("There are no buckets yet, so no unit can be in a test.")
    assigned = next((group.name for group in test.groups if bucket in group.buckets), None)
    subject = evaluation.subject
    unit = exposure.context_id if subject is None else subject
    when = exposure.timestamp
    window: Window = "early" if when < test.start else "late" if when > test.end else "live"
    return ClassifiedExposure(
        test.name, exposure.group, assigned, unit, subject is None, bucket, window
    )

"""Where a batch of new subjects, some with the targeting key they had before signing in, will
go: the preview of `add_subjects_like_keys`, computed from the bucket weights before the write.

The same rules the store applies one subject after another (flaggery.store.planned_writes):
no key, the lightest bucket; a key, the bucket it hashes to unless that is beyond the balance
tolerance (`like_key_bucket`). A subject removed in the last 90 days goes back to its own bucket
instead; the bucket weights do not say which, so the plan cannot either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from flaggery.engine.allocation import lightest_bucket, like_key_bucket
from flaggery.engine.targeting import Split, key_bucketer
from flaggery.errors import NoBuckets

__all__ = ["PlannedSubject", "plan_sign_ins"]


class PlannedSubject(msgspec.Struct, frozen=True):
    subject: int
    bucket: int
    key: str | None = None
    key_bucket: int | None = None
    reason: str | None = None
    """Why it goes to the lightest bucket instead of its key's; None otherwise."""

    @property
    def kept(self) -> bool:
        """It joins its key's bucket, so it keeps the key's variants."""
        return self.key_bucket is not None and self.bucket == self.key_bucket


def plan_sign_ins(
    bucket_weights: Mapping[int, int],
    buckets: Sequence[int],
    salt: bytes,
    subjects: Iterable[tuple[int, int, str | None]],
    splits: Sequence[Split] = (),
) -> list[PlannedSubject]:
    """Per (id, weight, checked key or None), in order, where it goes. `bucket_weights`: each
    bucket's weight now; `buckets`: their ids in creation order; `salt`: the key salt;
    `splits`: the growths that split the buckets (``Config.key_splits``), so a key goes where
    the serving path hashes it. Raises NoBuckets when there is no bucket."""
    weights = dict(bucket_weights)
    if not buckets:
        raise NoBuckets("There are no buckets yet. Call increase_buckets(amount) first.")
    bucketer = key_bucketer(salt, len(buckets), splits)
    planned = []
    for subject, weight, key in subjects:
        if key is None:
            plan = PlannedSubject(subject, lightest_bucket(weights))
        else:
            key_bucket = buckets[bucketer.index(key)]
            bucket, reason = like_key_bucket(weights, key_bucket, weight)
            plan = PlannedSubject(subject, bucket, key, key_bucket, reason)
        weights[plan.bucket] += weight
        planned.append(plan)
    return planned

"""The pure core of flaggery: state model, allocation, snapshot and resolution.

Plain data in, plain data out: only the standard library and msgspec, no I/O and no clock
(time is always a parameter). ``tests/engine/test_engine_purity.py`` enforces it.
"""

from flaggery.engine.allocation import (
    lightest_bucket,
    partition_buckets,
    place_subjects,
    rollout_buckets,
    rollout_share_of_new_buckets,
    split_new_buckets,
)
from flaggery.engine.changes import ChangeGap, apply_changes, apply_facts
from flaggery.engine.config import Config
from flaggery.engine.explanation import Explanation, FeatureExplanation
from flaggery.engine.naive import naive_variants
from flaggery.engine.snapshot import Snapshot, SubjectView, build_snapshot
from flaggery.engine.state_codec import decode_state, encode_state

__all__ = [
    "ChangeGap",
    "Config",
    "Explanation",
    "FeatureExplanation",
    "Snapshot",
    "SubjectView",
    "apply_changes",
    "apply_facts",
    "build_snapshot",
    "decode_state",
    "encode_state",
    "lightest_bucket",
    "naive_variants",
    "partition_buckets",
    "place_subjects",
    "rollout_buckets",
    "rollout_share_of_new_buckets",
    "split_new_buckets",
]

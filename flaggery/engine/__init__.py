"""The pure core of flaggery: state model, allocation, snapshot and resolution.

Plain data in, plain data out: only the standard library and msgspec, no I/O and no clock
(time is always a parameter). ``tests/engine/test_purity.py`` and the import-linter contracts in
``pyproject.toml`` enforce it. The behaviour it implements is written down in ``docs/semantics.md``.
"""

from flaggery.engine.allocation import (
    grow_abtest,
    grow_rollout,
    lightest_bucket,
    partition_buckets,
    place_subjects,
    rollout_buckets,
)
from flaggery.engine.bucket_order import rollout_order
from flaggery.engine.catch_up import ChangeGap
from flaggery.engine.config import Config
from flaggery.engine.evaluation import SUBJECT_ATTRIBUTE, Evaluation, ResolvedView
from flaggery.engine.explanation import Explanation, FeatureExplanation, KeyExplanation
from flaggery.engine.snapshot import Snapshot, SubjectView, build_snapshot
from flaggery.engine.state_codec import decode_state, encode_state

__all__ = [
    "SUBJECT_ATTRIBUTE",
    "ChangeGap",
    "Config",
    "Evaluation",
    "Explanation",
    "FeatureExplanation",
    "KeyExplanation",
    "ResolvedView",
    "Snapshot",
    "SubjectView",
    "build_snapshot",
    "decode_state",
    "encode_state",
    "grow_abtest",
    "grow_rollout",
    "lightest_bucket",
    "partition_buckets",
    "place_subjects",
    "rollout_buckets",
    "rollout_order",
]

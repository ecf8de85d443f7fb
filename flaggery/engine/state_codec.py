"""A State as bytes and back, so a replica can keep its last good snapshot on disk.

MessagePack via msgspec, with the subject columns written as the raw bytes of their typed
arrays: a million subjects encode and decode as three memory copies, not three million
integers. The arrays keep the machine's native byte order, because the bytes are a cache for
replicas on the same kind of host, not an exchange format. The format number is the struct's
tag, so bytes of another format fail to decode instead of decoding into nonsense.
"""

from __future__ import annotations

from array import array

import msgspec

from flaggery.engine.model import AbTest, Feature, Group, Rollout, State, SubjectColumns

__all__ = ["decode_state", "encode_state"]


class _EncodedState(msgspec.Struct, frozen=True, tag_field="format", tag=1):
    revision: int
    buckets: tuple[int, ...]
    subject_ids: bytes
    subject_weights: bytes
    subject_buckets: bytes
    memberships: dict[int, tuple[str, ...]]
    features: dict[str, Feature]
    rollouts: dict[str, Rollout]
    abtests: dict[str, AbTest]
    groups: dict[str, Group]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_EncodedState)


def encode_state(state: State) -> bytes:
    subjects = state.subjects
    return _encoder.encode(
        _EncodedState(
            revision=state.revision,
            buckets=state.buckets,
            subject_ids=subjects.ids.tobytes(),
            subject_weights=subjects.weights.tobytes(),
            subject_buckets=subjects.buckets.tobytes(),
            memberships=dict(state.memberships),
            features=dict(state.features),
            rollouts=dict(state.rollouts),
            abtests=dict(state.abtests),
            groups=dict(state.groups),
        )
    )


def decode_state(data: bytes | memoryview) -> State:
    """The State `encode_state` encoded; ValueError if `data` is anything else."""
    encoded = _decoder.decode(data)
    ids, weights, buckets = (
        _column(encoded.subject_ids),
        _column(encoded.subject_weights),
        _column(encoded.subject_buckets),
    )
    if not len(ids) == len(weights) == len(buckets):
        raise ValueError("The saved subject columns have different lengths.")
    return State(
        revision=encoded.revision,
        buckets=encoded.buckets,
        subjects=SubjectColumns(ids, weights, buckets),
        memberships=encoded.memberships,
        features=encoded.features,
        rollouts=encoded.rollouts,
        abtests=encoded.abtests,
        groups=encoded.groups,
    )


def _column(data: bytes) -> array[int]:
    column = array("q")
    column.frombytes(data)  # ValueError unless a whole number of 8-byte items
    return column

"""A State as bytes and back: the one byte format of a State, for the local snapshot file and
for GET /v1/snapshot (edges and remote clients), readable on any machine::

    b"FLGSNAP"  format version (1 byte)  header length (4 bytes, big-endian)
    header      MessagePack: revision, buckets, memberships, features, rollouts, abtests,
                groups, subjects (the subject count n), key_salt, key_splits
    ids         n signed 64-bit integers, little-endian
    weights     n signed 64-bit integers, little-endian
    buckets     n signed 64-bit integers, little-endian

`state_chunks` yields these pieces for a response to send one by one: the three columns are
the state's own arrays (views, copied only on a big-endian host), so a snapshot of a million
subjects is never built a second time in memory. Format 2 added ``key_salt``, format 3
``key_splits`` (format 2 is still read, as a state with no split; an edge that reads only
format 2 refuses format 3 rather than hash keys without the splits); bytes of any other
format fail to decode (ValueError) instead of decoding into nonsense.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator

import msgspec

from flaggery.engine.model import AbTest, Feature, Group, Rollout, State, SubjectColumns

__all__ = ["MAGIC", "VERSION", "decode_state", "encode_state", "state_chunks"]

MAGIC = b"FLGSNAP"
VERSION = 3
_READABLE = (2, 3)  # format 2 has no key_splits: its buckets never split
_PREFIX = struct.Struct(">7sBI")
_LITTLE = array("q", [1]).tobytes()[0] == 1  # this host stores integers little-endian


class _Header(msgspec.Struct, frozen=True):
    revision: int
    buckets: tuple[int, ...]
    memberships: dict[int, tuple[str, ...]]
    features: dict[str, Feature]
    rollouts: dict[str, Rollout]
    abtests: dict[str, AbTest]
    groups: dict[str, Group]
    subjects: int
    key_salt: bytes
    key_splits: tuple[tuple[int, int], ...] = ()


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Header)


def state_chunks(state: State) -> Iterator[bytes | memoryview]:
    """The bytes of ``state``, in pieces (prefix and header, then one per column)."""
    columns = state.subjects
    header = _encoder.encode(
        _Header(
            state.revision,
            state.buckets,
            dict(state.memberships),
            dict(state.features),
            dict(state.rollouts),
            dict(state.abtests),
            dict(state.groups),
            len(columns.ids),
            state.key_salt,
            state.key_splits,
        )
    )
    yield _PREFIX.pack(MAGIC, VERSION, len(header)) + header
    for column in (columns.ids, columns.weights, columns.buckets):
        yield _little_endian(column)


def encode_state(state: State) -> bytes:
    """The bytes of ``state`` in one piece (`state_chunks` joined)."""
    return b"".join(state_chunks(state))


def decode_state(data: bytes | bytearray | memoryview) -> State:
    """The State in ``data``. Raises ValueError for anything but this format's version."""
    view = memoryview(data)
    if len(view) < _PREFIX.size:
        raise ValueError("Not a flaggery snapshot: too short.")
    magic, version, length = _PREFIX.unpack_from(view)
    if magic != MAGIC or version not in _READABLE:
        raise ValueError(f"Not a flaggery snapshot of format {VERSION} ({magic!r}, {version}).")
    start = _PREFIX.size + length
    try:
        header = _decoder.decode(view[_PREFIX.size : start])
    except msgspec.DecodeError as error:
        raise ValueError(f"The snapshot's header does not decode: {error}") from None
    size = 8 * header.subjects
    if len(view) != start + 3 * size:
        raise ValueError("The snapshot's subject columns are truncated or too long.")
    ids, weights, buckets = (
        _column(view[start + i * size : start + (i + 1) * size]) for i in range(3)
    )
    return State(
        revision=header.revision,
        buckets=header.buckets,
        subjects=SubjectColumns(ids, weights, buckets),
        memberships=header.memberships,
        features=header.features,
        rollouts=header.rollouts,
        abtests=header.abtests,
        groups=header.groups,
        key_salt=header.key_salt,
        key_splits=header.key_splits,
    )


def _little_endian(column: array[int]) -> bytes | memoryview:
    if _LITTLE:
        return memoryview(column).cast("B")
    swapped = array("q", column)
    swapped.byteswap()
    return swapped.tobytes()


def _column(data: memoryview) -> array[int]:
    column = array("q")
    column.frombytes(data)
    if not _LITTLE:
        column.byteswap()
    return column

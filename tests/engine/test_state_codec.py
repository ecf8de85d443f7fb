"""A State as bytes (the snapshot file, GET /v1/snapshot) comes back as the same State on any
machine (little-endian columns, a versioned prefix), and anything else is refused."""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from datetime import datetime

import msgspec
import pytest
from hypothesis import given

from flaggery.engine import build_snapshot
from flaggery.engine.model import Change, Feature, State, Subject
from flaggery.engine.state_codec import decode_state, encode_state, state_chunks
from tests.engine.reference import assert_resolves_like_naive
from tests.engine.state_patch import apply_changes
from tests.engine.strategies import changes, make_state, states, times


def plain(state: State) -> dict[str, object]:
    """The State's content, with read-only mapping views compared as the dicts they show."""
    fields = msgspec.structs.asdict(state)
    return {
        name: dict(value) if isinstance(value, Mapping) else value for name, value in fields.items()
    }


@given(states(), times)
def test_a_built_snapshot_gives_back_its_state(state: State, now: datetime) -> None:
    assert plain(build_snapshot(state, now).to_state()) == plain(state)


@given(states().flatmap(lambda state: changes(state).map(lambda c: (state, c))), times)
def test_a_patched_snapshot_gives_back_the_patched_state(
    state_and_changes: tuple[State, list[Change]], now: datetime
) -> None:
    state, patch = state_and_changes
    patched = build_snapshot(state, now).apply(patch, now)
    assert plain(patched.to_state()) == plain(apply_changes(state, patch))


@given(states(), times)
def test_the_state_survives_encoding(state: State, now: datetime) -> None:
    decoded = decode_state(encode_state(build_snapshot(state, now).to_state()))
    assert plain(decoded) == plain(state)
    assert_resolves_like_naive(build_snapshot(decoded, now), state, now)


def _small() -> State:
    return make_state(
        buckets=[1],
        subjects={7: Subject(weight=2, bucket=1, groups=("beta",))},
        features=[Feature("checkout", ("A",), default="A")],
        key_salt=b"\x01" * 16,
    )


def test_the_layout_is_fixed_and_carries_the_key_salt() -> None:
    data = b"".join(bytes(chunk) for chunk in state_chunks(_small()))
    assert data == encode_state(_small())
    magic, version, length = struct.unpack_from(">7sBI", data)
    assert (magic, version) == (b"FLGSNAP", 3)
    ids, weights, buckets = struct.unpack("<3q", data[12 + length :])
    assert (ids, weights, buckets) == (7, 2, 1)
    assert decode_state(data).key_salt == b"\x01" * 16


def test_the_key_splits_travel_and_format_2_reads_as_no_split() -> None:
    split = msgspec.structs.replace(_small(), buckets=(1, 2), key_splits=((1, 2),))
    assert decode_state(encode_state(split)).key_splits == ((1, 2),)
    data = encode_state(_small())
    _, _, length = struct.unpack_from(">7sBI", data)
    header = msgspec.msgpack.decode(data[12 : 12 + length])
    del header["key_splits"]  # what a server before format 3 wrote
    old = msgspec.msgpack.encode(header)
    written = struct.pack(">7sBI", b"FLGSNAP", 2, len(old)) + old + data[12 + length :]
    assert plain(decode_state(written)) == plain(_small())


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d[:5], "too short"),
        (lambda d: b"FLGSNAQ" + d[7:], "Not a flaggery snapshot of format 3"),
        (lambda d: d[:7] + b"\x01" + d[8:], "Not a flaggery snapshot of format 3"),
        (lambda d: d[:-1], "truncated"),
        (lambda d: d + b"\x00", "truncated"),
        (lambda d: d[:12] + b"\xc1" + d[13:], "header does not decode"),
    ],
)
def test_other_bytes_are_refused(mutate: Callable[[bytes], bytes], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_state(mutate(encode_state(_small())))

"""The portable snapshot (GET /v1/snapshot): any State comes back whole, the bytes are the same
on every machine (little-endian columns, a versioned prefix), and anything else is refused."""

from __future__ import annotations

import struct
from datetime import datetime

import pytest
from hypothesis import given

from flaggery.engine import build_snapshot
from flaggery.engine.model import Feature, State, Subject
from flaggery.live.portable import decode_portable, portable_chunks
from tests.engine.reference import assert_resolves_like_naive
from tests.engine.strategies import make_state, states, times
from tests.engine.test_state_codec import plain


def _bytes(state: State) -> bytes:
    return b"".join(bytes(chunk) for chunk in portable_chunks(state))


@given(states(), times)
def test_the_state_survives_the_portable_format(state: State, now: datetime) -> None:
    decoded = decode_portable(_bytes(build_snapshot(state, now).to_state()))
    assert plain(decoded) == plain(state)
    assert_resolves_like_naive(build_snapshot(decoded, now), state, now)


def _small() -> State:
    return make_state(
        buckets=[1],
        subjects={7: Subject(weight=2, bucket=1, groups=("beta",))},
        features=[Feature("checkout", ("A",), default="A")],
    )


def test_the_layout_is_fixed() -> None:
    data = _bytes(_small())
    magic, version, length = struct.unpack_from(">7sBI", data)
    assert (magic, version) == (b"FLGSNAP", 1)
    ids, weights, buckets = struct.unpack("<3q", data[12 + length :])
    assert (ids, weights, buckets) == (7, 2, 1)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d[:5], "too short"),
        (lambda d: b"FLGSNAQ" + d[7:], "Not a flaggery snapshot of format 1"),
        (lambda d: d[:7] + b"\x02" + d[8:], "Not a flaggery snapshot of format 1"),
        (lambda d: d[:-1], "truncated"),
        (lambda d: d + b"\x00", "truncated"),
        (lambda d: d[:12] + b"\xc1" + d[13:], "header does not decode"),
    ],
)
def test_other_bytes_are_refused(mutate: object, reason: str) -> None:
    assert callable(mutate)
    with pytest.raises(ValueError, match=reason):
        decode_portable(mutate(_bytes(_small())))

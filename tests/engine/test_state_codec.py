"""A snapshot saved as bytes comes back as the same State, and anything else is refused."""

from __future__ import annotations

from array import array
from collections.abc import Mapping
from datetime import datetime

import msgspec
import pytest
from hypothesis import given

from flaggery.engine import build_snapshot
from flaggery.engine.model import Change, Feature, State, Subject, SubjectColumns
from flaggery.engine.state_codec import decode_state, encode_state
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


def test_other_bytes_are_refused_with_a_value_error() -> None:
    state = make_state(
        buckets=[1],
        subjects={7: Subject(weight=2, bucket=1, groups=("beta",))},
        features=[Feature("checkout", ("A",), default="A")],
    )
    encoded = encode_state(state)
    other_format = encoded.replace(b"\xa6format\x01", b"\xa6format\x02")
    assert other_format != encoded
    uneven = msgspec.structs.replace(
        state, subjects=SubjectColumns(array("q", [7, 8]), array("q", [2]), array("q", [1]))
    )
    for data in (b"", b"not msgpack", encoded[:-3], other_format, encode_state(uneven)):
        with pytest.raises(ValueError):
            decode_state(data)

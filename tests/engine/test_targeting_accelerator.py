"""The C accelerator of the key -> bucket function (flaggery/engine/_keyhash.c) against the
Python reference (flaggery.engine.targeting) and hashlib: for any key, salt, bucket count and
splits it gives the same 64-bit hash and the same bucket index, so no key moves when an install
gains or loses a C compiler.

Keys go beyond the 256 characters a targeting key may have, to 1,024 four-byte characters:
BLAKE2b's 128-byte blocks, one to several, and the empty message. Under CI (``CI=true`` or
``FLAGGERY_REQUIRE_ACCELERATOR=1``, which .ci/run exports) a missing accelerator fails instead
of skipping: CI proves the fast path, while a machine without a compiler still installs.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flaggery.engine import targeting
from flaggery.engine.sign_in_plan import plan_sign_ins
from flaggery.engine.targeting import (
    ACCELERATED,
    MAX_BUCKET_COUNT,
    KeyBucketer,
    PythonKeyBucketer,
    Split,
    bucket_index,
    bucket_of_key,
    key_bucketer,
    key_hasher,
)
from tests.engine.naive import naive_bucket_of_key
from tests.engine.strategies import make_state

REQUIRED = os.environ.get("CI") == "true" or os.environ.get("FLAGGERY_REQUIRE_ACCELERATOR") == "1"

try:
    from flaggery.engine._keyhash import KeyBucketer as CKeyBucketer
except ImportError:
    CKeyBucketer = None  # type: ignore[assignment, misc]

needs_c = pytest.mark.skipif(
    CKeyBucketer is None, reason="the C accelerator was not built (no C compiler?)"
)

TEXT = st.text(
    st.characters(exclude_categories=["Cs"]), min_size=0, max_size=1024
) | st.text(  # mostly multi-byte: past one, two and eight 128-byte blocks
    st.characters(min_codepoint=0x80, exclude_categories=["Cs"]), min_size=30, max_size=300
)
SALTS = st.binary(min_size=16, max_size=16) | st.binary(max_size=64)
COUNTS = st.integers(1, 10**6)


@st.composite
def counts_and_splits(draw: st.DrawFn) -> tuple[int, tuple[Split, ...]]:
    """A bucket count and splits that can describe it: as growths leave them (each split from
    at least the buckets the last one left, jump epochs between)."""
    count = draw(st.integers(1, 10**6))
    splits: list[Split] = []
    before = 1
    while before * 2 <= count and draw(st.integers(0, 3)):
        start = draw(st.integers(before, count // 2))
        multiple = draw(st.integers(2, min(count // start, 1000)))
        splits.append((start, multiple))
        before = start * multiple
    return count, tuple(splits)


def c_bucketer(salt: bytes, count: int, splits: tuple[Split, ...] = ()) -> KeyBucketer:
    assert CKeyBucketer is not None
    bucketer: KeyBucketer = CKeyBucketer(salt, count, splits)
    return bucketer


def test_the_accelerator_is_built_where_ci_requires_it() -> None:
    if not REQUIRED:
        pytest.skip("neither CI=true nor FLAGGERY_REQUIRE_ACCELERATOR=1")
    assert CKeyBucketer is not None, "flaggery/engine/_keyhash.c did not build: gcc, Python.h?"
    assert ACCELERATED
    assert isinstance(key_bucketer(bytes(16), 100), CKeyBucketer)


def test_key_bucketer_is_the_accelerator_when_built_and_the_reference_otherwise() -> None:
    expected = PythonKeyBucketer if CKeyBucketer is None else CKeyBucketer
    assert type(key_bucketer(bytes(16), 100, [(10, 2)])) is expected
    assert ACCELERATED is (CKeyBucketer is not None)


@needs_c
@settings(max_examples=2000)
@given(TEXT, SALTS, COUNTS)
@example("", bytes(16), 1)  # the salt's block is the last one
@example("", b"", 7)  # unkeyed, empty: one zero block
@example("x" * 128, bytes(16), 100)  # exactly one block after the salt's
@example("x" * 129, bytes(16), 100)
@example("€" * 256, b"s" * 64, 10**6)  # 768 bytes: six blocks
def test_the_accelerator_hashes_as_hashlib_and_buckets_as_the_reference(
    key: str, salt: bytes, count: int
) -> None:
    data = key.encode()
    expected = int.from_bytes(hashlib.blake2b(data, key=salt, digest_size=8).digest(), "big")
    accelerated, reference = c_bucketer(salt, count), PythonKeyBucketer(salt, count)
    assert accelerated.hash(key) == reference.hash(key) == expected
    assert accelerated.index(key) == reference.index(key)
    assert accelerated.index(key) == bucket_of_key(key_hasher(salt), range(count), key)[1]


@needs_c
@settings(max_examples=1000)
@given(st.text(min_size=1, max_size=300), SALTS, counts_and_splits())
def test_after_splits_the_accelerator_buckets_as_bucket_index(
    key: str, salt: bytes, shape: tuple[int, tuple[Split, ...]]
) -> None:
    count, splits = shape
    accelerated, reference = c_bucketer(salt, count, splits), PythonKeyBucketer(salt, count, splits)
    hashed = reference.hash(key)
    assert accelerated.index(key) == reference.index(key) == bucket_index(hashed, count, splits)
    assert (accelerated.salt, accelerated.count, accelerated.splits) == (salt, count, splits)


@needs_c
@settings(max_examples=1000)
@given(st.integers(0, 2**64 - 1), counts_and_splits())
@example(2**64 - 1, (MAX_BUCKET_COUNT, ((1, 2), (3, 5), (15, 1000))))
@example(0, (MAX_BUCKET_COUNT, ()))
def test_any_64_bit_hash_gets_the_same_index(
    hashed: int, shape: tuple[int, tuple[Split, ...]]
) -> None:
    count, splits = shape
    expected = bucket_index(hashed, count, splits)
    assert c_bucketer(b"s", count, splits).index_of_hash(hashed) == expected
    assert PythonKeyBucketer(b"s", count, splits).index_of_hash(hashed) == expected


@needs_c
@given(st.integers(-3, 2**31 + 3), st.lists(st.tuples(st.integers(-1, 40), st.integers(-1, 9))))
def test_both_refuse_the_same_counts_and_splits(count: int, splits: list[Split]) -> None:
    """A count outside 1 to 2**31 - 1 or splits that cannot describe it: ValueError from both
    (never a bucket from one and an error from the other)."""
    outcomes = []
    for make in (CKeyBucketer, PythonKeyBucketer):
        try:
            make(b"s", count, splits)
        except ValueError:
            outcomes.append("refused")
        else:
            outcomes.append("accepted")
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("make", [PythonKeyBucketer, CKeyBucketer], ids=["python", "c"])
def test_splits_as_lists_are_kept_as_tuples(make: type[KeyBucketer]) -> None:
    """Splits read back from JSON are lists: the same bucketer as from tuples."""
    if make is None:
        pytest.skip("the C accelerator was not built")
    from_lists = make(bytes(16), 100, [[10, 3], [40, 2]])  # type: ignore[call-arg]
    from_tuples = make(bytes(16), 100, ((10, 3), (40, 2)))  # type: ignore[call-arg]
    assert from_lists.splits == ((10, 3), (40, 2))
    keys = [f"k{i}" for i in range(500)]
    assert [from_lists.index(k) for k in keys] == [from_tuples.index(k) for k in keys]
    with pytest.raises(TypeError):
        make(bytes(16), 100, [(10, 3, 1)])  # type: ignore[call-arg]


@pytest.mark.parametrize("make", [PythonKeyBucketer, CKeyBucketer], ids=["python", "c"])
def test_a_lone_surrogate_a_non_str_and_a_long_salt_are_refused(make: type[KeyBucketer]) -> None:
    if make is None:
        pytest.skip("the C accelerator was not built")
    bucketer = make(bytes(16), 10)  # type: ignore[call-arg]
    with pytest.raises(UnicodeEncodeError):
        bucketer.index("a\ud800")
    with pytest.raises(TypeError):
        bucketer.index(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        bucketer.index_of_hash(2**64)
    with pytest.raises(ValueError):
        make(bytes(65), 10)  # type: ignore[call-arg]


@needs_c
def test_the_accelerator_is_our_own_module_beside_its_source() -> None:
    """The engine imports only the standard library, msgspec, re2 and its own compiled module
    (targeting's docstring): the one built from flaggery/engine/_keyhash.c."""
    import flaggery.engine._keyhash as module

    built = Path(module.__file__ or "")
    assert built.parent == Path(targeting.__file__).parent
    assert built.name.startswith("_keyhash.") and built.suffix in {".so", ".pyd"}


def test_the_sign_in_preview_hashes_a_key_after_splits_as_the_serving_path() -> None:
    """plan_sign_ins (the dashboard's preview of pasted sign-ins) uses the same KeyBucketer as
    serving, splits included: before, it hashed as if no split had happened, and previewed
    buckets the write would not pick. Every key's planned bucket is the naive reference's."""
    buckets = tuple(range(10, 10 + 24))
    state = make_state(buckets=buckets, key_splits=((4, 3), (12, 2)))
    keys = [f"visitor-{i}" for i in range(400)]
    weights = dict.fromkeys(buckets, 0)
    subjects = [(i + 1, 1, key) for i, key in enumerate(keys)]
    plan = plan_sign_ins(weights, buckets, state.key_salt, subjects, state.key_splits)
    assert [p.key_bucket for p in plan] == [naive_bucket_of_key(state, key) for key in keys]
    unsplit = plan_sign_ins(weights, buckets, state.key_salt, subjects)
    assert [p.key_bucket for p in unsplit] != [p.key_bucket for p in plan]

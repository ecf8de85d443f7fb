"""Targeting keys: which strings are keys, which keys are registered subjects, where others hash.

A targeting key (OpenFeature's term) is any string of 1 to 256 characters (Unicode code points)
without NUL; spaces, line breaks and any other text are allowed. A key that is the canonical
decimal id of a registered subject (ASCII digits, no sign, no leading zero, "0" allowed, below
2**63) is that subject. Every other key is *hashed* into the current buckets::

    h     = BLAKE2b(UTF-8 bytes of the key, key=salt, digest_size=8), read as a big-endian
            unsigned 64-bit integer
    index = JumpConsistentHash(h, number of buckets)      (Lamping and Veach, 2014)
    bucket = the index-th bucket in creation (id) order

as long as the buckets never *split*. A growth to m >= 2 times the buckets in one call splits
each bucket into m (`bucket_index`): its m - 1 new children copy its rollouts and test groups,
and a key moves only from a bucket into one of its children, so it keeps every variant.

The salt is 16 random bytes given to each database at migration (``flaggery_state.key_salt``),
so two databases hash the same key apart, and every process, replica, edge and remote client of
one database hashes it alike. docs/allocation.md shows the function in a few lines of Python to
reproduce offline.

The function above, in this module, is the reference. Per new key it costs about 3.5 us in
Python (the jump hash's big-integer steps most of it), so the serving path asks `key_bucketer`
for a `KeyBucketer`: one object per (salt, bucket count, splits) that maps a key to its bucket
index. It is flaggery's own C accelerator, flaggery/engine/_keyhash.c (BLAKE2b written from
RFC 7693 with the salt's block compressed once per salt, the jump hash, SplitMix64 and the
epochs of `bucket_index`), when the install could compile it, and `PythonKeyBucketer`
otherwise: the same bucket for every key either way (a Hypothesis test compares both with each
other and with hashlib), only the cost differs. The engine imports only the standard library,
msgspec and re2, and its own compiled module: an extension built from this repository's
source, pure like the rest of the engine (no I/O, no clock, no state beyond its arguments),
never a third-party binary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import blake2b
from typing import Protocol

from flaggery.errors import InvalidTargetingKey

__all__ = [
    "ACCELERATED",
    "MAX_BUCKET_COUNT",
    "MAX_KEY_LENGTH",
    "SALT_BYTES",
    "KeyBucketer",
    "PythonKeyBucketer",
    "Split",
    "bucket_index",
    "bucket_of_key",
    "check_targeting_key",
    "hash_key",
    "jump_consistent_hash",
    "key_bucketer",
    "key_hasher",
    "subject_id_of",
]

MAX_KEY_LENGTH = 256
"""The longest targeting key, in characters (Unicode code points)."""

SALT_BYTES = 16
"""The length of a database's key salt."""

_MAX_ID_DIGITS = 19  # 2**63 - 1 has 19 digits
_SUBJECT_ID_LIMIT = 1 << 63
_JUMP_MULTIPLIER = 2862933555777941757
_UINT64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15

Split = tuple[int, int]
"""A growth that split every bucket: (the bucket count before it, S; the multiple, m >= 2).
The child ``S + i*(m-1) + c`` (c < m - 1) of bucket index i copies its memberships."""


def check_targeting_key(key: object) -> str:
    """`key` if it is a targeting key; `InvalidTargetingKey` saying why not otherwise."""
    if not isinstance(key, str):
        raise InvalidTargetingKey(f"A targeting key is a string, not {type(key).__name__}.")
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidTargetingKey(
            f"A targeting key has 1 to {MAX_KEY_LENGTH} characters; this one has {len(key)}."
        )
    if "\x00" in key:
        raise InvalidTargetingKey("A targeting key may not contain NUL (U+0000).")
    if not key.isascii():
        try:
            key.encode()
        except UnicodeEncodeError:
            raise InvalidTargetingKey(
                "A targeting key must be Unicode text; this one holds a lone surrogate."
            ) from None
    return key


def subject_id_of(key: str) -> int | None:
    """The subject id `key` spells canonically (``"42"``, ``"0"``), or None (``"042"``, ``"+1"``,
    ``"٤٢"``, 2**63 or more): only a canonical id can name a registered subject."""
    if not (key.isascii() and key.isdigit()) or len(key) > _MAX_ID_DIGITS:
        return None
    if key[0] == "0" and len(key) > 1:
        return None
    subject_id = int(key)
    return subject_id if subject_id < _SUBJECT_ID_LIMIT else None


def key_hasher(salt: bytes) -> Callable[[str], int]:
    """The key -> 64-bit hash function of one salt (`hash_key`), its keyed state prepared once:
    about twice as fast per key as hashing from scratch."""
    keyed = blake2b(digest_size=8, key=salt)

    def hash_of(key: str) -> int:
        state = keyed.copy()
        state.update(key.encode())
        return int.from_bytes(state.digest(), "big")

    return hash_of


def hash_key(salt: bytes, key: str) -> int:
    """The key's 64-bit hash: BLAKE2b of its UTF-8 bytes keyed by `salt`, 8-byte digest read
    big-endian. `key` must have passed `check_targeting_key`."""
    return key_hasher(salt)(key)


def jump_consistent_hash(hashed: int, count: int) -> int:
    """Lamping and Veach's jump consistent hash: an index in ``range(count)`` (``count`` >= 1).

    Growing ``count`` to ``count'`` moves a hash only to a new index (>= count), and only
    (count' - count) / count' of hashes move. Floating point as in the paper's C code (IEEE
    doubles), so every implementation of it agrees.
    """
    bucket, jump = -1, 0
    while jump < count:
        bucket = jump
        hashed = (hashed * _JUMP_MULTIPLIER + 1) & _UINT64
        jump = int((bucket + 1) * (2147483648.0 / ((hashed >> 33) + 1)))
    return bucket


def splitmix64(value: int) -> int:
    """Steele, Lea and Flood's SplitMix64 (one step from state `value`): an unrelated 64-bit
    value per input."""
    value = (value + _GOLDEN) & _UINT64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _UINT64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _UINT64
    return value ^ (value >> 31)


def bucket_index(hashed: int, count: int, splits: Sequence[Split]) -> int:
    """The index, in creation order among `count` buckets, of the key whose hash is `hashed`.

    The buckets are cut into epochs at the splits: a jump epoch from S to E buckets (the first
    from 0, up to the first split or `count`) and a split epoch from S to m x S. The key jumps
    over the first epoch, then in each later one draws ``d = SplitMix64(h + S x phi)`` (its
    own draw per epoch): in a split it goes to child ``(d x m) >> 64`` of its bucket (0: it
    stays), in a jump epoch to ``JumpConsistentHash(d, E)`` if that is at least S. Every
    epoch moves keys only into its new buckets and keeps them uniform; with no split this is
    `jump_consistent_hash` (``hashed``, ``count``).
    """
    if not splits:
        return jump_consistent_hash(hashed, count)
    index = jump_consistent_hash(hashed, splits[0][0])
    for position, (start, multiple) in enumerate(splits):
        draw = splitmix64((hashed + start * _GOLDEN) & _UINT64)
        child = (draw * multiple) >> 64
        if child:
            index = start + index * (multiple - 1) + child - 1
        split_end = start * multiple
        end = splits[position + 1][0] if position + 1 < len(splits) else count
        if end > split_end:  # a jump epoch after the split, with its own draw
            draw = splitmix64((hashed + split_end * _GOLDEN) & _UINT64)
            jumped = jump_consistent_hash(draw, end)
            if jumped >= split_end:
                index = jumped
    return index


class KeyBucketer(Protocol):
    """A targeting key -> its bucket index, for one salt, bucket count and splits: the hot
    function of every hashed key (`key_bucketer` makes one; `bucket_of_key` is its meaning)."""

    @property
    def salt(self) -> bytes:
        """The key salt (at most 64 bytes, BLAKE2b's longest key)."""
        ...

    @property
    def count(self) -> int:
        """The number of buckets, 1 to `MAX_BUCKET_COUNT`."""
        ...

    @property
    def splits(self) -> tuple[Split, ...]:
        """The splits (`Split`), in order."""
        ...

    def index(self, key: str) -> int:
        """The index, in creation order, of the bucket `key` hashes to: ``bucket_index(
        hash(key), count, splits)``. `key` must have passed `check_targeting_key` (a str;
        TypeError otherwise, UnicodeEncodeError for a lone surrogate)."""
        ...

    def hash(self, key: str) -> int:
        """`hash_key` (salt, `key`): the 64-bit hash."""
        ...

    def index_of_hash(self, hashed: int) -> int:
        """`bucket_index` (`hashed`, count, splits) of a 64-bit hash (OverflowError for
        another int)."""
        ...


MAX_BUCKET_COUNT = (1 << 31) - 1
"""The most buckets a `KeyBucketer` serves: (index + 1) x 2**31 in the jump hash stays an
exact double, so the C accelerator computes what the paper's code does."""


def _checked_splits(count: int, splits: Sequence[Split]) -> tuple[Split, ...]:
    """`splits` as a tuple if they can describe `count` buckets (each start at least the
    bucket count the previous split left, 1 at first; each multiple at least 2; each split's
    end at most `count`); ValueError or TypeError otherwise. The C accelerator checks the same."""
    if not isinstance(count, int):
        raise TypeError("count is an int")
    if not 1 <= count <= MAX_BUCKET_COUNT:
        raise ValueError(f"count must be from 1 to {MAX_BUCKET_COUNT}")
    kept: list[Split] = []
    before = 1
    for split in splits:
        pair = tuple(split)  # a list from JSON too
        if len(pair) != 2:
            raise TypeError("a split is a (start, multiple) pair")
        start, multiple = pair
        if not before <= start <= count:
            raise ValueError(f"a split's start must be from {before} to {count}")
        if not 2 <= multiple <= count // start:
            raise ValueError(f"a split's multiple must be from 2 to {count // start}")
        before = start * multiple
        kept.append((start, multiple))
    return tuple(kept)


class PythonKeyBucketer:
    """`KeyBucketer` in Python: the reference, and the fallback where the C accelerator
    (flaggery.engine._keyhash) was not built. hashlib's BLAKE2b with the keyed state prepared
    once per salt; without splits the jump hash is inlined with its constants in locals (one
    Python call per key instead of three; a test compares it with `bucket_of_key`)."""

    __slots__ = ("_keyed", "count", "salt", "splits")

    def __init__(self, salt: bytes, count: int, splits: Sequence[Split] = ()) -> None:
        self.splits = _checked_splits(count, splits)
        self._keyed = blake2b(digest_size=8, key=salt)  # ValueError past 64 bytes
        self.salt = bytes(salt)
        self.count = count

    def hash(self, key: str) -> int:
        state = self._keyed.copy()
        state.update(str.encode(key))  # TypeError for a non-str, as the accelerator
        return int.from_bytes(state.digest(), "big")

    def index_of_hash(self, hashed: int) -> int:
        if not 0 <= hashed <= _UINT64:
            raise OverflowError("a hash is a 64-bit unsigned integer")
        return bucket_index(hashed, self.count, self.splits)

    def index(self, key: str) -> int:
        if self.splits:
            return bucket_index(self.hash(key), self.count, self.splits)
        state = self._keyed.copy()
        state.update(str.encode(key))
        walked = int.from_bytes(state.digest(), "big")
        count, multiplier, mask, scale = self.count, _JUMP_MULTIPLIER, _UINT64, 2147483648.0
        bucket, jump = -1, 0
        while jump < count:
            bucket = jump
            walked = (walked * multiplier + 1) & mask
            jump = int((bucket + 1) * (scale / ((walked >> 33) + 1)))
        return bucket


# The accelerator is imported as an attribute of the package: import-linter reads only .py
# files, and takes ``from flaggery.engine._keyhash import ...`` (a compiled module it cannot
# see) for an import of the package root, across the layers.
_CKeyBucketer: Callable[[bytes, int, Sequence[Split]], KeyBucketer] | None
try:
    from flaggery.engine import _keyhash
except ImportError:  # built without a C compiler: the reference serves (same buckets)
    _CKeyBucketer = None
else:
    _CKeyBucketer = _keyhash.KeyBucketer

ACCELERATED = _CKeyBucketer is not None
"""Whether the C accelerator was built and `key_bucketer` returns it."""


def key_bucketer(salt: bytes, count: int, splits: Sequence[Split] = ()) -> KeyBucketer:
    """The `KeyBucketer` of `salt` over `count` buckets after `splits`: the C accelerator
    (flaggery.engine._keyhash: about 2,000 instructions per UUID key, 0.3 us) when it was
    built, else `PythonKeyBucketer` (about 25,000 instructions, 3.5 to 5 us). Both give
    every key the same bucket index, the one `bucket_of_key` documents (a Hypothesis test
    compares them). ValueError for a salt over 64 bytes, a count outside 1 to
    `MAX_BUCKET_COUNT` or splits that cannot describe it; TypeError for a split that is not
    a pair."""
    if _CKeyBucketer is not None:
        return _CKeyBucketer(salt, count, splits)
    return PythonKeyBucketer(salt, count, splits)


def bucket_of_key(
    hash_of: Callable[[str], int],
    buckets: Sequence[int],
    key: str,
    splits: Sequence[Split] = (),
) -> tuple[int, int]:
    """(the key's 64-bit hash by `hash_of` (a `key_hasher`), the bucket it goes to among
    `buckets`, given in creation order, after `splits` (`bucket_index`)). `buckets` must not
    be empty; `key` must have passed `check_targeting_key`."""
    hashed = hash_of(key)
    return hashed, buckets[bucket_index(hashed, len(buckets), splits)]

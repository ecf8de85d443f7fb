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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import blake2b

from flaggery.errors import InvalidTargetingKey

__all__ = [
    "MAX_KEY_LENGTH",
    "SALT_BYTES",
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


def key_bucketer(
    salt: bytes, buckets: Sequence[int], splits: Sequence[Split] = ()
) -> Callable[[str], tuple[int, int]]:
    """`bucket_of_key` for one salt and one non-empty list of buckets, as one function: the
    keyed BLAKE2b state prepared once (`key_hasher`) and the jump hash inlined with its
    constants in locals: one Python call per new key instead of three, the same answers (a
    test compares them). With `splits`, the epochs of `bucket_index`."""
    if splits:
        hash_of = key_hasher(salt)
        chosen_buckets = tuple(buckets)
        kept_splits = tuple(splits)

        def split_bucket_of(key: str) -> tuple[int, int]:
            hashed = hash_of(key)
            return hashed, chosen_buckets[bucket_index(hashed, len(chosen_buckets), kept_splits)]

        return split_bucket_of
    copy = blake2b(digest_size=8, key=salt).copy
    from_bytes = int.from_bytes
    chosen = tuple(buckets)
    count = len(chosen)
    multiplier, mask, scale = _JUMP_MULTIPLIER, _UINT64, 2147483648.0

    def bucket_of(key: str) -> tuple[int, int]:
        state = copy()
        state.update(key.encode())
        hashed = walked = from_bytes(state.digest(), "big")
        bucket, jump = -1, 0
        while jump < count:
            bucket = jump
            walked = (walked * multiplier + 1) & mask
            jump = int((bucket + 1) * (scale / ((walked >> 33) + 1)))
        return hashed, chosen[bucket]

    return bucket_of


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

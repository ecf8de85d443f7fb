"""A rollout's memory of where it was: moving back to a proportion gives its buckets again.

Lowering then raising back restores the same buckets by itself while every held set is the
one the walk would choose (`allocation.rollout_buckets`: a prefix of the rollout's order cut
where the target falls). Growth breaks that: new buckets join the front of the order empty and
fill up afterwards, so the prefix held after growth is rarely the one a walk to the same
proportion would cut, and a round trip would land elsewhere. So every move remembers the
proportion it left and the prefix held there, together with a fingerprint of the bucket
weights; a later move to a remembered proportion, with the weights unchanged in between (no
subject added, removed or reweighted, no bucket added), takes that prefix back, and the carry
it had. The memory is forgotten as soon as the weights change.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Mapping, Sequence

import msgspec

__all__ = [
    "RestoreMemory",
    "decode_memory",
    "encode_memory",
    "recall",
    "remember",
    "weights_fingerprint",
]

MAX_REMEMBERED = 32
"""Proportions remembered per rollout (the most recently left)."""


class RestoreMemory(msgspec.Struct, frozen=True):
    weights: str
    """`weights_fingerprint` of the bucket weights the entries hold for."""
    held: dict[str, tuple[int, float]]
    """repr(proportion) -> (length of the prefix of the order held there, carry then)."""


def weights_fingerprint(bucket_weights: Mapping[int, int]) -> str:
    """A 64-bit hash of every (bucket id, weight): equal iff nothing moved, in practice."""
    flat = array("q")
    for bucket in sorted(bucket_weights):
        flat.extend((bucket, bucket_weights[bucket]))
    return hashlib.blake2b(flat.tobytes(), digest_size=8).hexdigest()


def recall(  # noqa: PLR0913 - a rollout's restore state, whole
    memory: RestoreMemory | None,
    fingerprint: str,
    proportion: float,
    current: frozenset[int],
    walked: frozenset[int],
    order: Sequence[int],
    *,
    raising: bool,
) -> tuple[frozenset[int], float | None]:
    """Where a move from `current` to `proportion` (above the current one if `raising`) lands,
    given `walked` (the walk's choice, in the move's direction) and the memory: (buckets,
    carry to restore or None).

    With the weights unchanged since the memory was written and `current` a prefix of `order`:
    a remembered proportion gives its prefix back (and its carry); any other is the walk's
    prefix clamped between the prefixes remembered at the nearest proportions below and above
    it, so that remembered states stay reachable through any chain of moves (the prefix held
    grows with the proportion across them). Otherwise the walk's choice.
    """
    if (
        memory is None
        or memory.weights != fingerprint
        or frozenset(order[: len(current)]) != current
        or frozenset(order[: len(walked)]) != walked
    ):
        return walked, None
    entry = memory.held.get(repr(proportion))
    if entry is not None:
        length, carry = entry
    else:
        below = [n for key, (n, _) in memory.held.items() if float(key) < proportion]
        above = [n for key, (n, _) in memory.held.items() if float(key) > proportion]
        length, carry = min(max(len(walked), *below, 0), *above, len(order)), None
    # Never across `current`: a move keeps its direction (the memory's prefixes grow with
    # the proportion, so a remembered one is never cut here).
    bounded = max(length, len(current)) if raising else min(length, len(current))
    return frozenset(order[:bounded]), carry if bounded == length else None


def remember(  # noqa: PLR0913 - a rollout's restore state, whole
    memory: RestoreMemory | None,
    fingerprint: str,
    proportion: float,
    current: frozenset[int],
    carry: float,
    order: Sequence[int],
) -> RestoreMemory:
    """`memory` (forgotten if the weights changed) with `proportion` -> the prefix `current`
    and `carry`, written when a move leaves `proportion`. A held set that is not a prefix of
    `order` (a rollout kept from before migration 0003, until its first move) is not
    remembered."""
    held = dict(memory.held) if memory is not None and memory.weights == fingerprint else {}
    key = repr(proportion)
    held.pop(key, None)
    if frozenset(order[: len(current)]) == current:
        held[key] = (len(current), carry)
    while len(held) > MAX_REMEMBERED:
        del held[next(iter(held))]
    return RestoreMemory(fingerprint, held)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(RestoreMemory)


def encode_memory(memory: RestoreMemory) -> str:
    return _encoder.encode(memory).decode()


def decode_memory(text: str | None) -> RestoreMemory | None:
    """The stored memory; None for none, or for text this version cannot read."""
    if text is None:
        return None
    try:
        return _decoder.decode(text)
    except msgspec.DecodeError:
        return None

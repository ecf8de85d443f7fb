"""A rollout's restore memory (flaggery.engine.restore): moving back to a proportion gives its
buckets again while the weights are unchanged, through any chain of moves; forgotten once
they change."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flaggery.engine.allocation import grow_rollout, rollout_buckets
from flaggery.engine.bucket_order import rollout_order
from flaggery.engine.restore import (
    RestoreMemory,
    decode_memory,
    encode_memory,
    recall,
    remember,
    weights_fingerprint,
)

proportions = st.floats(0, 1).map(lambda p: round(p, 2))


class Rollout:
    """The store's move logic over plain data: walk in the move's direction, then the memory."""

    def __init__(self, weights: dict[int, int], order: list[int], held: frozenset[int]) -> None:
        self.weights, self.order, self.held = weights, order, held
        self.proportion = 0.0
        self.memory: RestoreMemory | None = None

    def move(self, proportion: float) -> None:
        if proportion == self.proportion:
            return
        raising = proportion > self.proportion
        walked = rollout_buckets(self.weights, self.held, proportion, self.order, raising=raising)
        fingerprint = weights_fingerprint(self.weights)
        chosen, _ = recall(
            self.memory, fingerprint, proportion, self.held, walked, self.order, raising=raising
        )
        assert chosen >= self.held if raising else chosen <= self.held
        self.memory = remember(
            self.memory, fingerprint, self.proportion, self.held, 0.0, self.order
        )
        self.held, self.proportion = chosen, proportion


def grown(proportion: float) -> Rollout:
    """40 buckets, a rollout at `proportion`, 20 new buckets dealt, then filled unevenly."""
    weights = {bucket: 10 + bucket % 7 for bucket in range(1, 41)}
    rollout = Rollout(weights, rollout_order("f", weights, [], []), frozenset())
    rollout.move(proportion)
    joined, declined, _ = grow_rollout(list(range(41, 61)), proportion, 0.0, "f")
    weights |= {bucket: 3 + bucket % 19 for bucket in range(41, 61)}
    rollout.held |= frozenset(joined)
    rollout.order = rollout_order("f", weights, joined, declined)
    return rollout


@given(proportions, st.lists(proportions, min_size=1, max_size=5))
def test_any_chain_of_moves_and_back_restores_after_growth(
    proportion: float, detours: list[float]
) -> None:
    rollout = grown(proportion)
    held = rollout.held
    for away in [*detours, proportion]:
        rollout.move(away)
    assert rollout.held == held


def test_a_change_of_weights_forgets() -> None:
    rollout = grown(0.5)
    rollout.move(0.2)
    assert rollout.memory is not None and repr(0.5) in rollout.memory.held
    rollout.weights = rollout.weights | {1: 500}
    fingerprint = weights_fingerprint(rollout.weights)
    assert remember(rollout.memory, fingerprint, 0.2, rollout.held, 0.0, rollout.order).held == {
        repr(0.2): (len(rollout.held), 0.0)
    }


def test_the_carry_comes_back_with_the_buckets() -> None:
    order = [3, 1, 2]
    weights = {1: 5, 2: 5, 3: 5}
    fingerprint = weights_fingerprint(weights)
    memory = remember(None, fingerprint, 0.6, frozenset({3, 1}), 0.25, order)
    back = recall(
        memory, fingerprint, 0.6, frozenset({3}), frozenset({3, 1, 2}), order, raising=True
    )
    assert back == (frozenset({3, 1}), 0.25)


def test_the_memory_survives_its_column() -> None:
    memory = RestoreMemory("abc", {repr(0.1): (3, -0.5)})
    assert decode_memory(encode_memory(memory)) == memory
    assert decode_memory(None) is None and decode_memory("not json") is None

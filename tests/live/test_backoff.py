"""The reconnect policy: bounds of every wait, jitter, and one policy for every loop."""

from __future__ import annotations

import inspect
import itertools
import random
import statistics

from flaggery.http import app
from flaggery.live import evaluator, postgres_feed
from flaggery.live.backoff import RECONNECT, Backoff


def _first(policy: Backoff, count: int, seed: int) -> list[float]:
    return list(itertools.islice(policy.delays(random.Random(seed)), count))


def test_each_wait_is_within_the_upper_half_of_its_step() -> None:
    policy = Backoff(first=0.1, cap=2.0)
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    for seed in range(200):
        for delay, ceiling in zip(_first(policy, len(ceilings), seed), ceilings, strict=True):
            assert ceiling / 2 <= delay <= ceiling


def test_waits_are_jittered_and_reproducible_with_a_seed() -> None:
    policy = Backoff(first=0.1, cap=2.0)
    assert _first(policy, 10, seed=7) == _first(policy, 10, seed=7)
    # Many workers that lost the database together do not retry together.
    tenth = [_first(policy, 10, seed)[-1] for seed in range(500)]
    assert len(set(tenth)) == 500
    assert min(tenth) >= 1.0 and max(tenth) <= 2.0
    assert statistics.pstdev(tenth) > 0.2  # uniform over [1, 2] has 0.29


def test_unseeded_sequences_differ() -> None:
    assert list(itertools.islice(RECONNECT.delays(), 5)) != list(
        itertools.islice(RECONNECT.delays(), 5)
    )


def test_every_reconnect_loop_uses_the_policy() -> None:
    for module in (app, evaluator, postgres_feed):
        assert "RECONNECT.delays()" in inspect.getsource(module), module.__name__

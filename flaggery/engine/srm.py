"""Sample ratio mismatch (SRM): is an A/B test's exposure split the one its allocation implies?

Pure functions of counts and expected shares (no I/O, no clock). Two p-values:

* ``chi_squared_p``: Pearson's goodness-of-fit test, valid for **one** look at a fixed sample.
  Re-checking it as exposures arrive inflates false alarms (every look is another chance).
* ``sequential_srm_p``: the anytime-valid p-value of Lindon & Malek, "Anytime-Valid Inference
  for Multinomial Count Data" (NeurIPS 2022, arXiv:2011.03567), the method behind Optimizely's
  ``ssrm`` and GrowthBook's ``gbstats`` sequential SRM check. Under H0 each exposure falls in
  group i with probability ``theta0_i`` (the expected share). The alternative mixes over
  ``theta ~ Dirichlet(alpha)``, ``alpha = c * theta0`` (prior centred on H0, concentration
  ``c``: gbstats uses 10,000; here the mean over several, ``DEFAULT_CONCENTRATIONS``). By
  conjugacy the Bayes factor after cumulative counts ``S`` (total ``N``, ``A = sum(alpha)``)
  depends on the counts only::

      log BF = lgamma(A) - lgamma(A + N)
               + sum_i [lgamma(alpha_i + S_i) - lgamma(alpha_i) - S_i * log theta0_i]

  BF is a nonnegative martingale under H0 with mean 1, so by Ville's inequality
  ``P(ever BF ≥ 1/a) ≤ a``: ``p = min(1, 1/BF)`` may be looked at after every exposure, and
  the running minimum over looks (``running_min``) is still a valid p-value.

``health_state`` applies the alarm rule (module constants; docs/experiments.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "DEFAULT_CONCENTRATIONS",
    "MIN_DEVIATION",
    "MIN_PER_GROUP",
    "MIN_TOTAL",
    "RED_P",
    "YELLOW_P",
    "HealthState",
    "chi_squared_p",
    "health_state",
    "log_bayes_factor",
    "max_share_deviation",
    "sequential_srm_p",
]

HealthState = Literal["green", "yellow", "red"]

DEFAULT_CONCENTRATIONS = (100.0, 10_000.0, 1_000_000.0)
"""Dirichlet concentrations ``c`` the sequential test's alternative mixes (10,000 is gbstats'
only one): a large ``c`` is sensitive to small mismatches but slow to see large ones (at
10,000 alone, 100 exposures all in one of two 50/50 groups give p = 0.6); a small ``c`` the
reverse. The mean of the Bayes factors is itself a test martingale, so the mixture stays
anytime-valid at the price of a factor of at most 3 on p."""
RED_P = 0.001
YELLOW_P = 0.01
MIN_PER_GROUP = 8
"""Exposures every group must be *expected* to have (total x share) before the state can leave
green: expected, not observed, so a group that lost every exposure still alarms."""
MIN_TOTAL = 100
"""Exposures in all before the state can leave green."""
MIN_DEVIATION = 0.001
"""Largest |observed share - expected share| (0.1 percentage point) a red state needs: below it
a mismatch is real but too small to bias a result."""


def _compared(counts: Sequence[int], shares: Sequence[float]) -> list[tuple[int, float]]:
    """(count, share) pairs, after checking the input; groups expected to get nothing and
    observed with nothing carry no information and are left out."""
    if len(counts) != len(shares) or len(counts) < 2:
        raise ValueError("counts and expected shares must have the same length, at least 2")
    if any(count < 0 for count in counts) or any(share < 0 for share in shares):
        raise ValueError("counts and expected shares must not be negative")
    total_share = math.fsum(shares)
    if not math.isclose(total_share, 1.0, rel_tol=1e-9):
        raise ValueError(f"expected shares must sum to 1, not {total_share!r}")
    return [(count, share) for count, share in zip(counts, shares, strict=True) if share or count]


def chi_squared_p(counts: Sequence[int], shares: Sequence[float]) -> float:
    """Pearson's chi-squared goodness-of-fit p-value of ``counts`` (exposures per group) against
    ``shares`` (expected fraction per group, summing to 1). 1.0 with no exposures; 0.0 when a
    group expected to get nothing got some. Raises ValueError on mismatched or negative input.
    """
    pairs = _compared(counts, shares)
    total = sum(count for count, _ in pairs)
    if total == 0:
        return 1.0
    if any(share == 0 for _, share in pairs):
        return 0.0
    statistic = math.fsum((count - total * share) ** 2 / (total * share) for count, share in pairs)
    return _chi_squared_survival(statistic, len(pairs) - 1)


def _chi_squared_survival(x: float, dof: int) -> float:
    """P(X > x) for X ~ chi-squared with an integer ``dof`` ≥ 1, in closed form (the regularised
    upper incomplete gamma function at half-integer and integer orders), summed in log space."""
    half = x / 2.0
    if half == 0.0:
        return 1.0
    if dof % 2 == 0:
        terms = (i * math.log(half) - math.lgamma(i + 1) for i in range(dof // 2))
        tail = 0.0
    else:
        terms = ((i - 0.5) * math.log(half) - math.lgamma(i + 0.5) for i in range(1, dof // 2 + 1))
        tail = math.erfc(math.sqrt(half))
    return min(1.0, tail + math.fsum(math.exp(term - half) for term in terms))


def log_bayes_factor(counts: Sequence[int], shares: Sequence[float], concentration: float) -> float:
    """log BF of the Dirichlet-multinomial alternative with prior ``concentration * shares``
    against the expected ``shares`` at cumulative ``counts`` (module docstring); +inf when a
    group expected to get nothing got some. Raises ValueError on bad input."""
    if concentration <= 0:
        raise ValueError("the concentration must be positive")
    pairs = _compared(counts, shares)
    if any(share == 0 for _, share in pairs):
        return math.inf
    total = sum(count for count, _ in pairs)
    prior_total = concentration * math.fsum(share for _, share in pairs)
    log_bf = math.lgamma(prior_total) - math.lgamma(prior_total + total)
    for count, share in pairs:
        alpha = concentration * share
        log_bf += math.lgamma(alpha + count) - math.lgamma(alpha) - count * math.log(share)
    return log_bf


def sequential_srm_p(
    counts: Sequence[int],
    shares: Sequence[float],
    concentrations: Sequence[float] = DEFAULT_CONCENTRATIONS,
    running_min: float = 1.0,
) -> float:
    """Anytime-valid SRM p-value ``min(running_min, 1, 1/BF)`` of cumulative ``counts`` against
    ``shares`` (summing to 1), BF being the mean of the Bayes factors at each of
    ``concentrations`` (module docstring). ``running_min`` is the p-value of the previous look
    (1.0 for the first): p never rises. 0.0 when a group expected to get nothing got some.
    Raises ValueError on bad input."""
    if not concentrations:
        raise ValueError("give at least one concentration")
    logs = [log_bayes_factor(counts, shares, c) for c in concentrations]
    top = max(logs)
    if top == math.inf:
        return 0.0
    log_mean = top + math.log(math.fsum(math.exp(x - top) for x in logs) / len(logs))
    return min(running_min, 1.0, math.exp(-log_mean)) if log_mean > 0 else min(running_min, 1.0)


def max_share_deviation(counts: Sequence[int], shares: Sequence[float]) -> float:
    """The largest |observed share - expected share| over the groups (0.0 with no exposures)."""
    total = sum(counts)
    if total == 0:
        return 0.0
    return max(abs(count / total - share) for count, share in zip(counts, shares, strict=True))


def health_state(counts: Sequence[int], shares: Sequence[float], p: float) -> HealthState:
    """The alarm rule for a (sequential) p-value ``p`` of ``counts`` against ``shares``.

    Green until there are ``MIN_TOTAL`` exposures and every group expected to get some is
    expected to get ``MIN_PER_GROUP`` (total x share). Then red when ``p < RED_P`` and the
    largest share deviation is at least ``MIN_DEVIATION``; yellow when ``p < YELLOW_P`` (also a
    significant but tiny deviation); green otherwise.
    """
    total = sum(counts)
    smallest_share = min((share for share in shares if share > 0), default=0.0)
    if total < MIN_TOTAL or total * smallest_share < MIN_PER_GROUP:
        return "green"
    if p < RED_P and max_share_deviation(counts, shares) >= MIN_DEVIATION:
        return "red"
    return "yellow" if p < YELLOW_P else "green"

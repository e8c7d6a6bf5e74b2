"""Statistics for pytest-llmeval: confidence intervals and paired regression tests.

This module owns every number the plugin reports or gates on:

* :func:`mean_ci` -- mean of a metric with a confidence interval (Wilson for
  binary metrics, Student t for continuous ones);
* :func:`compare_paired` -- current run versus stored baseline, paired by case
  id (exact one-sided McNemar for binary metrics, one-sided paired t-test
  otherwise), with the CI of the change and the minimum detectable drop;
* :func:`non_inferiority_lower_bound`, :func:`holm`,
  :func:`minimum_detectable_drop` -- helpers for gating and for the docs.

Reference: E. Miller, "Adding Error Bars to Evals" (arXiv 2411.00640).

Scores are floats in [0, 1]; a metric is *binary* when every value is exactly
0.0 or 1.0.  Every float returned is a plain Python ``float`` (JSON-safe).

The module is imported on every pytest run, so it only imports the standard
library; the distribution functions are pure Python (:mod:`.distributions`),
so the gate never pays for importing scipy.stats.  It does not depend on pytest.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from functools import lru_cache
from typing import List, Optional, Sequence

from . import distributions

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_CONFIDENCE",
    "DEFAULT_POWER",
    "MeanEstimate",
    "PairedComparison",
    "PairedDifference",
    "cases_needed",
    "compare_paired",
    "holm",
    "is_binary",
    "mean_ci",
    "minimum_detectable_drop",
    "non_inferiority_lower_bound",
    "paired_difference",
]

DEFAULT_CONFIDENCE = 0.95
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.80

_NAN = float("nan")
# Paired differences closer than this are equal: far below the 1e-6 a baseline stores.
_EQUAL_DIFFS = 1e-9
_BINARY_VALUES = frozenset((0.0, 1.0))


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _check_probability(name: str, value: float) -> float:
    """Return ``value`` as float; raise ValueError unless 0 < value < 1."""
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return value


def _as_scores(name: str, values: Sequence[float]) -> List[float]:
    """Convert ``values`` to a list of floats, checking each is in [0, 1]."""
    out = list(map(float, values))
    # Fast path (C loops only); the plugin calls this on every comparison.
    try:
        ok = not out or (math.isfinite(math.fsum(out)) and min(out) >= 0.0 and max(out) <= 1.0)
    except (ValueError, OverflowError):  # fsum of inf and -inf
        ok = False
    if not ok:
        for i, v in enumerate(out):
            if not 0.0 <= v <= 1.0:  # also rejects nan
                raise ValueError(f"{name}[{i}] = {v!r} is not a score in [0, 1]")
    return out


def _mean_sd(values: List[float]) -> "tuple[float, float]":
    """Mean and sample sd (ddof=1); sd is exactly 0.0 when all values are equal."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, _NAN
    if min(values) == max(values):
        return mean, 0.0
    var = math.fsum([(v - mean) * (v - mean) for v in values]) / (n - 1)
    return mean, math.sqrt(var)


@lru_cache(maxsize=256)
def _norm_ppf(q: float) -> float:
    """Standard normal quantile (cached: the plugin asks for few distinct q)."""
    return distributions.norm_ppf(q)


@lru_cache(maxsize=1024)
def _t_ppf(q: float, df: int) -> float:
    """Student t quantile with ``df`` degrees of freedom (cached)."""
    return distributions.t_ppf(q, df)


@lru_cache(maxsize=64)
def _mcnemar_k_min(alpha: float) -> int:
    """Smallest k with 0.5**k <= alpha: net losses (and no wins) McNemar needs."""
    k = 1
    while 0.5**k > alpha:
        k += 1
    return k


def _clip(x: float, low: float, high: float) -> float:
    return min(max(x, low), high)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def is_binary(values: Sequence[float]) -> bool:
    """True when ``values`` is non-empty and every value is exactly 0.0 or 1.0."""
    if len(values) == 0:
        return False
    try:
        return set(values) <= _BINARY_VALUES  # C-speed; 1.0 == 1 == True hash alike
    except TypeError:  # unhashable items
        return all(v == 0.0 or v == 1.0 for v in values)


@dataclass(frozen=True)
class MeanEstimate:
    """Mean of a metric over one suite, with a two-sided confidence interval."""

    n: int
    mean: float  # nan when n == 0
    ci_low: float  # nan when undefined
    ci_high: float
    method: str  # "wilson" | "t" | "none"


def mean_ci(values: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> MeanEstimate:
    """Mean of ``values`` with a two-sided ``confidence`` interval.

    Binary metrics use the Wilson score interval (good coverage near 0 and 1,
    never outside [0, 1]).  Continuous metrics use the Student t interval
    ``mean +- t_{(1+c)/2, n-1} * sd / sqrt(n)`` clipped to [0, 1].  With one
    continuous value the interval is (nan, nan); with zero variance it is
    (mean, mean); with no values everything is nan and ``method == "none"``.
    Raises ValueError for values outside [0, 1] or a bad ``confidence``.
    """
    confidence = _check_probability("confidence", confidence)
    xs = _as_scores("values", values)
    n = len(xs)
    if n == 0:
        return MeanEstimate(0, _NAN, _NAN, _NAN, "none")

    if is_binary(xs):
        k = sum(1 for v in xs if v == 1.0)
        low, high = distributions.wilson_interval(k, n, confidence)
        return MeanEstimate(n, k / n, low, high, "wilson")

    mean, sd = _mean_sd(xs)
    if n < 2:
        return MeanEstimate(n, mean, _NAN, _NAN, "t")
    if sd == 0.0:
        return MeanEstimate(n, mean, mean, mean, "t")
    half = _t_ppf((1.0 + confidence) / 2.0, n - 1) * sd / math.sqrt(n)
    return MeanEstimate(n, mean, _clip(mean - half, 0.0, 1.0), _clip(mean + half, 0.0, 1.0), "t")


@dataclass(frozen=True)
class PairedComparison:
    """Current run versus baseline over the same cases (see :func:`compare_paired`)."""

    n: int  # number of pairs
    baseline_mean: float
    current_mean: float
    change: float  # mean paired difference current - baseline (negative = drop)
    ci_low: float  # two-sided CI of the mean paired difference; nan when n < 2
    ci_high: float
    p_value: float  # one-sided p-value for H1: current is worse than baseline; always in [0, 1]
    test: str  # "mcnemar-exact" | "paired-t" | "none"
    mde: float  # minimum detectable drop of the full rule (test + allowed drop); nan when n < 2
    losses: Optional[int]  # binary only: pairs baseline=1, current=0
    wins: Optional[int]  # binary only: pairs baseline=0, current=1
    se: float = _NAN  # standard error of the mean difference, sd_d / sqrt(n); nan when n < 2
    # Why the test cannot judge ("" when it can): too few pairs, or a variance of zero.
    # Such a comparison never blocks; the gate reports "insufficient evidence".
    insufficient: str = ""
    mde_test: float = _NAN  # minimum detectable drop of the test alone (allowed drop 0)
    noise: float = _NAN  # binary: discordance not explained by a drop; continuous: sd of d
    loss_size: float = 1.0  # mean score a failing case loses (sum b^2 / sum b; 1 for binary)

    @property
    def sufficient(self) -> bool:
        return not self.insufficient


def _mde_shortfall(drop: float, n: int, *, noise: float, binary: bool, loss_size: float,
                   q_alpha: float, z_power: float, allowed_drop: float) -> float:
    """How far ``drop`` is from being blocked with the asked power (<= 0: it is)."""
    if binary:
        # Connor (1987): a drop turns concordant pairs into losses, so the discordance
        # becomes noise + drop; McNemar's critical mean difference is z * sqrt(psi / n)
        # and the spread of the observed mean difference is sqrt((psi - drop^2) / n).
        psi = noise + drop
        critical = q_alpha * math.sqrt(psi / n)
        spread = math.sqrt(max(psi - drop * drop, 0.0) / n)
    else:
        # Continuous analogue: a drop of mean `drop` made of failing cases that each lose
        # `loss_size` adds variance loss_size * drop - drop^2 to the differences; the t
        # test's critical mean difference uses the sd it then sees.
        spread = math.sqrt(max(noise * noise + loss_size * drop - drop * drop, 0.0) / n)
        critical = q_alpha * spread
    return max(critical, allowed_drop) + z_power * spread - drop


def minimum_detectable_drop(
    n: int,
    *,
    sd_diff: Optional[float] = None,
    discordance: Optional[float] = None,
    loss_size: float = 1.0,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    allowed_drop: float = 0.0,
) -> float:
    """Smallest true mean drop that the gate's rule blocks with probability ``power``.

    The rule blocks when the one-sided test is significant at ``alpha`` *and* the observed
    drop exceeds ``allowed_drop``; both are conditions on the observed mean difference, so
    the drop ``delta`` is detected with the asked power when

        delta - z_power * s1(delta) / sqrt(n) >= max(c(delta), allowed_drop)

    with ``s1`` the sd of the paired differences under that drop and ``c`` the test's
    critical mean difference. Give exactly one noise measure:

    * ``discordance`` (binary metrics, exact McNemar): the share of discordant pairs not
      due to a drop, psi0. A drop adds losses, so psi = psi0 + delta,
      ``c = z_(1-alpha) * sqrt(psi / n)`` and ``s1^2 = psi - delta^2``: the paired-binary
      sample-size formula of Connor (1987), Biometrics 43:207-211. Floored at
      ``k_min / n``, k_min the smallest k with 0.5**k <= alpha (exact McNemar needs that
      many net losses even when nothing is flaky).
    * ``sd_diff`` (continuous metrics, paired t): the sd of the differences without a drop.
      The continuous analogue: a drop made of failing cases that each lose ``loss_size``
      on average adds ``loss_size * delta - delta^2`` to the variance (exact for binary
      scores, loss_size 1; a drop spread evenly over all cases adds less, so the value is
      conservative for it), ``c = t_(1-alpha, n-1) * s1 / sqrt(n)``.

    Solved by bisection; nan when n < 2. A value above 1 means no drop is detectable at
    this n. With ``allowed_drop=0`` it is the test's own MDE (normal approximation).
    Raises ValueError for a bad alpha/power, a negative noise, or not exactly one noise.
    """
    alpha = _check_probability("alpha", alpha)
    power = _check_probability("power", power)
    if (sd_diff is None) == (discordance is None):
        raise ValueError("give exactly one of sd_diff (continuous) and discordance (binary)")
    binary = discordance is not None
    noise = float(discordance if binary else sd_diff)  # type: ignore[arg-type]
    if not noise >= 0.0:
        raise ValueError(f"{'discordance' if binary else 'sd_diff'} must be >= 0, got {noise!r}")
    allowed_drop = float(allowed_drop)
    if not allowed_drop >= 0.0:
        raise ValueError(f"allowed_drop must be >= 0, got {allowed_drop!r}")
    if n < 2:
        return _NAN
    q_alpha = _norm_ppf(1.0 - alpha) if binary else _t_ppf(1.0 - alpha, n - 1)
    args = dict(n=n, noise=noise, binary=binary, loss_size=float(loss_size), q_alpha=q_alpha,
                z_power=_norm_ppf(power), allowed_drop=allowed_drop)
    low, high = 0.0, 1.0
    while _mde_shortfall(high, **args) > 0.0:  # type: ignore[arg-type]
        low, high = high, 2.0 * high
    for _ in range(60):
        mid = 0.5 * (low + high)
        if _mde_shortfall(mid, **args) > 0.0:  # type: ignore[arg-type]
            low = mid
        else:
            high = mid
    mde = high
    if binary:
        mde = max(mde, _mcnemar_k_min(alpha) / n)
    return float(mde)


def compare_paired(
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    confidence: float = DEFAULT_CONFIDENCE,
    allowed_drop: float = 0.0,
) -> PairedComparison:
    """Compare ``current`` with ``baseline``; ``baseline[i]`` and ``current[i]`` are one case.

    The p-value is one-sided for H1 "current is worse than baseline".

    * Both sides binary: exact one-sided McNemar test.  With ``b`` losses
      (1 -> 0) and ``c`` wins (0 -> 1), ``p = P(Binom(b + c, 1/2) >= b)``;
      ``p = 1`` when there are no discordant pairs.
    * Otherwise: one-sided paired t-test on ``d = current - baseline``.

    Degenerate statistics never block: with one pair, or continuous differences that are
    all equal (the t statistic has no variance), the comparison is *insufficient*:
    ``insufficient`` names the reason and ``p_value`` is 1.  The p-value is always a
    number in [0, 1].

    Why a paired t-test rather than Wilcoxon signed-rank for continuous
    metrics: the gate is about the MEAN, which is what is reported and
    thresholded.  The t-test tests exactly the mean difference, and its
    p-value agrees with the t interval reported for the change (p < alpha iff
    the one-sided bound excludes 0).  Wilcoxon tests a location shift of the
    differences and can disagree in sign with the mean change (many small
    gains and a few large losses lower the mean yet look like an
    improvement).  Scores are bounded in [0, 1], so the CLT makes the t
    approximation good from a few dozen cases.

    ``ci_low``/``ci_high`` is the two-sided ``confidence`` t interval of the
    mean difference (for either test), clipped to [-1, 1]; (change, change)
    when the differences have zero variance; nan when n < 2.  ``mde`` is
    :func:`minimum_detectable_drop` of the rule "significant and a drop above
    ``allowed_drop``" for the noise seen (``mde_test``: of the test alone).  The noise is,
    for binary pairs, the discordance a drop does not explain,
    ``(wins + min(losses, wins)) / n`` (a drop adds losses, never wins); for continuous
    pairs the sd of ``d``, with ``loss_size = sum(b^2) / sum(b)`` over the baseline (the
    mean score a case loses when it fails).  ``change`` is computed from exact sums of
    the differences, so it equals ``current_mean - baseline_mean`` up to rounding and a
    net loss of exactly ``t * n`` binary cases gives a drop of exactly ``t``.

    Raises ValueError when the lengths differ, a value is outside [0, 1], or
    alpha / power / confidence are not in (0, 1).
    """
    alpha = _check_probability("alpha", alpha)
    power = _check_probability("power", power)
    confidence = _check_probability("confidence", confidence)
    base = _as_scores("baseline", baseline)
    cur = _as_scores("current", current)
    if len(base) != len(cur):
        raise ValueError(
            f"baseline and current must be paired: got {len(base)} and {len(cur)} values"
        )
    n = len(base)
    if n == 0:
        return PairedComparison(0, _NAN, _NAN, _NAN, _NAN, _NAN, 1.0, "none", _NAN, None, None,
                                insufficient="no paired cases")

    baseline_mean = math.fsum(base) / n
    current_mean = math.fsum(cur) / n
    # Exact sum of the differences (fsum over current and negated baseline).
    change = math.fsum(cur + list(map(operator.neg, base))) / n
    diffs = list(map(operator.sub, cur, base))
    binary = is_binary(base) and is_binary(cur)

    losses: Optional[int] = None
    wins: Optional[int] = None
    if binary:
        losses = diffs.count(-1.0)  # baseline 1, current 0
        wins = diffs.count(1.0)  # baseline 0, current 1
        if n < 2:
            sd = _NAN
        elif min(diffs) == max(diffs):
            sd = 0.0
        else:
            # d takes values -1, 0, 1: the sample variance is an exact rational.
            sd = math.sqrt(((losses + wins) * n - (wins - losses) ** 2) / (n * (n - 1)))
        noise = (wins + min(losses, wins)) / n
        loss_size = 1.0
    else:
        _, sd = _mean_sd(diffs)  # nan when n == 1, exactly 0.0 when d is constant
        if n >= 2 and max(diffs) - min(diffs) <= _EQUAL_DIFFS:
            sd = 0.0  # equal up to float rounding (0.45 - 0.5 != 0.7 - 0.75): still no variance
        noise = sd
        total = math.fsum(base)
        loss_size = math.fsum(b * b for b in base) / total if total > 0.0 else 1.0

    insufficient = ""
    if n < 2:
        insufficient = "only one paired case"
    elif not binary and sd == 0.0:
        insufficient = (f"all {n} paired differences are equal ({diffs[0]:+.6g}): "
                        "the paired t-test has no variance to judge")

    mde = mde_test = se = ci_low = ci_high = _NAN
    if n >= 2:
        se = sd / math.sqrt(n)
        if sd == 0.0:
            ci_low = ci_high = change
        else:
            half = _t_ppf((1.0 + confidence) / 2.0, n - 1) * se
            ci_low = _clip(change - half, -1.0, 1.0)
            ci_high = _clip(change + half, -1.0, 1.0)
        noise_kw = {"discordance": noise} if binary else {"sd_diff": noise}
        mde = minimum_detectable_drop(n, **noise_kw, loss_size=loss_size, alpha=alpha, power=power,
                                      allowed_drop=allowed_drop)
        mde_test = minimum_detectable_drop(n, **noise_kw, loss_size=loss_size, alpha=alpha, power=power)

    if binary:
        test = "mcnemar-exact"
        p_value = _mcnemar_p(losses, wins)  # type: ignore[arg-type]  # exact, even for one pair
    else:
        test = "paired-t"
        if insufficient:
            p_value = 1.0
        else:
            # Same statistic and p-value as scipy.stats.ttest_rel(cur, base, alternative="less").
            p_value = _clip(distributions.t_cdf(change / se, n - 1), 0.0, 1.0)

    return PairedComparison(
        n, baseline_mean, current_mean, change, ci_low, ci_high,
        p_value, test, mde, losses, wins, se, insufficient, mde_test, noise, loss_size,
    )


def _mcnemar_p(losses: int, wins: int) -> float:
    """Exact one-sided McNemar p-value, P(Binom(losses + wins, 1/2) >= losses)."""
    if losses + wins == 0:
        return 1.0
    return distributions.binom_sf_half(losses, losses + wins)


def non_inferiority_lower_bound(
    comparison: PairedComparison, alpha: float = DEFAULT_ALPHA
) -> float:
    """One-sided (1 - alpha) lower confidence bound of the mean change.

    ``change - t_{1-alpha, n-1} * se``; nan when it cannot be computed (n < 2, or
    differences with zero variance: a bound of width 0 claims a certainty no sample
    gives).  Gate "non-inferior within margin m" as ``bound > -m``; a nan bound is
    insufficient evidence, which never blocks.
    """
    alpha = _check_probability("alpha", alpha)
    n, se = comparison.n, comparison.se
    if n < 2 or not se > 0.0:
        return _NAN
    return float(max(comparison.change - _t_ppf(1.0 - alpha, n - 1) * se, -1.0))


def holm(p_values: Sequence[float]) -> List[float]:
    """Holm-Bonferroni step-down adjusted p-values, in input order.

    Sorted ascending, the i-th (0-based) smallest of m is multiplied by
    ``m - i``; a running maximum keeps the result monotone; capped at 1.0.
    """
    ps = [float(p) for p in p_values]
    for i, p in enumerate(ps):
        if not 0.0 <= p <= 1.0:  # also rejects nan
            raise ValueError(f"p_values[{i}] = {p!r} is not a probability")
    m = len(ps)
    adjusted = [0.0] * m
    running = 0.0
    for rank, idx in enumerate(sorted(range(m), key=ps.__getitem__)):
        running = max(running, min(1.0, (m - rank) * ps[idx]))
        adjusted[idx] = running
    return adjusted


def cases_needed(noise: float, effect: float, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER,
                 binary: bool = False, loss_size: float = 1.0) -> int:
    """Smallest number of paired cases whose :func:`minimum_detectable_drop` (test alone) is
    at most ``effect``: the power analysis behind "how many cases would we need".

    ``noise`` is :attr:`PairedComparison.noise`: the discordance not due to a change
    (binary) or the sd of the differences (continuous); ``loss_size`` as there. ``alpha``
    is the level of the one-sided test (pass ``alpha / 2`` for a two-sided one). At least
    2. Raises ValueError unless ``effect`` > 0.
    """
    if not effect > 0:
        raise ValueError(f"effect must be positive, got {effect!r}")
    kw = {"discordance": noise} if binary else {"sd_diff": noise}

    def mde(n: int) -> float:
        return minimum_detectable_drop(n, **kw, loss_size=loss_size, alpha=alpha, power=power)

    high = 2
    while mde(high) > effect:  # the MDE falls with n: double, then bisect
        high *= 2
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        if mde(mid) > effect:
            low = mid
        else:
            high = mid
    return max(high, 2)


@dataclass(frozen=True)
class PairedDifference:
    """Mean paired difference of an unbounded quantity (cost, latency, tokens): see
    :func:`paired_difference`."""

    n: int
    control_mean: float
    variant_mean: float
    change: float  # variant - control, mean over pairs
    ci_low: float  # two-sided t interval; (change, change) at zero variance; nan when n < 2
    ci_high: float
    p_value: float  # two-sided paired t-test; 1.0 when n < 2 or nothing differs

    @property
    def relative(self) -> float:
        """``change / control_mean`` (nan when the control's mean is not positive)."""
        return self.change / self.control_mean if self.control_mean > 0 else _NAN


def paired_difference(control: Sequence[float], variant: Sequence[float],
                      confidence: float = DEFAULT_CONFIDENCE) -> PairedDifference:
    """Two-sided paired t-test and interval of ``variant - control`` for any finite values.

    The same paired t statistic as :func:`compare_paired` uses for continuous scores, for
    quantities that are not scores in [0, 1] (USD per case, milliseconds, tokens). Zero
    variance: the interval is (change, change) and p is 0 when change != 0, else 1.
    Raises ValueError for unequal lengths or non-finite values.
    """
    confidence = _check_probability("confidence", confidence)
    a, b = [float(x) for x in control], [float(x) for x in variant]
    if len(a) != len(b):
        raise ValueError(f"control and variant must be paired: got {len(a)} and {len(b)} values")
    if not all(math.isfinite(x) for x in a + b):
        raise ValueError("paired_difference: values must be finite")
    n = len(a)
    if n == 0:
        return PairedDifference(0, _NAN, _NAN, _NAN, _NAN, _NAN, 1.0)
    diffs = list(map(operator.sub, b, a))
    change, sd = _mean_sd(diffs)
    control_mean, variant_mean = math.fsum(a) / n, math.fsum(b) / n
    if n < 2:
        return PairedDifference(n, control_mean, variant_mean, change, _NAN, _NAN, 1.0)
    if sd == 0.0:
        return PairedDifference(n, control_mean, variant_mean, change, change, change, 0.0 if change != 0 else 1.0)
    from scipy import stats

    se = sd / math.sqrt(n)
    half = _t_ppf((1.0 + confidence) / 2.0, n - 1) * se
    p = float(2 * stats.t.sf(abs(change) / se, n - 1))
    return PairedDifference(n, control_mean, variant_mean, change, change - half, change + half, min(p, 1.0))

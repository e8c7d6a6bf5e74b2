"""Distribution functions the gate needs, in pure Python: no scipy on the common path.

Importing ``scipy.stats`` takes one to three seconds, longer than the whole gate of a
small suite, and the gate needs only a handful of numbers: normal quantiles, Student t
tail probabilities and quantiles, exact binomial tails at 1/2 (McNemar) and the Wilson
interval. This module computes them from the standard library:

* :func:`norm_cdf` -- ``0.5 * erfc(-x / sqrt 2)``; :func:`norm_ppf` --
  :meth:`statistics.NormalDist.inv_cdf` (Wichura's algorithm AS 241, about 1e-16
  relative).
* :func:`t_cdf` / :func:`t_sf` -- through the regularized incomplete beta function,
  ``P(T <= -|t|) = I_x(df/2, 1/2) / 2`` with ``x = df / (df + t^2)`` (Abramowitz &
  Stegun 26.7.1 with 26.5.27), evaluated by its continued fraction with the modified
  Lentz method (Numerical Recipes, 3rd ed., section 6.4).
* :func:`t_ppf` -- Newton's method on the tail probability, safeguarded by bisection.
* :func:`binom_sf_half` -- ``P(Binom(n, 1/2) >= k)`` as an exact rational with integer
  binomial coefficients, rounded once to a float.
* :func:`wilson_interval` -- the Wilson score interval in closed form (Newcombe 1998,
  method 3; the formula scipy's ``binomtest(...).proportion_ci(method="wilson")`` uses).

``tests/test_distributions.py`` checks every function against scipy.stats to a relative
1e-9. Beyond the sizes an eval suite reaches (``df`` or ``n`` above
:data:`LARGE`, ``n`` above :data:`BINOM_EXACT_MAX`) the functions hand over to ``scipy.special``, still not ``scipy.stats``.
"""

from __future__ import annotations

import math
from functools import lru_cache

__all__ = ["BINOM_EXACT_MAX", "LARGE", "binom_sf_half", "norm_cdf", "norm_ppf", "t_cdf", "t_ppf", "t_sf", "wilson_interval"]

LARGE = 50_000  # df above which the rare path (scipy.special) takes over
BINOM_EXACT_MAX = 10_000  # trials above which the exact integer sum hands over (it takes ~0.1 s here)
_EPS = 1e-16
_TINY = 1e-300


def norm_cdf(x: float) -> float:
    """Standard normal CDF ``Phi(x)``."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@lru_cache(maxsize=256)
def norm_ppf(q: float) -> float:
    """Standard normal quantile for 0 < q < 1 (ValueError otherwise)."""
    from statistics import NormalDist

    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be strictly between 0 and 1, got {q!r}")
    return NormalDist().inv_cdf(q)


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; NR 6.4)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def _beta_inc(a: float, b: float, x: float, xc: float) -> tuple[float, float]:
    """``(I_x(a, b), 1 - I_x(a, b))``, each accurate in its own tail; ``xc = 1 - x``
    computed by the caller without cancellation."""
    if x <= 0.0:
        return 0.0, 1.0
    if xc <= 0.0:
        return 1.0, 0.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(xc)
    if x < (a + 1.0) / (a + b + 2.0):
        low = math.exp(log_front) * _beta_cf(a, b, x) / a
        return low, 1.0 - low
    high = math.exp(log_front) * _beta_cf(b, a, xc) / b
    return 1.0 - high, high


def _t_lower_tail(t: float, df: float) -> float:
    """``P(T <= -|t|)`` for Student t with ``df`` degrees of freedom."""
    t2 = t * t
    low, _ = _beta_inc(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))
    return 0.5 * low


def _check_df(df: float) -> float:
    df = float(df)
    if not df > 0.0 or math.isinf(df):
        raise ValueError(f"df must be a positive number, got {df!r}")
    return df


def t_cdf(t: float, df: float) -> float:
    """Student t CDF ``P(T <= t)``; nan for nan."""
    df = _check_df(df)
    if math.isnan(t):
        return math.nan
    if df > LARGE:
        from scipy import special

        return float(special.stdtr(df, t))
    if math.isinf(t):
        return 0.0 if t < 0 else 1.0
    tail = _t_lower_tail(t, df)
    return tail if t < 0 else 1.0 - tail


def t_sf(t: float, df: float) -> float:
    """Student t survival function ``P(T > t)``."""
    return t_cdf(-t, df)


def _t_pdf(t: float, df: float) -> float:
    log_norm = math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - 0.5 * (df + 1.0) * math.log1p(t * t / df))


@lru_cache(maxsize=1024)
def t_ppf(q: float, df: float) -> float:
    """Student t quantile: the t with ``P(T <= t) = q``, for 0 < q < 1.

    Solves ``P(T > t) = min(q, 1 - q)`` for t >= 0 by Newton's method from the normal
    quantile, falling back to bisection whenever a step leaves the bracket, then applies
    the sign. ValueError for q outside (0, 1) or df <= 0.
    """
    df = _check_df(df)
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be strictly between 0 and 1, got {q!r}")
    if df > LARGE:
        from scipy import special

        return float(special.stdtrit(df, q))
    if q == 0.5:
        return 0.0
    p = min(q, 1.0 - q)  # the upper tail to hit, < 0.5
    if df == 1.0:  # Cauchy: closed form
        return math.copysign(1.0 / math.tan(math.pi * p), q - 0.5)
    low, high = 0.0, max(1.0, -norm_ppf(p))
    while _t_lower_tail(high, df) > p:
        low, high = high, high * 2.0
    t = min(max(-norm_ppf(p), low), high)
    for _ in range(200):
        excess = _t_lower_tail(t, df) - p  # decreasing in t
        if excess > 0.0:
            low = t
        else:
            high = t
        step = excess / _t_pdf(t, df)
        candidate = t + step
        if not low < candidate < high:
            candidate = 0.5 * (low + high)
        if abs(candidate - t) <= 1e-15 * max(abs(t), 1.0) or high - low <= 1e-15 * high:
            t = candidate
            break
        t = candidate
    return t if q > 0.5 else -t


def binom_sf_half(k: int, n: int) -> float:
    """``P(X >= k)`` for ``X ~ Binom(n, 1/2)``: exact, rounded once (one-sided McNemar).

    1.0 for k <= 0, 0.0 for k > n. Sums the shorter side of the distribution with exact
    integers, so the result is the correctly rounded value of the exact rational.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if n > BINOM_EXACT_MAX:
        from scipy import special

        return float(special.bdtrc(k - 1, n, 0.5))
    if k > n // 2:  # upper tail: C(n, k) + ... + C(n, n)
        total = term = math.comb(n, k)
        for j in range(k, n):
            term = term * (n - j) // (j + 1)
            total += term
    else:  # 2^n minus the lower tail C(n, 0) + ... + C(n, k - 1)
        below = term = 1
        for j in range(0, k - 1):
            term = term * (n - j) // (j + 1)
            below += term
        total = (1 << n) - below
    return total / (1 << n)


def wilson_interval(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided Wilson score interval for k successes in n trials (n >= 1).

    ``center = (k + z^2/2) / (n + z^2)``, ``half = z / (n + z^2) * sqrt(k (n - k) / n + z^2 / 4)``,
    z the ``(1 + confidence) / 2`` normal quantile; the bound is exactly 0 for k = 0 and
    exactly 1 for k = n (as in scipy).
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k!r}, n={n!r}")
    z = norm_ppf(0.5 + 0.5 * confidence)
    p = k / n
    denom = 2.0 * (n + z * z)
    center = (2.0 * n * p + z * z) / denom
    delta = z / denom * math.sqrt(4.0 * n * p * (1.0 - p) + z * z)
    low = 0.0 if k == 0 else center - delta
    high = 1.0 if k == n else center + delta
    return low, high

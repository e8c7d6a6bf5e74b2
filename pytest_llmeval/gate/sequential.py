"""Adaptive repeats (``repeats="auto"``): a group-sequential regression test.

Every case runs once; the gate looks; if the evidence is neither a clear block nor a clear
pass, another round runs (half the cases by default, every case, or the cases the
baseline marks as flaky), and the gate looks again, up to ``max_rounds`` looks. Looking
several times at a test at level alpha would block unchanged apps more often than alpha
(about 7-8% at alpha 0.05 with two or three looks), so alpha is *spent* across the looks:

* the error-spending approach of Lan & DeMets (1983), "Discrete sequential boundaries for
  clinical trials", Biometrika 70(3), 659-663, with their spending functions
  ``pocock``: ``alpha * ln(1 + (e - 1) t)`` (Pocock-type) and
  ``obrien-fleming``: ``2 - 2 Phi(z_{1 - alpha/2} / sqrt t)`` (O'Brien-Fleming-type),
  where ``t`` is the share of the planned calls made by look k (:meth:`SequentialDesign.time`:
  ``k / max_rounds`` when every round runs the same cases; with half rounds
  ``(1 + (k - 1) / 2) / (1 + (max_rounds - 1) / 2)``), fixed before the run;
* the boundary of look k is the z with
  ``P(Z_1 < c_1, ..., Z_{k-1} < c_{k-1}, Z_k >= c_k) = alpha(t_k) - alpha(t_{k-1})`` under
  no change, for the canonical joint distribution of the looks' z statistics
  (``Corr(Z_j, Z_k) = sqrt(I_j / I_k)``, I the information ``1 / se^2`` of the mean paired
  difference, as observed at each look), computed by the recursive numerical integration
  of Armitage, McPherson & Rowe (1969), J. R. Statist. Soc. A 132, 235-244, in the form
  of Jennison & Turnbull, "Group Sequential Methods with Applications to Clinical Trials"
  (2000), chapter 19 (Simpson's rule on a grid of the score statistic).

The look's boundary becomes a *nominal level* ``1 - Phi(c_k)``: the gate's own tests
(exact McNemar or paired t, with Holm across metrics) run at that level instead of alpha.
Stopping early to *pass* ("futility") is non-binding: it never raises the chance of a
false block, so the boundaries ignore it. The futility bound: stop once the observed drop
is below ``allowed - FUTILITY_Z * se`` (within the allowed drop by more than a tenth of its
standard error). Stopping as soon as the drop is within the allowed drop (``FUTILITY_Z =
0``) gives up real 5-point drops whose first look happened to come out small; the value
0.1 is a trade-off measured by ``benchmarks/gate_calibration.py`` (binary, n=200, a 5-point
drop; FUTILITY_Z 0 / 0.05 / 0.1 / 0.2: power 85.3 / 86.1 / 87.1 / 87.6%, calls per case
1.34 / 1.36 / 1.38 / 1.39; docs/gate.md).

Half rounds (the default): each further round re-runs half of the cases, the halves taken
in turn in a fixed order of the case ids (:func:`half_round`), so every case has one more
run every two rounds and the choice never depends on this run's outcomes. A clear answer
after half a round saves the other half: against a real 5-point drop (n=200) rounds of
every case cost 1.43 calls per case for 86.7% power; half rounds, with the futility bound
above, 1.38 for 87.1%.

Only the statistics live here; which cases a round re-runs and when the rounds run is the
glue's business. No pytest.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from .distributions import norm_cdf, norm_ppf

__all__ = [
    "BOUNDARIES",
    "RERUN_POLICIES",
    "FUTILITY_Z",
    "Decision",
    "SequentialDesign",
    "boundaries",
    "crossing_probabilities",
    "decide",
    "half_round",
    "next_level",
    "nominal_alpha",
    "spent",
]

BOUNDARIES = ("pocock", "obrien-fleming")
RERUN_POLICIES = ("half", "all", "flaky")
FUTILITY_Z = 0.1  # stop to pass once the drop < allowed - FUTILITY_Z * se (see the module docstring)
_GRID = 161  # odd: Simpson's rule; points per look in the continuation region
_Z_FLOOR = -8.0  # the grid starts here: P(Z < -8) is 6e-16
_MIN_GROWTH = 1.05  # a look with less than 5% more information than the last is "no new information"


@dataclass(frozen=True)
class SequentialDesign:
    """How ``repeats="auto"`` runs: at most ``max_rounds`` looks, ``boundary`` the spending
    function, ``rerun`` which cases a further round runs (``half``: half of the cases, the
    halves in turn, see :func:`half_round`; ``all``: every case; ``flaky``: the cases
    whose repeats disagree in the baseline, every case when the baseline has one repeat).
    The default, 5 looks of half rounds, makes at most 3 calls per case."""

    max_rounds: int = 5
    boundary: str = "pocock"
    rerun: str = "half"

    def __post_init__(self) -> None:
        if isinstance(self.max_rounds, bool) or not isinstance(self.max_rounds, int) or not 1 <= self.max_rounds <= 10:
            raise ValueError(f"max_rounds must be an integer from 1 to 10, got {self.max_rounds!r}")
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {', '.join(BOUNDARIES)}, got {self.boundary!r}")
        if self.rerun not in RERUN_POLICIES:
            raise ValueError(f"rerun must be one of {', '.join(RERUN_POLICIES)}, got {self.rerun!r}")

    def time(self, look: int) -> float:
        """Information time of look ``look`` (1-based) for the spending function: the share
        of the planned calls made by then (a round of half the cases counts one half)."""
        if self.rerun == "half":
            return (1.0 + (look - 1) / 2.0) / (1.0 + (self.max_rounds - 1) / 2.0)
        return look / self.max_rounds

    def times(self, looks: int) -> list[float]:
        return [self.time(k) for k in range(1, looks + 1)]


def half_round(case_ids: Sequence[str], round_number: int) -> list[str]:
    """The cases a half round ``round_number`` (2, 3, ...) re-runs: the case ids ordered by
    their SHA-256 (a fixed order that mixes the dataset's own, often grouped, order), split
    in two halves (the first one the larger); even rounds run the first half, odd rounds
    the second. Sorted ids out. Depends on the ids only, never on this run's outcomes."""
    if round_number < 2:
        raise ValueError(f"round 1 runs every case; half rounds are rounds 2, 3, ..., got {round_number}")
    order = sorted(case_ids, key=lambda c: (hashlib.sha256(c.encode("utf-8")).hexdigest(), c))
    middle = (len(order) + 1) // 2
    return sorted(order[:middle] if round_number % 2 == 0 else order[middle:])


def spent(boundary: str, alpha: float, t: float) -> float:
    """Alpha spent by information time ``t`` in [0, 1] (Lan & DeMets 1983)."""
    if t <= 0.0:
        return 0.0
    t = min(t, 1.0)
    if boundary == "pocock":
        return alpha * math.log1p((math.e - 1.0) * t)
    if boundary == "obrien-fleming":
        return 2.0 - 2.0 * norm_cdf(norm_ppf(1.0 - alpha / 2.0) / math.sqrt(t))
    raise ValueError(f"unknown boundary {boundary!r}; known: {', '.join(BOUNDARIES)}")


def _simpson_weights(m: int, h: float) -> list[float]:
    return [h / 3.0 * (1 if i in (0, m - 1) else 4 if i % 2 else 2) for i in range(m)]


def _normal_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _check_information(information: Sequence[float]) -> list[float]:
    info = [float(i) for i in information]
    if not info or any(not (i > 0.0 and math.isfinite(i)) for i in info):
        raise ValueError(f"information levels must be positive and finite, got {information!r}")
    # Information cannot fall: a later look has at least the cases and repeats of an earlier one.
    # An estimated se can wobble upward; treat such a look as adding nothing new.
    for k in range(1, len(info)):
        info[k] = max(info[k], info[k - 1])
    return info


class _Recursion:
    """Sub-density of the score statistic ``S_k = Z_k sqrt(I_k)`` on the continuation region
    (Jennison & Turnbull 2000, section 19.2), advanced one look at a time."""

    def __init__(self) -> None:
        self.points: list[float] = []
        self.weights: list[float] = []  # Simpson weight times density
        self.info = 0.0

    def crossing(self, info: float, c: float) -> float:
        """P(no earlier crossing and Z_k >= c) for a look at information ``info``."""
        upper = c * math.sqrt(info)
        if not self.points:
            return 1.0 - norm_cdf(c)
        sd = math.sqrt(info - self.info)
        if sd == 0.0:
            return math.fsum(w for s, w in zip(self.points, self.weights) if s >= upper)
        return math.fsum(w * (1.0 - norm_cdf((upper - s) / sd)) for s, w in zip(self.points, self.weights))

    def advance(self, info: float, c: float) -> None:
        low, high = _Z_FLOOR * math.sqrt(info), c * math.sqrt(info)
        h = (high - low) / (_GRID - 1)
        grid = [low + i * h for i in range(_GRID)]
        simpson = _simpson_weights(_GRID, h)
        if not self.points:
            sd = math.sqrt(info)
            density = [_normal_pdf(s / sd) / sd for s in grid]
        else:
            sd = math.sqrt(info - self.info)
            if sd == 0.0:  # no new information: the statistic did not move
                kept = [(s, w) for s, w in zip(self.points, self.weights) if s < high]
                self.points, self.weights = [s for s, _ in kept], [w for _, w in kept]
                self.info = info
                return
            density = [math.fsum(w * _normal_pdf((x - s) / sd) for s, w in zip(self.points, self.weights)) / sd for x in grid]
        self.points = grid
        self.weights = [d * w for d, w in zip(density, simpson)]
        self.info = info


def boundaries(information: Sequence[float], alpha: float, boundary: str, max_rounds: int,
               times: Sequence[float] | None = None) -> list[float]:
    """Critical z values ``c_1..c_k`` (block when ``Z_j >= c_j``, Z the drop's z statistic)
    for looks at the given information levels, look j spending ``alpha(t_j)``, ``t_j =
    times[j]`` (default ``j / max_rounds``: equally spaced looks).

    ``information[j]`` is ``1 / se_j^2`` of the mean paired difference at look j; only the
    ratios matter. ``times`` increase within (0, 1]. ValueError for bad arguments;
    ``len(information) <= max_rounds``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    info = _check_information(information)
    if len(info) > max_rounds:
        raise ValueError(f"{len(info)} looks for a design of at most {max_rounds}")
    t = [k / max_rounds for k in range(len(info) + 1)] if times is None else [0.0, *map(float, times)]
    if len(t) < len(info) + 1 or any(not 0.0 < b <= 1.0 or b <= a for a, b in zip(t, t[1:])):
        raise ValueError(f"spending times must increase within (0, 1], one per look: got {times!r}")
    recursion = _Recursion()
    out = []
    for k, level in enumerate(info, start=1):
        target = spent(boundary, alpha, t[k]) - spent(boundary, alpha, t[k - 1])
        if recursion.points and level < recursion.info * _MIN_GROWTH:
            # Almost no new information (the cases barely vary): the statistic hardly moved, and
            # the grid cannot resolve so small a step. Bound this look's crossing by its marginal
            # probability, 1 - Phi(c) = target, and leave it out of the recursion; both only
            # make later boundaries stricter (conservative).
            out.append(norm_ppf(1.0 - target))
            continue
        low, high = _Z_FLOOR, -_Z_FLOOR  # crossing(c) decreases in c: bisect on [-8, 8]
        for _ in range(60):
            mid = 0.5 * (low + high)
            if recursion.crossing(level, mid) > target:
                low = mid
            else:
                high = mid
        c = 0.5 * (low + high)
        out.append(c)
        if k < len(info):
            recursion.advance(level, c)
    return out


def crossing_probabilities(information: Sequence[float], critical: Sequence[float]) -> list[float]:
    """Under no change, P(first crossing at look j) for the boundaries ``critical``
    (the recursion :func:`boundaries` inverts; also used to check it)."""
    info = _check_information(information)
    recursion = _Recursion()
    out = []
    for k, (level, c) in enumerate(zip(info, critical), start=1):
        out.append(recursion.crossing(level, c))
        if k < len(info):
            recursion.advance(level, c)
    return out


def nominal_alpha(information: Sequence[float], alpha: float, boundary: str, max_rounds: int,
                  times: Sequence[float] | None = None) -> float:
    """The one-sided level the gate's tests use at the latest look: ``1 - Phi(c_k)``."""
    return 1.0 - norm_cdf(boundaries(information, alpha, boundary, max_rounds, times)[-1])


def next_level(
    se_by_metric: Mapping[str, float],
    information: Mapping[str, Sequence[float]],
    alpha: float,
    design: SequentialDesign,
    round_number: int,
) -> tuple[dict[str, list[float]], float]:
    """This look's information per metric and the nominal level the gate tests at.

    ``se_by_metric``: the standard error of each metric's mean paired difference at this
    look; ``information``: each metric's ``1 / se^2`` at the earlier looks. Metrics without
    a finite, positive se (no baseline, no variance) add no information. The level is the
    smallest of the metrics' nominal levels (each metric keeps its error within alpha);
    with no informative metric, the alpha this look spends (a Bonferroni bound).
    """
    info = {m: list(v) for m, v in information.items()}
    for metric, se in se_by_metric.items():
        if math.isfinite(se) and se > 0.0:
            info.setdefault(metric, []).append(1.0 / (se * se))
    times = design.times(round_number)
    levels = [nominal_alpha(v, alpha, design.boundary, design.max_rounds, times) for v in info.values() if len(v) == round_number]
    if levels:
        return info, min(levels)
    return info, spent(design.boundary, alpha, times[-1]) - spent(design.boundary, alpha, design.time(round_number - 1) if round_number > 1 else 0.0)


@dataclass(frozen=True)
class Decision:
    """After a look: ``stop`` or not, and why (said in the summary)."""

    stop: bool
    reason: str


def decide(
    round_number: int,
    design: SequentialDesign,
    *,
    regressed: bool,
    drops: Mapping[str, tuple[float, float, float]],
    update: bool = False,
) -> Decision:
    """Whether to run another round after look ``round_number`` (1-based).

    ``regressed``: some metric blocks at this look's nominal level. ``drops``: metric ->
    (observed drop, allowed drop, se of the drop) for the metrics compared with a baseline.
    A further round runs only while some metric is not significant and its drop is above
    ``allowed - FUTILITY_Z * se`` (a nan se counts as 0): a non-binding futility bound.
    ``update`` (blessing a baseline) runs every round, so the baseline records each case's
    repeats (and so which cases are flaky).
    """
    if round_number >= design.max_rounds:
        return Decision(True, f"maximum of {design.max_rounds} round(s) reached")
    if update:
        return Decision(False, "blessing a baseline: every round runs")
    if regressed:
        return Decision(True, "a significant drop (the evidence is clear)")
    if not drops:
        return Decision(True, "nothing to compare with a baseline")
    unclear = sorted(m for m, (drop, allowed, se) in drops.items()
                     if drop > allowed - FUTILITY_Z * (se if math.isfinite(se) else 0.0))
    if not unclear:
        # The non-binding futility stop: not proof of no drop (a small suite's notes say how small).
        return Decision(True, "every drop is within the allowed drop (more rounds would not likely show one beyond it)")
    return Decision(False, f"inconclusive: {', '.join(unclear)} dropped about as much as allowed or more, not significantly")

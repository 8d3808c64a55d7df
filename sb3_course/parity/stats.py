"""
Scores and verdicts of a parity comparison, with rliable's stratified bootstrap.

Per run, on returns normalised per env to ``(return - random) / (reference - random)``:

- ``final``: mean of the last ``last_evals`` evaluations (a collapse late in training shows here),
- ``auc``: mean over all evaluations, the normalised area under the learning curve.

Per side, the IQM over runs with a 95% stratified bootstrap CI; between sides, the IQM difference
(course - SB3) with a 95% CI from rliable's independent bootstrap of both sides, and the probability of
improvement P(course > SB3). When the two sides ran the same seeds as pairs (matched mode: the same seed gives
both sides the same environment seeds and, when they train the same network class, the same initial weights),
the difference that decides is the paired one: the IQM of the per-seed differences, with rliable's bootstrap
over seeds; the independent difference is kept alongside. The verdict is an equivalence test against a
tolerance ``tol`` in normalised units: PARITY when the whole difference CI lies in [-tol, tol], BETTER / WORSE
when it excludes 0 (and is not inside the band), otherwise INCONCLUSIVE with the number of seeds per side that
would likely decide it.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np

VERDICTS = ("PARITY", "BETTER", "WORSE", "INCONCLUSIVE")
MIN_SEEDS = 3
BOOTSTRAP_REPS = 5_000


def run_scores(curve: np.ndarray, last_evals: int) -> dict[str, float]:
    """``final`` and ``auc`` of one normalised learning curve (mean return of each evaluation)."""
    return {"final": float(np.mean(curve[-last_evals:])), "auc": float(np.mean(curve))}


@dataclass
class Comparison:
    """The course side against the SB3 side on one metric."""

    metric: str
    course: float
    course_ci: tuple[float, float]
    sb3: float
    sb3_ci: tuple[float, float]
    difference: float
    difference_ci: tuple[float, float]
    improvement: float  # P(course > SB3)
    improvement_ci: tuple[float, float]
    verdict: str
    seeds_needed: int | None  # per side, for an INCONCLUSIVE verdict
    reason: str
    # The paired difference (IQM of per-seed differences) decides when ``paired``; the independent one (IQM
    # difference of the two sides) is kept here either way
    paired: bool = False
    independent_difference: float = float("nan")
    independent_ci: tuple[float, float] = (float("nan"), float("nan"))


def _iqm(scores: np.ndarray) -> float:
    from rliable import metrics

    return float(metrics.aggregate_iqm(scores))


def interval_estimates(scores: dict[str, np.ndarray], func, reps: int, seed: int) -> tuple[dict, dict]:
    """rliable's ``get_interval_estimates``, the same for the same ``seed``, leaving NumPy's global state as it was."""
    from rliable import library

    # rliable's stratified bootstraps draw their indices from NumPy's global generator (np.random.choice), not
    # from the random_state they are given: seed the global one for the call, so that a verdict is reproducible
    global_state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            # arch deprecates the RandomState that rliable passes on
            warnings.simplefilter("ignore", FutureWarning)
            return library.get_interval_estimates(scores, func, reps=reps, random_state=np.random.RandomState(seed))
    finally:
        np.random.set_state(global_state)


def _interval(scores: dict[str, object], func, seed: int) -> tuple[float, tuple[float, float]]:
    points, intervals = interval_estimates(scores, func, BOOTSTRAP_REPS, seed)  # type: ignore[arg-type]
    (key,) = scores
    low, high = np.asarray(intervals[key]).reshape(2, -1)[:, 0]
    return float(np.ravel(points[key])[0]), (float(low), float(high))


def seeds_needed(n: int, difference: float, ci: tuple[float, float], tolerance: float) -> int | None:
    """
    Seeds per side for a decisive CI, assuming its half-width shrinks as 1/sqrt(n): inside the band when the
    difference is within the tolerance, away from 0 otherwise. ``None`` when the difference sits on the edge.
    """
    half_width = (ci[1] - ci[0]) / 2
    margin = tolerance - abs(difference) if abs(difference) < tolerance else abs(difference)
    if margin <= 1e-3 or half_width <= 0:
        return None
    return max(n + 1, math.ceil(n * (half_width / margin) ** 2))


def verdict(difference: float, ci: tuple[float, float], tolerance: float, n_course: int, n_sb3: int) -> tuple[str, str]:
    """The verdict of a difference CI and why."""
    low, high = ci
    if min(n_course, n_sb3) < MIN_SEEDS:
        return "INCONCLUSIVE", f"fewer than {MIN_SEEDS} seeds on a side"
    if -tolerance <= low and high <= tolerance:
        return "PARITY", f"difference CI inside +-{tolerance}"
    if low > 0:
        return "BETTER", "difference CI above 0"
    if high < 0:
        return "WORSE", "difference CI below 0"
    return "INCONCLUSIVE", f"difference CI spans 0 and leaves +-{tolerance}"


def compare(
    metric: str, course: np.ndarray, sb3: np.ndarray, tolerance: float, seed: int = 0, paired: bool = False
) -> Comparison:
    """
    IQMs, difference and probability of improvement of two sets of per-run scores (1-D, one per seed). With
    ``paired``, ``course[i]`` and ``sb3[i]`` ran the same seed, and the verdict judges the IQM of the per-seed
    differences ``course[i] - sb3[i]`` (bootstrap over seeds) instead of the difference of the two IQMs.
    """
    from rliable import metrics

    x, y = np.asarray(course, dtype=float)[:, None], np.asarray(sb3, dtype=float)[:, None]
    if paired and len(x) != len(y):
        raise ValueError(f"paired scores need one per seed on both sides, got {len(x)} and {len(y)}")
    course_iqm, course_ci = _interval({"x": x}, _iqm, seed)
    sb3_iqm, sb3_ci = _interval({"y": y}, _iqm, seed)
    independent, independent_ci = _interval({"x-y": (x, y)}, lambda a, b: _iqm(a) - _iqm(b), seed)
    difference, difference_ci = _interval({"d": x - y}, _iqm, seed) if paired else (independent, independent_ci)
    improvement, improvement_ci = _interval({"x>y": (x, y)}, metrics.probability_of_improvement, seed)
    label, reason = verdict(difference, difference_ci, tolerance, len(x), len(y))
    needed = seeds_needed(min(len(x), len(y)), difference, difference_ci, tolerance) if label == "INCONCLUSIVE" else None
    return Comparison(
        metric, course_iqm, course_ci, sb3_iqm, sb3_ci, difference, difference_ci, improvement, improvement_ci,
        label, needed, reason, paired, independent, independent_ci,
    )  # fmt: skip


def pair_verdict(comparisons: list[Comparison]) -> str:
    """One verdict from the metrics': a one-directional difference wins, PARITY needs every metric at PARITY."""
    labels = {comparison.verdict for comparison in comparisons}
    differences = labels & {"BETTER", "WORSE"}
    if len(differences) == 1:
        return differences.pop()
    if labels == {"PARITY"}:
        return "PARITY"
    return "INCONCLUSIVE"

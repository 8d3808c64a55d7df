"""The output of a parity sweep: ``report.md``, ``curves.csv``, learning-curve and final-score PNGs."""

import csv
import os
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sb3_course.common.files import atomic_path, write_text_atomically
from sb3_course.experiments.jobs import RunResult
from sb3_course.parity.pairs import Pair
from sb3_course.parity.stats import Comparison, compare, interval_estimates, pair_verdict, run_scores
from sb3_course.registry import SCORE_RANGES, normalise
from sb3_course.zoo.matched import MATCHING_GAPS

CURVE_REPS = 1_000


@dataclass
class Side:
    """The runs of one side of a comparison, on a common evaluation grid."""

    label: str
    runs: list[RunResult]
    grid: np.ndarray

    @cached_property
    def curves(self) -> np.ndarray:
        """(n_runs, n_grid) mean evaluation return, each run's curve held constant between its evaluations."""
        rows = []
        for run in self.runs:
            means = run.returns.mean(axis=1)
            index = np.searchsorted(run.timesteps, self.grid, side="right") - 1
            rows.append(np.where(index >= 0, means[np.clip(index, 0, None)], means[0]))
        return np.array(rows)

    @property
    def steps_per_second(self) -> float:
        return float(np.median([run.steps_per_second for run in self.runs]))


@dataclass
class Result:
    """One pair in one mode: both sides and the comparisons of their final and AUC scores."""

    pair: Pair
    mode: str
    course: Side
    sb3: Side
    comparisons: list[Comparison]

    @property
    def verdict(self) -> str:
        return pair_verdict(self.comparisons)


def evaluate(
    pair: Pair, mode: str, course: list[RunResult], sb3: list[RunResult], tolerance: float, last_evals: int
) -> Result:
    """Compare the two sides' runs of ``pair``."""
    grid = np.arange(pair.eval_freq, pair.n_timesteps + 1, pair.eval_freq)
    sides = Side(pair.course_label, course, grid), Side(f"{pair.sb3} ({mode})", sb3, grid)
    scores = [[run_scores(curve, last_evals) for curve in normalise(side.curves, pair.env_id)] for side in sides]
    # Matched runs share their seeds (environment seeds, and initial weights where both sides build the same
    # network): judged as pairs, seed by seed
    paired = mode == "matched" and [run.job.seed for run in course] == [run.job.seed for run in sb3]
    comparisons = [
        compare(
            metric, np.array([s[metric] for s in scores[0]]), np.array([s[metric] for s in scores[1]]), tolerance,
            paired=paired,
        )
        for metric in ("final", "auc")
    ]  # fmt: skip
    return Result(pair, mode, sides[0], sides[1], comparisons)


def _ci(value: float, ci: tuple[float, float]) -> str:
    return f"{value:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def summary_table(results: list[Result]) -> str:
    lines = [
        "| pair | mode | seeds | metric | course IQM | SB3 IQM | difference (judged) | independent difference | "
        "P(course > SB3) | verdict | seeds needed |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for result in results:
        seeds = f"{len(result.course.runs)} / {len(result.sb3.runs)}"
        for c in result.comparisons:
            needed = "" if c.verdict != "INCONCLUSIVE" else (str(c.seeds_needed) if c.seeds_needed else "unknown")
            lines.append(
                f"| {result.pair.name} | {result.mode} | {seeds} | {c.metric} | {_ci(c.course, c.course_ci)} | "
                f"{_ci(c.sb3, c.sb3_ci)} | {_ci(c.difference, c.difference_ci)}{' paired' if c.paired else ''} | "
                f"{_ci(c.independent_difference, c.independent_ci)} | "
                f"{_ci(c.improvement, c.improvement_ci)} | {c.verdict} | {needed} |"
            )
    return "\n".join(lines)


def runs_table(results: list[Result], last_evals: int) -> str:
    lines = [
        "| pair | mode | side | seed | final return | best return | wall time (s) | steps/s |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for side in (result.course, result.sb3):
            for run, curve in zip(side.runs, side.curves, strict=True):
                lines.append(
                    f"| {result.pair.name} | {result.mode} | {side.label} | {run.job.seed} | "
                    f"{np.mean(curve[-last_evals:]):.1f} | {curve.max():.1f} | {run.wall_time:.0f} | "
                    f"{run.steps_per_second:.0f} |"
                )
    return "\n".join(lines)


def write_curves_csv(results: list[Result], path: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["pair", "mode", "side", "algo", "env", "seed", "timestep", "mean_return"])
        for result in results:
            for side in (result.course, result.sb3):
                for run in side.runs:
                    for step, returns in zip(run.timesteps, run.returns, strict=True):
                        writer.writerow(
                            [result.pair.name, result.mode, side.label, run.job.algo, run.job.env_id, run.job.seed,
                             int(step), float(np.mean(returns))]
                        )  # fmt: skip


def _iqm_per_step(scores: np.ndarray) -> np.ndarray:
    from rliable import metrics

    return np.array([metrics.aggregate_iqm(scores[..., step]) for step in range(scores.shape[-1])])


def plot_curves(result: Result, path: str) -> None:
    """Learning curves: IQM over seeds of the evaluation return, with 95% bootstrap CI bands (rliable)."""
    import matplotlib.pyplot as plt
    from rliable import plot_utils

    curves = {side.label: side.curves[:, None, :] for side in (result.course, result.sb3)}
    points, intervals = interval_estimates(curves, _iqm_per_step, CURVE_REPS, 0)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_sample_efficiency_curve(
        result.course.grid, points, intervals, algorithms=list(curves), ax=ax,
        xlabel="environment steps", ylabel="evaluation return (IQM)", labelsize="large", ticklabelsize="large",
    )  # fmt: skip
    ax.set_title(f"{result.pair.name} ({result.mode}): {result.verdict}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_scores(results: list[Result], path: str) -> None:
    """Final and AUC normalised scores per side: IQM and 95% CI (rliable's interval plot)."""
    import matplotlib.pyplot as plt
    from rliable import plot_utils

    points, intervals = {}, {}
    for result in results:
        env = result.pair.env_id
        for side, index in ((result.course, "course"), (result.sb3, "sb3")):
            label = f"{side.label} {env}"
            points[label] = [getattr(c, index) for c in result.comparisons]
            intervals[label] = np.array([getattr(c, f"{index}_ci") for c in result.comparisons]).T
    fig, _ = plot_utils.plot_interval_estimates(
        points, intervals, metric_names=["final", "AUC"], algorithms=list(points), xlabel="normalised score (IQM)"
    )
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def write_report(results: list[Result], out_dir: str, command: str, tolerance: float, last_evals: int) -> str:
    """Write report.md, curves.csv and the PNGs into ``out_dir``; return the report's path."""
    write_curves_csv(results, os.path.join(out_dir, "curves.csv"))
    plots = []
    for result in results:
        name = f"curves_{result.pair.tag}_{result.mode}.png"
        plot_curves(result, os.path.join(out_dir, name))
        plots.append(f"![{result.pair.name} ({result.mode})]({name})")
    plot_scores(results, os.path.join(out_dir, "scores.png"))
    verdicts = "\n".join(f"- {r.pair.name}, {r.mode}: **{r.verdict}**" for r in results)
    envs = sorted({r.pair.env_id for r in results})
    ranges = "\n".join(f"- {env}: random {SCORE_RANGES[env].random}, reference {SCORE_RANGES[env].reference}" for env in envs)
    matched = [r for r in results if r.mode == "matched" and r.pair.course in MATCHING_GAPS]
    gaps = "\n".join(f"- {r.pair.name}: {MATCHING_GAPS[r.pair.course]}" for r in matched)
    cost = "\n".join(
        f"- {r.pair.name} ({r.mode}): course {r.course.steps_per_second:.0f} steps/s, SB3 {r.sb3.steps_per_second:.0f} "
        "steps/s (median over seeds, wall time of the whole run incl. start-up and evaluations)"
        for r in results
    )
    text = f"""# Parity report

Command: `{command}`

## Verdicts
{verdicts}

Verdict rule: scores are normalised per env to (return - random) / (reference - random); a pair is PARITY when
the 95% CI of the judged difference (course - SB3) lies inside +-{tolerance} for both the final score (mean of
the last {last_evals} evaluations) and the area under the learning curve (mean of all evaluations); BETTER /
WORSE when a CI excludes 0 (one direction); otherwise INCONCLUSIVE, with the seeds per side that would likely
decide it (CI half-width shrinking as 1/sqrt(n)). The judged difference is, in matched mode (both sides ran the
same seeds: the same environment seeds and, where SB3 trains the course's own network class, the same initial
weights), the paired one: the IQM of the per-seed differences ("paired"); in recipe mode, the difference of the
two sides' IQMs. The independent IQM difference is shown for every pair. CIs: rliable stratified bootstrap,
percentile method.

Normalisation:
{ranges}

## Scores
{summary_table(results)}

![final and AUC scores](scores.png)

## Learning curves
{chr(10).join(plots)}

## What the matched SB3 side cannot match
{gaps or "- (no matched pairs in this sweep)"}

## Cost
{cost}

## Runs
{runs_table(results, last_evals)}
"""
    path = os.path.join(out_dir, "report.md")
    write_text_atomically(path, text)
    return path

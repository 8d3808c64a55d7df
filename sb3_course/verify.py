"""
``sb3-course verify``: train recipe blocks of ``hyperparams/<key>.yml`` over seeds and report how well they learn.

Each block is trained as it stands in the YAML file (its own ``n_timesteps`` unless ``-n`` overrides it) by the
experiment runner (:mod:`sb3_course.experiments`): ``python -m sb3_course.train`` subprocesses, one torch thread
each, a separate deterministic evaluation env, results saved as each run finishes (a rerun resumes; the run key
hashes the block's settings, so an edited block is trained again). The report gives per seed the final return (mean
of the last evaluations) and the best evaluation, against the random-policy return and the env's reference return
(``SCORE_RANGES``).

    sb3-course verify --algos course_dqn --envs Acrobot-v1 --seeds 2 --out docs/recipes
"""

import argparse
import csv
import json
import os
import shlex
import sys
from functools import partial
from typing import Any

import numpy as np

from sb3_course.common.files import atomic_path, write_text_atomically
from sb3_course.experiments.jobs import Job, RunResult
from sb3_course.experiments.runner import (
    exit_on_damaged_run,
    exit_without_runs,
    run_interruptibly,
    run_local,
    run_unfinished,
)
from sb3_course.experiments.store import RunStore
from sb3_course.registry import SCORE_RANGES, normalise
from sb3_course.zoo import COURSE_ALGOS, load_recipes
from sb3_course.zoo.checks import OneLineParser, check_job, check_output_folder, positive_int
from sb3_course.zoo.runs import cpus_of
from sb3_course.zoo.values import RecipeError


def recipe_blocks(algo: str) -> dict[str, dict[str, Any]]:
    """The env blocks of ``hyperparams/<algo>.yml`` (``default`` left out)."""
    return {env_id: block for env_id, block in load_recipes(algo).items() if env_id != "default"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="sb3-course verify", description=__doc__.split("\n\n")[1])
    parser.add_argument("--algos", nargs="+", default=list(COURSE_ALGOS), choices=list(COURSE_ALGOS))
    parser.add_argument("--envs", nargs="+", default=None, help="env ids (default: every block of each key)")
    parser.add_argument("--seeds", type=positive_int, default=2)
    parser.add_argument("-n", "--n-timesteps", type=positive_int, default=None, help="override every block's budget")
    parser.add_argument("--evaluations", type=positive_int, default=20, help="evaluations per run (eval_freq = budget / this)")
    parser.add_argument("--eval-episodes", type=positive_int, default=10)
    parser.add_argument("--last-evals", type=positive_int, default=3, help="evaluations averaged into the final return")
    parser.add_argument("--out", default="recipes-out")
    parser.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, help="CPU slots (A3C takes one per worker)")
    parser.add_argument("--report-only", action="store_true", help="write the report from the saved runs")
    args = parser.parse_args(argv)
    args.plan = []
    for algo in args.algos:
        blocks = recipe_blocks(algo)
        for env_id in args.envs or list(blocks):
            if env_id not in blocks:
                if args.envs and len(args.algos) == 1:
                    parser.error(f"hyperparams/{algo}.yml has no {env_id} block (blocks: {', '.join(blocks)})")
                continue
            if env_id not in SCORE_RANGES:
                parser.error(f"no score range for {env_id}; add (random return, reference return) to SCORE_RANGES")
            args.plan.append((algo, env_id, blocks[env_id]))
    if not args.plan:
        parser.error("no recipe block matches --algos / --envs")
    try:
        check_output_folder(args.out, "--out")
        for algo, env_id, block in args.plan:
            settings = {name: value for name, value in block.items() if name != "n_timesteps"}
            check_job(algo, env_id, settings, f"hyperparams/{algo}.yml [{env_id}]")
    except RecipeError as error:
        parser.error(str(error))
    return args


def jobs_of(args: argparse.Namespace, algo: str, env_id: str, block: dict[str, Any]) -> list[Job]:
    settings = {name: value for name, value in block.items() if name != "n_timesteps"}
    n_timesteps = int(args.n_timesteps or block.get("n_timesteps", 1e6))
    eval_freq = max(n_timesteps // args.evaluations, 1)
    return [
        Job(algo, env_id, seed, n_timesteps, eval_freq, args.eval_episodes, json.dumps(settings, sort_keys=True),
            cpus_of(algo, env_id, settings))
        for seed in range(args.seeds)
    ]  # fmt: skip


def run(args: argparse.Namespace, store: RunStore) -> list[str]:
    planned = [job for plan in args.plan for job in jobs_of(args, *plan)]
    return run_unfinished(planned, store, partial(run_local, n_cpus=args.jobs))


def final_return(run_result: RunResult, last_evals: int) -> float:
    return float(np.mean(run_result.returns[-last_evals:]))


def write_report(args: argparse.Namespace, store: RunStore, command: str) -> str:
    rows, curves = [], []
    for algo, env_id, block in args.plan:
        done = [store.load(job) for job in jobs_of(args, algo, env_id, block) if store.has(job)]
        if not done:
            continue
        low, high = SCORE_RANGES[env_id]
        finals = [final_return(result, args.last_evals) for result in done]
        bests = [float(result.returns.mean(axis=1).max()) for result in done]
        rows.append(
            f"| {algo} | {env_id} | {done[0].job.n_timesteps:,} | {len(done)} | "
            + ", ".join(f"{value:.1f}" for value in finals)
            + f" | {np.mean(finals):.1f} | {float(np.mean(normalise(np.array(finals), env_id))):.2f} | "
            + ", ".join(f"{value:.1f}" for value in bests)
            + f" | {low:g} / {high:g} | {sum(value >= high for value in finals)}/{len(done)} | "
            + f"{np.mean([result.wall_time for result in done]) / 60:.1f} | "
            + f"{np.mean([result.steps_per_second for result in done]):.0f} |"
        )
        for result in done:
            for step, returns in zip(result.timesteps, result.returns, strict=True):
                curves.append((algo, env_id, result.job.seed, int(step), float(np.mean(returns))))
    os.makedirs(args.out, exist_ok=True)
    with atomic_path(os.path.join(args.out, "curves.csv")) as tmp, open(tmp, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["algo", "env", "seed", "timesteps", "mean_return"])
        writer.writerows(curves)
    if curves:
        plot_curves(curves, os.path.join(args.out, "curves.png"))
    path = os.path.join(args.out, "report.md")
    write_text_atomically(
        path,
        "# Recipe verification\n\n"
        f"Command: `{command}`\n\n"
        f"Final = mean return of the last {args.last_evals} evaluations ({args.eval_episodes} deterministic "
        "episodes each on a separate env); norm. = (final - random) / (reference - random), averaged over "
        "seeds; reached = seeds whose final return is at least the reference return. Curves: curves.csv, "
        "curves.png.\n\n"
        "| key | env | steps | seeds | final per seed | mean final | norm. | best eval per seed "
        "| random / reference | reached | min per run | steps/s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n",
    )
    return path


def plot_curves(curves: list[tuple[str, str, int, int, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(algo, env_id) for algo, env_id, *_ in curves})
    columns = min(4, len(panels))
    rows = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for axis, (algo, env_id) in zip(axes.flat, panels, strict=False):
        for seed in sorted({seed for a, e, seed, *_ in curves if (a, e) == (algo, env_id)}):
            points = [(step, value) for a, e, s, step, value in curves if (a, e, s) == (algo, env_id, seed)]
            axis.plot(*zip(*points, strict=True), label=f"seed {seed}")
        axis.axhline(SCORE_RANGES[env_id][1], color="grey", linestyle="--", linewidth=0.8)
        axis.set_title(f"{algo} {env_id}", fontsize=9)
        axis.set_xlabel("steps")
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    axes[0][0].set_ylabel("evaluation return")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=90)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    store = RunStore(os.path.join(args.out, "runs"), create=not args.report_only)
    failures: list[str] = []
    if args.report_only:
        planned = (job for algo, env_id, block in args.plan for job in jobs_of(args, algo, env_id, block))
        exit_without_runs("sb3-course verify", store, planned, "--out")
    else:
        failures = run_interruptibly(partial(run, args, store), store.folder)
    path = exit_on_damaged_run("sb3-course verify", lambda: write_report(args, store, "sb3-course verify " + shlex.join(argv)))
    print(f"Report: {path}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()

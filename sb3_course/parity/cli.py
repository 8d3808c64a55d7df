"""
``sb3-course parity``: train every course algorithm and its SB3 counterpart over several seeds and judge them.

    sb3-course parity --out docs/parity                                  # the five default pairs, both modes
    sb3-course parity --pairs course_sac:sac@HalfCheetah-v5:300000:10000 --mode recipe --seeds 10
    sb3-course parity --backend ray --ray-address auto                   # the same jobs on a Ray cluster
    sb3-course parity --pairs course_ddpg:ddpg --mode matched --course-params critic_loss:mse \
        "policy_kwargs:dict(actor_output='tanh')"                        # an ablation of the course side

Runs already in ``<out>/runs`` are skipped (an interrupted sweep resumes); ``--report-only`` redraws the
report from them.
"""

import argparse
import ast
import itertools
import json
import os
import shlex
import sys
from functools import partial
from typing import Any

from sb3_course.experiments.jobs import Job
from sb3_course.experiments.runner import (
    exit_on_damaged_run,
    exit_without_runs,
    run_interruptibly,
    run_local,
    run_ray,
    run_unfinished,
)
from sb3_course.experiments.store import RunStore
from sb3_course.parity.pairs import DEFAULT_PAIRS, MODES, Pair, matched_hyperparams, parse_pair
from sb3_course.parity.report import Result, evaluate, write_report
from sb3_course.registry import SCORE_RANGES
from sb3_course.zoo.checks import OneLineParser, check_job, check_keys, check_output_folder, positive_int
from sb3_course.zoo.matched import course_recipe
from sb3_course.zoo.runs import cpus_of
from sb3_course.zoo.values import RecipeError


def pair_argument(text: str) -> Pair:
    """``--pairs`` items: :func:`parse_pair`, its message kept by argparse."""
    try:
        return parse_pair(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="sb3-course parity", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pairs",
        nargs="+",
        type=pair_argument,
        default=list(DEFAULT_PAIRS),
        help="course:sb3[@env[:n_timesteps[:eval_freq]]] (default: the five default pairs)",
    )
    parser.add_argument("--mode", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument(
        "--course-params",
        nargs="+",
        default=[],
        metavar="NAME:VALUE",
        help="replace settings of the course recipe (an ablation; the matched SB3 side follows them where it can). "
        "VALUE is a Python literal or a plain string; policy_kwargs is merged into the recipe's",
    )
    parser.add_argument("--seeds", type=positive_int, default=5, help="seeds per side (0 .. seeds - 1)")
    parser.add_argument("-n", "--n-timesteps", type=positive_int, help="budget of every pair (default: the pair's)")
    parser.add_argument("--eval-freq", type=positive_int, help="evaluation frequency of every pair (default: the pair's)")
    parser.add_argument("--eval-episodes", type=positive_int, default=5)
    parser.add_argument("--last-evals", type=positive_int, default=3, help="evaluations averaged into the final score")
    parser.add_argument("--tolerance", type=float, default=0.1, help="parity band on the normalised IQM difference")
    parser.add_argument("--out", default="parity", help="folder of the report and plots")
    parser.add_argument("--runs", default=None, help="folder of the runs (default: <out>/runs)")
    parser.add_argument("--backend", choices=("process", "ray"), default="process")
    parser.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, help="CPU slots (default: all cores)")
    parser.add_argument("--ray-address", default=None, help="Ray cluster address (default: a local Ray instance)")
    parser.add_argument("--report-only", action="store_true", help="only redraw the report from finished runs")
    args = parser.parse_args(argv)
    if not args.tolerance > 0:
        parser.error(f"--tolerance {args.tolerance}: expected a positive width of the parity band")
    args.runs = args.runs or os.path.join(args.out, "runs")
    overrides = {}
    for item in args.course_params:
        name, colon, text = item.partition(":")
        if not colon or not name:
            parser.error(f"--course-params {item!r}: expected NAME:VALUE, e.g. critic_loss:mse")
        try:
            overrides[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[name] = text
    course_params = json.dumps(overrides, sort_keys=True) if overrides else ""
    n_timesteps, eval_freq = args.n_timesteps, args.eval_freq
    args.pairs = [
        Pair(
            p.course, p.sb3, p.env_id, p.n_timesteps if n_timesteps is None else n_timesteps,
            p.eval_freq if eval_freq is None else eval_freq, course_params,
        )
        for p in args.pairs
    ]  # fmt: skip
    try:
        check_plan(args)
    except (RecipeError, ValueError) as error:
        parser.error(str(error))
    return args


def check_plan(args: argparse.Namespace) -> None:
    """
    Everything a sweep needs, before it starts a run: folders it can write, and for each pair a score range, a
    budget with at least one evaluation, and both sides' runs passing ``sb3-course train``'s checks.
    """
    check_output_folder(args.out, "--out")
    check_output_folder(args.runs, "--runs")
    for pair in args.pairs:
        if pair.env_id not in SCORE_RANGES:
            raise ValueError(f"no score range for {pair.env_id} (known: {', '.join(SCORE_RANGES)})")
        if not 1 <= pair.eval_freq <= pair.n_timesteps:
            raise ValueError(
                f"{pair.name}: evaluation frequency {pair.eval_freq} must lie in [1, n_timesteps {pair.n_timesteps}]"
                " (no evaluation, no score)"
            )
        check_keys(pair.course, list(pair.overrides), "--course-params")
        for mode in args.mode:
            (course_job, *_), (sb3_job, *_) = jobs_of(pair, mode, 1, args.eval_episodes)
            course_where = f"hyperparams/{pair.course}.yml [{pair.env_id}] with --course-params"
            for job, where in ((course_job, course_where), (sb3_job, f"the {mode} {pair.sb3} side")):
                check_job(job.algo, pair.env_id, json.loads(job.hyperparams) if job.hyperparams else None, where)


def jobs_of(pair: Pair, mode: str, seeds: int, eval_episodes: int) -> tuple[list[Job], list[Job]]:
    """The course side's and the SB3 side's jobs of ``pair`` in ``mode``."""

    def job(algo: str, hyperparams: dict[str, Any], seed: int) -> Job:
        return Job(
            algo, pair.env_id, seed, pair.n_timesteps, pair.eval_freq, eval_episodes,
            json.dumps(hyperparams, sort_keys=True) if hyperparams else "", cpus_of(algo, pair.env_id, hyperparams),
        )  # fmt: skip

    sb3_hyperparams = matched_hyperparams(pair) if mode == "matched" else {}
    # The course side trains its recipe block, written into the job, so that a recipe changed since a run was stored
    # makes a new job key (and a new run) instead of reusing the old recipe's run
    course_hyperparams = course_recipe(pair.course, pair.env_id, pair.overrides)
    course_hyperparams.pop("n_timesteps", None)
    seed_range = range(seeds)
    return (
        [job(pair.course, course_hyperparams, seed) for seed in seed_range],
        [job(pair.sb3, sb3_hyperparams, seed) for seed in seed_range],
    )


def planned_jobs(args: argparse.Namespace) -> list[Job]:
    """Every job of the sweep, once (the course side of matched and recipe modes may be the same job)."""
    planned: dict[str, Job] = {}
    for pair in args.pairs:
        for mode in args.mode:
            for job in itertools.chain(*jobs_of(pair, mode, args.seeds, args.eval_episodes)):
                planned[job.key] = job
    return list(planned.values())


def run_sweep(args: argparse.Namespace) -> list[str]:
    """Run every unfinished job, saving each as it finishes; return the failures' messages."""
    store = RunStore(args.runs)
    planned = planned_jobs(args)
    if args.backend == "ray":
        return run_unfinished(planned, store, partial(run_ray, address=args.ray_address, n_cpus=args.jobs))
    return run_unfinished(planned, store, partial(run_local, n_cpus=args.jobs))


def results_of(args: argparse.Namespace) -> list[Result]:
    store = RunStore(args.runs)
    results = []
    for pair in args.pairs:
        for mode in args.mode:
            course_jobs, sb3_jobs = jobs_of(pair, mode, args.seeds, args.eval_episodes)
            # Both sides are judged on the seeds both have: a side that has more (runs shared with another sweep)
            # would make the sides unequal and silently drop the pairing of matched runs
            course_seeds = {job.seed for job in course_jobs if store.has(job)}
            sb3_seeds = {job.seed for job in sb3_jobs if store.has(job)}
            seeds = course_seeds & sb3_seeds
            course = [store.load(job) for job in course_jobs if job.seed in seeds]
            sb3 = [store.load(job) for job in sb3_jobs if job.seed in seeds]
            unmatched = sorted((course_seeds | sb3_seeds) - seeds)
            if unmatched:
                print(
                    f"{pair.name} ({mode}): judged on the {len(seeds)} seeds both sides have; the runs of seeds "
                    f"{unmatched} have no counterpart on the other side and are left out",
                    file=sys.stderr,
                )
            if course and sb3:
                results.append(evaluate(pair, mode, course, sb3, args.tolerance, args.last_evals))
    return results


def main(argv: list[str] | None = None) -> list[Result]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.report_only:
        exit_without_runs("sb3-course parity", RunStore(args.runs, create=False), planned_jobs(args), "--out / --runs")
    os.makedirs(args.out, exist_ok=True)
    failures = [] if args.report_only else run_interruptibly(partial(run_sweep, args), args.runs)
    results = exit_on_damaged_run("sb3-course parity", lambda: results_of(args))
    if results:
        path = write_report(results, args.out, "sb3-course parity " + shlex.join(argv), args.tolerance, args.last_evals)
        for result in results:
            print(f"{result.pair.name} ({result.mode}): {result.verdict}")
        print(f"Report: {path}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    if failures:
        sys.exit(1)
    return results


if __name__ == "__main__":
    main()

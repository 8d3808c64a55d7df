"""
Learning checks: train a course algorithm from its YAML recipe with ``sb3-course train`` over several
seeds and report the return of the final model (the ``<env>.zip`` saved at the end of training, loaded again and
evaluated over deterministic episodes), with the evaluations that rl-zoo3's ``EvalCallback`` recorded on the way.

Used by the slow learning tests and, from the command line, to produce the figures in ``docs/results.md``. A course
algorithm's learning check (its env, seeds, evaluation, how many must solve: ``sb3_course.registry``; its budget: the
recipe's ``n_timesteps``), or any other run::

    python -m sb3_course.benchmarks.learning --spec course_dqn
    python -m sb3_course.benchmarks.learning --algo course_dqn --env CartPole-v1 -n 100000 \\
        --eval-freq 5000 --threshold 475 --seeds 0 1 2 3 4 --jobs 2
"""

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from sb3_course.experiments.jobs import Job, train
from sb3_course.registry import SOLVED_RETURNS, algorithm_of
from sb3_course.zoo.runs import cpus_of, final_model_returns, recipe_budget


@dataclass
class LearningRun:
    """
    Result of one seed: evaluation steps and mean return of each evaluation during training, the return of each
    episode of the final model's evaluation, and the wall time of training.
    """

    seed: int
    timesteps: np.ndarray
    mean_returns: np.ndarray
    final_returns: np.ndarray
    wall_time: float

    @property
    def final_return(self) -> float:
        """The final model's mean return."""
        return float(self.final_returns.mean())

    def solved(self, threshold: float) -> bool:
        """Whether the final model's mean return is at least ``threshold``."""
        return self.final_return >= threshold

    def first_step_reaching(self, threshold: float) -> int | None:
        """The first evaluation step whose mean return is at least ``threshold`` (``None`` if never)."""
        reached = np.flatnonzero(self.mean_returns >= threshold)
        return int(self.timesteps[reached[0]]) if reached.size else None


def train_seed(
    algo: str,
    env_id: str,
    seed: int,
    n_timesteps: int,
    eval_freq: int,
    eval_episodes: int = 10,
    log_root: str | None = None,
    extra_args: list[str] | None = None,
    final_episodes: int | None = None,
) -> LearningRun:
    """
    Train one seed with the experiment runner's trainer (``sb3-course train`` in a subprocess, one torch thread),
    keeping its log folder under ``log_root`` (the system's temporary folder by default), and evaluate its final model
    over ``final_episodes`` deterministic episodes (``eval_episodes`` when ``None``).
    """
    if log_root is not None:
        os.makedirs(log_root, exist_ok=True)
    log_folder = tempfile.mkdtemp(prefix=f"{algo}-{env_id}-{seed}-", dir=log_root)
    job = Job(algo, env_id, seed, n_timesteps, eval_freq, eval_episodes, extra_args=tuple(extra_args or ()))
    run_folder, evaluations = train(job, log_folder)
    finals = final_model_returns(algo, env_id, run_folder, final_episodes or eval_episodes, seed)
    mean_returns = np.asarray(evaluations["returns"]).mean(axis=1)
    return LearningRun(seed, np.asarray(evaluations["timesteps"]), mean_returns, finals, evaluations["wall_time"])


def train_seeds(
    algo: str, env_id: str, seeds: list[int], n_timesteps: int, eval_freq: int, jobs: int = 2, **kwargs
) -> list[LearningRun]:
    """``train_seed`` for every seed, ``jobs`` subprocesses at a time."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda seed: train_seed(algo, env_id, seed, n_timesteps, eval_freq, **kwargs), seeds))


def markdown_table(runs: list[LearningRun], threshold: float) -> str:
    """
    One row per seed: the final model's mean return, the standard deviation and the worst of its episodes, first
    evaluation step at the threshold, best evaluation, wall time.
    """
    lines = [
        "| seed | final model return | std over episodes | worst episode | solved | first step >= threshold | best eval "
        "| wall time (s) |",
        "|---:|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    for run in runs:
        first = run.first_step_reaching(threshold)
        lines.append(
            f"| {run.seed} | {run.final_return:.1f} | {run.final_returns.std():.1f} | {run.final_returns.min():.1f} | "
            f"{'yes' if run.solved(threshold) else 'no'} | "
            f"{first if first is not None else 'never'} | {run.mean_returns.max():.1f} | {run.wall_time:.0f} |"
        )
    solved = sum(run.solved(threshold) for run in runs)
    lines.append(f"\n{solved} of {len(runs)} final models reach {threshold}.")
    return "\n".join(lines)


def learning_check(algo: str, cpus: int = 2, **kwargs) -> tuple[str, bool]:
    """
    Run the learning check of a course algorithm (``sb3_course.registry``: env, seeds, evaluation frequency, final
    episodes, how many must solve; the recipe's budget) on ``cpus`` CPU slots; return the table and whether it passed.
    """
    algorithm = algorithm_of(algo)
    check, env_id = algorithm.learning_check, algorithm.check_env
    threshold = SOLVED_RETURNS[env_id]
    # A3C runs one process per worker
    jobs = max(1, cpus // cpus_of(algo, env_id, {}))
    runs = train_seeds(
        algo, env_id, check.seeds, recipe_budget(algo, env_id), check.eval_freq, jobs,
        final_episodes=check.final_episodes, **kwargs,
    )  # fmt: skip
    solved = sum(run.solved(threshold) for run in runs)
    table = f"{markdown_table(runs, threshold)}\nThe check needs {check.min_solved} of {len(runs)}."
    return table, solved >= check.min_solved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", metavar="KEY", help="run the learning check of a course algorithm (alone)")
    parser.add_argument("--algo")
    parser.add_argument("--env")
    parser.add_argument("-n", "--n-timesteps", type=int)
    parser.add_argument("--eval-freq", type=int)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--final-episodes", type=int, default=None, help="episodes of the final model's evaluation")
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--log-root", default=None, help="keep each seed's rl-zoo3 log folder under this folder")
    parser.add_argument("--jobs", type=int, default=2, help="parallel jobs (with --spec: CPU slots)")
    args, extra = parser.parse_known_args()
    start = time.perf_counter()
    if args.spec:
        try:
            algorithm_of(args.spec)
        except ValueError as error:
            parser.error(str(error))
        table, passed = learning_check(args.spec, args.jobs, log_root=args.log_root, extra_args=extra)
        print(f"{table}\n{'PASSED' if passed else 'FAILED'}")
    else:
        missing = [flag for flag in ("algo", "env", "n_timesteps", "eval_freq", "threshold") if getattr(args, flag) is None]
        if missing:
            parser.error(f"without --spec, give --{', --'.join(name.replace('_', '-') for name in missing)}")
        runs = train_seeds(
            args.algo, args.env, args.seeds, args.n_timesteps, args.eval_freq, args.jobs,
            eval_episodes=args.eval_episodes, log_root=args.log_root, extra_args=extra,
            final_episodes=args.final_episodes,
        )  # fmt: skip
        print(markdown_table(runs, args.threshold))
    print(f"Total wall time: {time.perf_counter() - start:.0f} s with {args.jobs} parallel jobs.")


if __name__ == "__main__":
    main()

"""
Learning checks: train a course algorithm from its YAML recipe with ``sb3-course train`` over several
seeds and report the deterministic evaluation returns that rl-zoo3's ``EvalCallback`` recorded.

Used by the slow learning tests and, from the command line, to produce the figures in ``docs/results.md``::

    python -m sb3_course.benchmarks.learning --algo course_dqn --env CartPole-v1 -n 100000 \\
        --eval-freq 5000 --threshold 475 --seeds 0 1 2 3 4 --jobs 2
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass
class LearningRun:
    """Result of one seed: evaluation steps, mean return of each evaluation, and wall time."""

    seed: int
    timesteps: np.ndarray
    mean_returns: np.ndarray
    wall_time: float

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
    log_folder: str | None = None,
    extra_args: list[str] | None = None,
) -> LearningRun:
    """Run ``sb3-course train`` for one seed in a subprocess (one torch thread) and read its ``evaluations.npz``."""
    log_folder = log_folder or tempfile.mkdtemp(prefix=f"{algo}-{env_id}-{seed}-")
    command = [
        sys.executable, "-m", "sb3_course.train",
        "--algo", algo, "--env", env_id, "--seed", str(seed), "-n", str(n_timesteps),
        "--eval-freq", str(eval_freq), "--eval-episodes", str(eval_episodes),
        "--num-threads", "1", "-f", log_folder, "--verbose", "0", *(extra_args or []),
    ]  # fmt: skip
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall_time = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    (path,) = glob.glob(os.path.join(log_folder, algo, f"{env_id}_*", "evaluations.npz"))
    with np.load(path) as data:
        return LearningRun(seed, data["timesteps"], data["results"].mean(axis=1), wall_time)


def train_seeds(
    algo: str, env_id: str, seeds: list[int], n_timesteps: int, eval_freq: int, jobs: int = 2, **kwargs
) -> list[LearningRun]:
    """``train_seed`` for every seed, ``jobs`` subprocesses at a time."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda seed: train_seed(algo, env_id, seed, n_timesteps, eval_freq, **kwargs), seeds))


def markdown_table(runs: list[LearningRun], threshold: float) -> str:
    """One row per seed: first step reaching the threshold, best and final evaluation, wall time."""
    lines = [
        "| seed | first step >= threshold | best eval | final eval | wall time (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        first = run.first_step_reaching(threshold)
        lines.append(
            f"| {run.seed} | {first if first is not None else 'never'} | {run.mean_returns.max():.1f} | "
            f"{run.mean_returns[-1]:.1f} | {run.wall_time:.0f} |"
        )
    solved = sum(run.first_step_reaching(threshold) is not None for run in runs)
    lines.append(f"\n{solved} of {len(runs)} seeds reached {threshold}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("-n", "--n-timesteps", type=int, required=True)
    parser.add_argument("--eval-freq", type=int, required=True)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2)
    args, extra = parser.parse_known_args()
    start = time.perf_counter()
    runs = train_seeds(
        args.algo, args.env, args.seeds, args.n_timesteps, args.eval_freq, args.jobs,
        eval_episodes=args.eval_episodes, extra_args=extra,
    )  # fmt: skip
    print(markdown_table(runs, args.threshold))
    print(f"Total wall time: {time.perf_counter() - start:.0f} s with {args.jobs} parallel jobs.")


if __name__ == "__main__":
    main()

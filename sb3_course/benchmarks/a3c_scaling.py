"""
A3C throughput with 1 and 2 workers, measured in one run: environment steps per second (all workers) of the
same recipe, alternating 1 and 2 workers for a few repetitions, and the ratio of the means.

Worker start-up is left out: the clock starts once ``--warmup`` steps are counted. Needs an otherwise idle
machine with at least 2 cores; the load average before and after is printed with the figures::

    python -m sb3_course.benchmarks.a3c_scaling --env CartPole-v1 --steps 30000 --repetitions 3
"""

import argparse
import os
from typing import Any

import numpy as np
import torch as th

from sb3_course.a3c import A3C
from sb3_course.benchmarks.machine import StepClock
from sb3_course.zoo import load_recipes


def recipe(env_id: str) -> dict[str, Any]:
    """The A3C YAML recipe of ``env_id`` as keyword arguments of ``A3C`` (without the worker count)."""
    hyperparams = dict(load_recipes("a3c").get(env_id) or {})
    for key in ("n_timesteps", "policy", "n_workers", "n_envs", "normalize"):
        hyperparams.pop(key, None)
    if isinstance(hyperparams.get("policy_kwargs"), str):
        hyperparams["policy_kwargs"] = eval(hyperparams["policy_kwargs"])
    return hyperparams


def measure(env_id: str, n_workers: int, steps: int, warmup: int, seed: int) -> tuple[float, float]:
    """Steps per second of one A3C run with ``n_workers`` workers (after the warm-up steps) and the idle CPU %."""
    model = A3C("MlpPolicy", env_id, n_workers=n_workers, seed=seed, **recipe(env_id))
    clock = StepClock(warmup)
    model.learn(steps, callback=clock)
    return clock.measure()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=30_000, help="environment steps of each run (all workers)")
    parser.add_argument("--warmup", type=int, default=2_000, help="steps before the clock starts")
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    th.set_num_threads(1)
    print(f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()}")
    # Start the fork server (imports) before measuring anything.
    measure(args.env, 1, args.warmup + 100, args.warmup, seed=0)
    results: dict[int, list[float]] = {1: [], 2: []}
    # On an idle 2-core machine about 50 % of the CPU stays idle with 1 worker and little with 2.
    print("| repetition | workers | steps/s | machine CPU idle (%) |\n|---:|---:|---:|---:|")
    for repetition in range(args.repetitions):
        for n_workers in (1, 2):
            steps_per_second, idle = measure(args.env, n_workers, args.steps, args.warmup, seed=repetition)
            results[n_workers].append(steps_per_second)
            print(f"| {repetition} | {n_workers} | {steps_per_second:.0f} | {idle:.0f} |", flush=True)
    one, two = np.mean(results[1]), np.mean(results[2])
    print(f"\nmean steps/s: 1 worker {one:.0f}, 2 workers {two:.0f}; ratio 2/1 = {two / one:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

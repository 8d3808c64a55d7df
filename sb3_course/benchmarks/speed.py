"""
Steps per second of each course algorithm against its SB3 counterpart at a matched configuration
(``sb3-course bench``; ``python -m sb3_course.benchmarks.speed`` is the same)::

    sb3-course bench --algos course_dqn course_ddpg course_sac reinforce --net-sizes both --repetitions 5 --json bench.json

Every run is a fresh Python process with one torch thread, so its peak RSS is its own and no run warms the
caches of the next; the two sides alternate (course, SB3, course, SB3, ...). The clock starts at step
``--learning-starts``, when an off-policy algorithm takes its first gradient step (the random warm-up steps,
process start-up and model construction are not timed; the on-policy pair skips the same number of steps), and
runs for ``--steps`` more steps. Off-policy runs take one gradient step per environment step. The ratio is taken
per repetition (course run i / SB3 run i). The matched settings of each pair are in
:mod:`sb3_course.zoo.matched` and ``docs/benchmarks.md``. ``--device cuda`` puts both sides' networks on
the GPU (``docs/gpu.md``); the output names the device. ``--peers sbx`` adds SBX's class with the SB3 side's
settings as a third side (``pip install "sb3-course[bench]"``); the clock then starts ``--warm-steps`` gradient
steps after ``--learning-starts`` on every side, so that JAX's compilation is not timed. Each run reports steps
per second of wall time and per CPU-second of its process (all threads), which other load skews less.
"""

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList, EvalCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise

from sb3_course.benchmarks.machine import StepClock, machine_idle_percent
from sb3_course.benchmarks.peers import PEER_ENVIRONMENT, PEER_LABELS, PEERS, peer_class, require_peers
from sb3_course.common.files import write_text_atomically
from sb3_course.ddpg.ddpg import COURSE_OU_DT, COURSE_OU_SIGMA, COURSE_OU_THETA
from sb3_course.registry import ALGORITHMS, score_range
from sb3_course.zoo.matched import (
    MATCHUPS,
    NET_SIZES,
    OFF_POLICY_STEPS,
    ON_POLICY_STEPS,
    Matchup,
    matchups,
)

# Below this share of idle CPU time before the runs the machine counts as busy
BUSY_IDLE_PERCENT = 90.0
# rl-zoo3 key -> class, course and SB3
CLASSES: dict[str, type[BaseAlgorithm]] = {
    **{algorithm.key: algorithm.course_class for algorithm in ALGORITHMS.values()},
    **{algorithm.sb3_key: algorithm.sb3_class for algorithm in ALGORITHMS.values()},
}


def make_model(algo: str, env_id: str, kwargs: dict[str, Any], seed: int, device: str = "cpu") -> BaseAlgorithm:
    """
    One side of a matchup; ``action_noise="course_ou"`` is the course DDPG's Ornstein-Uhlenbeck noise. ``kwargs`` is
    copied: SB3's and SBX's classes add keys to the ``policy_kwargs`` they get.
    """
    kwargs = copy.deepcopy(kwargs)
    noise = kwargs.pop("action_noise", None)
    algorithm_class = peer_class(algo) if algo.startswith("sbx_") else CLASSES[algo]
    model = algorithm_class("MlpPolicy", env_id, seed=seed, device=device, **kwargs)
    if noise == "course_ou":
        dim = model.action_space.shape[0]  # type: ignore[index]
        model.action_noise = OrnsteinUhlenbeckActionNoise(  # type: ignore[attr-defined]
            np.zeros(dim), COURSE_OU_SIGMA * np.ones(dim), theta=COURSE_OU_THETA, dt=COURSE_OU_DT
        )
    return model


class ThresholdTimer(EvalCallback):
    """
    ``EvalCallback`` (deterministic actions) that records the training wall time until the mean evaluation return
    first reaches ``threshold``; the evaluations themselves are left out of that time and of the step clock's.

    :param env_id: the environment to evaluate on
    :param threshold: the return to reach
    :param eval_freq: evaluate every ``eval_freq`` steps
    :param n_eval_episodes: episodes per evaluation
    :param clock: the run's step clock, paused during evaluations
    """

    def __init__(self, env_id: str, threshold: float, eval_freq: int, n_eval_episodes: int, clock: StepClock) -> None:
        super().__init__(Monitor(gym.make(env_id)), eval_freq=eval_freq, n_eval_episodes=n_eval_episodes, verbose=0)
        self.threshold = threshold
        self.clock = clock
        self.started = 0.0
        self.evaluating = 0.0
        self.reached_after: float | None = None

    def _on_training_start(self) -> None:
        super()._on_training_start()
        self.started = time.perf_counter()

    def _on_step(self) -> bool:
        begin, begin_cpu = time.perf_counter(), time.process_time()
        continue_training = super()._on_step()
        spent = time.perf_counter() - begin
        self.evaluating += spent
        self.clock.pause(spent, time.process_time() - begin_cpu)
        if self.reached_after is None and self.n_calls % self.eval_freq == 0 and self.last_mean_reward >= self.threshold:
            self.reached_after = begin - self.started - (self.evaluating - spent)
        return continue_training


def measure_run(spec: dict[str, Any]) -> dict[str, Any]:
    """
    One run: train ``spec["warmup"] + spec["steps"]`` steps and time those after the warm-up; with a threshold,
    also the training wall time (evaluations left out) until the evaluation return first reaches it.
    """
    th.set_num_threads(1)
    model = make_model(spec["algo"], spec["env_id"], spec["kwargs"], spec["seed"], spec.get("device", "cpu"))
    clock = StepClock(spec["warmup"])
    timer = None
    if spec.get("threshold") is not None:
        timer = ThresholdTimer(spec["env_id"], spec["threshold"], spec["eval_freq"], spec["eval_episodes"], clock)
    model.learn(spec["warmup"] + spec["steps"], callback=CallbackList([clock] if timer is None else [clock, timer]))
    steps_per_second, idle = clock.measure()
    return {
        "steps_per_second": steps_per_second,
        "cpu_steps_per_second": clock.cpu_steps_per_second(),
        "machine_idle_percent": idle,
        # ru_maxrss is in KiB on Linux
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "time_to_threshold_s": None if timer is None else timer.reached_after,
    }


def run_in_subprocess(spec: dict[str, Any]) -> dict[str, Any]:
    """
    :func:`measure_run` in a fresh interpreter (one BLAS / OpenMP / XLA thread too); its last stdout line is the
    result.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **PEER_ENVIRONMENT}
    command = [sys.executable, "-m", "sb3_course.benchmarks.speed", "--run", json.dumps(spec)]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark run {spec['algo']} failed:\n{completed.stdout[-2000:]}\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def spec_of(matchup: Matchup, side: str, repetition: int, args: argparse.Namespace) -> dict[str, Any]:
    algo, kwargs = getattr(matchup, side)
    return {
        "algo": algo, "env_id": matchup.env_id, "kwargs": kwargs, "seed": repetition, "device": args.device,
        "warmup": args.learning_starts + args.warm_steps, "steps": args.steps or matchup.steps,
        "threshold": score_range(matchup.env_id).reference if args.threshold_time else None,
        "eval_freq": args.eval_freq, "eval_episodes": args.eval_episodes,
    }  # fmt: skip


def ratios(runs: dict[str, list[dict[str, Any]]], peer: str, key: str = "steps_per_second") -> list[float]:
    """Course run i / ``peer`` run i of ``key`` for each repetition."""
    return [course[key] / other[key] for course, other in zip(runs["course"], runs[peer], strict=True)]


def run_matchups(chosen: list[Matchup], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every matchup, ``args.repetitions`` times, alternating the course, the SB3 and the peers' sides."""
    results = []
    for matchup in chosen:
        sides = ["course", "sb3", *(peer for peer in args.peers if getattr(matchup, peer) is not None)]
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for repetition in range(args.repetitions):
            for side in sides:
                run = run_in_subprocess(spec_of(matchup, side, repetition, args))
                runs[side].append(run)
                print(
                    f"{matchup.pair} ({matchup.sizes}) repetition {repetition} {side}: {run['steps_per_second']:.0f} steps/s, "
                    f"{run['cpu_steps_per_second']:.0f} steps per CPU-second, {run['peak_rss_mb']:.0f} MB, "
                    f"machine {run['machine_idle_percent']:.0f}% idle",
                    flush=True,
                )
        result = {**asdict(matchup), **{f"{side}_runs": runs[side] for side in sides}, "ratios": ratios(runs, "sb3")}
        result["cpu_ratios"] = ratios(runs, "sb3", "cpu_steps_per_second")
        for peer in sides[2:]:
            result[f"{peer}_ratios"] = ratios(runs, peer)
            result[f"{peer}_cpu_ratios"] = ratios(runs, peer, "cpu_steps_per_second")
        results.append(result)
    return results


def spread(values: list[float], digits: int = 0, separator: str = "-") -> str:
    """``median (min-max)``."""
    return f"{np.median(values):.{digits}f} ({min(values):.{digits}f}{separator}{max(values):.{digits}f})"


def threshold_cell(runs: list[dict[str, Any]]) -> str:
    reached = [run["time_to_threshold_s"] for run in runs if run["time_to_threshold_s"] is not None]
    return f"{np.median(reached):.0f} ({len(reached)}/{len(runs)})" if reached else f"- (0/{len(runs)})"


def markdown_table(results: list[dict[str, Any]], threshold_time: bool, peers: tuple[str, ...] = ()) -> str:
    """
    One row per matchup: steps/s of each side, the course's per-repetition ratio to each other side in steps/s and
    in steps per CPU-second, and the peak RSS (medians); ``-`` where a peer has no counterpart.
    """
    sides = ("course", "sb3", *peers)
    labels = {"course": "course", "sb3": "SB3", **PEER_LABELS}
    columns = ["algorithm", "env", "net sizes", *(f"{labels[side]} steps/s median (min-max)" for side in sides)]
    columns += [f"course / {labels[side]} median (min..max)" for side in sides[1:]]
    columns += [f"course / {labels[side]} per CPU-second" for side in sides[1:]]
    columns.append(f"peak RSS MB {' / '.join(labels[side] for side in sides)}")
    if threshold_time:
        columns.append("time to threshold s course / SB3 (runs reaching it)")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * 3 + "---:|" * (len(columns) - 3)]
    for result in results:
        runs: dict[str, list[dict[str, Any]]] = {side: result.get(f"{side}_runs") or [] for side in sides}
        prefixes = {"sb3": "", **{peer: f"{peer}_" for peer in peers}}
        cells = [f"{result['pair']} / {result['sb3'][0]}", result["env_id"], result["sizes"]]
        cells += [spread([run["steps_per_second"] for run in runs[side]]) if runs[side] else "-" for side in sides]
        for kind in ("ratios", "cpu_ratios"):
            cells += [spread(result[prefixes[side] + kind], 2, "..") if runs[side] else "-" for side in sides[1:]]
        rss = [f"{np.median([run['peak_rss_mb'] for run in runs[side]]):.0f}" if runs[side] else "-" for side in sides]
        cells.append(" / ".join(rss))
        if threshold_time:
            cells.append(f"{threshold_cell(runs['course'])} / {threshold_cell(runs['sb3'])}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    import platform

    model = (
        next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), None)
        if os.path.exists("/proc/cpuinfo")
        else None
    )
    return model or platform.processor() or "unknown CPU"


def checked_device(name: str) -> th.device:
    """
    The torch device ``--device`` names: ``cpu``, ``cuda`` or ``cuda:<index>``, where CUDA is available (SB3 would
    quietly fall back to the CPU). Anything else exits with status 2 and one line.
    """
    try:
        device = th.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        problem = f"--device {name!r}: expected cpu, cuda or cuda:<index>"
    elif device.type == "cuda" and not th.cuda.is_available():
        problem = f"--device {name}: CUDA is not available here (torch.cuda.is_available() is False); use --device cpu"
    elif device.index is not None and device.type == "cuda" and device.index >= th.cuda.device_count():
        problem = f"--device {name}: this machine has {th.cuda.device_count()} CUDA device(s), indices from 0"
    else:
        return device
    print(f"{os.path.basename(sys.argv[0])}: error: {problem}", file=sys.stderr)
    sys.exit(2)


def device_name(device: th.device) -> str:
    """The name of the device: the GPU's (``torch.cuda.get_device_name``) or the CPU's model name."""
    return th.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def machine_description(device: th.device) -> dict[str, Any]:
    import platform

    import stable_baselines3

    return {"device": str(device), "device_name": device_name(device), "cpu": cpu_name(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "torch": th.__version__, "cuda": th.version.cuda,
            "stable_baselines3": stable_baselines3.__version__}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]), description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--algos", nargs="+", choices=list(MATCHUPS), default=list(MATCHUPS), help="course algorithms to measure"
    )
    parser.add_argument(
        "--net-sizes",
        choices=list(NET_SIZES),
        default="both",
        help="off-policy network sizes: the course's, SB3's defaults or both",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"timed steps per run (default {OFF_POLICY_STEPS} off-policy, {ON_POLICY_STEPS} REINFORCE / A2C)",
    )
    parser.add_argument("--repetitions", type=int, default=5, help="runs per side")
    parser.add_argument("--learning-starts", type=int, default=1_000, help="untimed steps first (the off-policy warm-up)")
    parser.add_argument(
        "--threshold-time",
        action="store_true",
        help="also the training time until the evaluation return reaches the env's reference return (sb3_course.registry)",
    )
    parser.add_argument("--eval-freq", type=int, default=1_000, help="with --threshold-time: evaluate every this many steps")
    parser.add_argument("--eval-episodes", type=int, default=5, help="with --threshold-time: episodes per evaluation")
    parser.add_argument(
        "--device", default="cpu", help="torch device of both sides' networks: cpu, cuda or cuda:<index> (default cpu)"
    )
    parser.add_argument(
        "--peers",
        nargs="+",
        choices=PEERS,
        default=[],
        help='other libraries to measure beside SB3 (pip install "sb3-course[bench]")',
    )
    parser.add_argument(
        "--warm-steps",
        type=int,
        default=100,
        help="untimed steps after --learning-starts on every side (JAX compiles SBX's update at the first gradient step)",
    )
    parser.add_argument("--json", default=None, help="also write every run's figures to this file")
    parser.add_argument("--run", default=None, help=argparse.SUPPRESS)  # one run (JSON spec), in a child process
    args = parser.parse_args(argv)
    if args.run is not None:
        print(json.dumps(measure_run(json.loads(args.run))))
        return

    require_peers(args.peers, parser.prog)
    device = checked_device(args.device)
    args.device = str(device)
    machine = machine_description(device)
    idle = machine_idle_percent(1.0)
    print(f"command: {' '.join([os.path.basename(sys.argv[0]), *(sys.argv[1:] if argv is None else argv)])}")
    print(f"device: {device} ({machine['device_name']})")
    print(f"machine: {machine}; {idle:.0f}% idle over 1 s before the runs")
    if idle < BUSY_IDLE_PERCENT:
        print(f"warning: the machine is busy ({idle:.0f}% idle): steps/s will be low and noisy", file=sys.stderr)
    results = run_matchups(matchups(args.algos, args.net_sizes, args.learning_starts), args)
    print()
    print(markdown_table(results, args.threshold_time, tuple(args.peers)))
    # One run keeps one core busy: on an otherwise idle machine, 1 / cpu_count of its CPU time
    lowest = min(run["machine_idle_percent"] for result in results for run in result["course_runs"] + result["sb3_runs"])
    expected = 100 * (1 - 1 / (os.cpu_count() or 1))
    if lowest < expected - 10:
        print(
            f"warning: during some run only {lowest:.0f}% of the machine was idle ({expected:.0f}% expected): other load",
            file=sys.stderr,
        )
    if args.json:
        report = {"command": sys.argv, "machine": machine, "idle_before_percent": idle, "results": results}
        write_text_atomically(args.json, json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""
The GPU check: one command that a machine with a CUDA GPU runs in under 10 minutes (``docs/gpu.md``)::

    python -m sb3_course.benchmarks.gpu_check --out gpu_check

from a checkout of the repository (the first step runs its ``tests/``). The steps, each in a process group of its
own with its own time limit (a hang is killed there and the next step runs):

1. ``tests``: ``pytest -m cuda``, the tests that need a GPU;
2. ``bench``: ``sb3-course bench --device cuda`` with short repetitions (course against SB3, steps/s);
3. ``train``: ``sb3-course train --algo course_sac --env Pendulum-v1 --device cuda``, the recipe's 20 000 steps;
4. ``evaluate``: the final model of that run (``Pendulum-v1.zip``) on 10 deterministic episodes.

Each step's output goes to ``<out>/<step>.log`` (the bench also writes ``bench.json``, the tests ``tests.xml``),
the summary to ``summary.md`` and ``summary.json``. The exit status is 0 when every step passed, 1 otherwise, 2
when the device cannot run. ``--device cpu --quick`` runs the same steps on the CPU with tiny budgets, which proves
the script end to end without a GPU.
"""

import argparse
import contextlib
import datetime
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_course.benchmarks.speed import checked_device, machine_description
from sb3_course.registry import ALGORITHMS

ENV_ID = "Pendulum-v1"
# Where the tests are: the repository checkout this package is imported from
REPOSITORY = Path(__file__).resolve().parents[2]
# What the steps and the summary write besides the logs
RESULT_FILES = ("tests.xml", "bench.json", "evaluate.json", "summary.json", "summary.md")
# Seconds left to a step after SIGTERM before SIGKILL
GRACE_S = 10.0


@dataclass(frozen=True)
class Budget:
    """How much each step does, and how long it may take (the limits add up to under 10 minutes)."""

    bench_args: tuple[str, ...]
    train_steps: int
    train_args: tuple[str, ...]
    episodes: int
    limits_s: dict[str, float]


LIMITS_S = {"tests": 130.0, "bench": 200.0, "train": 200.0, "evaluate": 45.0}
# The bench measures the off-policy algorithms on the GPU: their gradient steps are what it speeds up
OFF_POLICY_KEYS = tuple(key for key, algorithm in ALGORITHMS.items() if issubclass(algorithm.course_class, OffPolicyAlgorithm))
FULL = Budget(
    bench_args=("--algos", *OFF_POLICY_KEYS, "--net-sizes", "sb3",
                "--repetitions", "2", "--steps", "1000", "--learning-starts", "500"),
    train_steps=20_000, train_args=(), episodes=10, limits_s=LIMITS_S,
)  # fmt: skip
QUICK = Budget(
    bench_args=("--algos", "course_sac", "--repetitions", "1", "--steps", "100", "--learning-starts", "100"),
    train_steps=300, train_args=("-params", "learning_starts:100"), episodes=2, limits_s=LIMITS_S,
)  # fmt: skip


def run_step(name: str, command: list[str], limit_s: float, out: Path) -> dict[str, Any]:
    """
    Run ``command`` in a new process group with its output in ``<out>/<name>.log``; past ``limit_s`` the group is
    stopped (SIGTERM, then SIGKILL after ``GRACE_S``) and the step counts as timed out.

    :return: the step's name, command, return code (``None`` when timed out), whether it timed out, its wall
        time and its log file
    """
    log = out / f"{name}.log"
    start = time.perf_counter()
    with open(log, "w") as file:
        file.write(f"$ {shlex.join(command)}\n")
        file.flush()
        process = subprocess.Popen(command, stdout=file, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPOSITORY)
        try:
            returncode: int | None = process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            returncode = None
            stop_group(process)
    wall_s = time.perf_counter() - start
    return {"name": name, "command": command, "returncode": returncode, "timed_out": returncode is None,
            "wall_s": round(wall_s, 1), "limit_s": limit_s, "log": log.name}  # fmt: skip


def stop_group(process: subprocess.Popen) -> None:
    """
    Stop the process group of ``process`` (its own, from ``start_new_session``): SIGTERM, then after ``GRACE_S``
    SIGKILL to whatever of the group is left (a child that ignored SIGTERM, or one its parent left behind).
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def skipped_step(name: str, reason: str) -> dict[str, Any]:
    return {"name": name, "command": None, "returncode": None, "timed_out": False, "wall_s": 0.0, "skipped": reason}


def pytest_counts(junit_xml: Path) -> dict[str, int] | None:
    """Passed, failed, errors and skipped of a pytest JUnit XML report (``None`` when there is none)."""
    if not junit_xml.exists():
        return None
    suite = ElementTree.parse(junit_xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")  # type: ignore[assignment]
    tests, failed, errors, skipped = (int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped"))
    return {"tests": tests, "passed": tests - failed - errors - skipped, "failed": failed, "errors": errors,
            "skipped": skipped}  # fmt: skip


def saved_model(train_log: Path) -> Path | None:
    """The final model of an rl-zoo3 run: ``<save path>/<env id>.zip``, the save path from its "Saving to" line."""
    folders = re.findall(r"^Saving to (.+)$", train_log.read_text(), flags=re.MULTILINE) if train_log.exists() else []
    model = Path(folders[-1].strip()) / f"{ENV_ID}.zip" if folders else None
    return model if model is not None and model.exists() else None


def last_fps(train_log: Path) -> int | None:
    """The last ``time/fps`` SB3's logger printed during training."""
    values = re.findall(r"\|\s+fps\s+\|\s+(\d+)", train_log.read_text()) if train_log.exists() else []
    return int(values[-1]) if values else None


def evaluate(model_path: str, device: str, episodes: int) -> dict[str, Any]:
    """Mean return of the CourseSAC model at ``model_path`` over deterministic episodes of Pendulum-v1 (seeded)."""
    import gymnasium as gym
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    from sb3_course import CourseSAC

    model = CourseSAC.load(model_path, device=device)
    env = Monitor(gym.make(ENV_ID))
    env.reset(seed=0)  # evaluate_policy's resets continue from this seed
    returns, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True)
    assert isinstance(returns, list)
    return {"model": model_path, "device": str(model.device), "episodes": episodes, "returns": list(map(float, returns)),
            "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns))}  # fmt: skip


def step_commands(device: str, budget: Budget, out: Path) -> dict[str, list[str]]:
    """The command line of each step but the evaluation (whose model the training step writes)."""
    python = sys.executable
    return {
        "tests": [python, "-m", "pytest", "-m", "cuda", "-p", "no:cacheprovider", "-q", "-rs",
                  f"--junitxml={out / 'tests.xml'}", str(REPOSITORY / "tests")],
        "bench": [python, "-m", "sb3_course.benchmarks.speed", "--device", device, *budget.bench_args,
                  "--json", str(out / "bench.json")],
        "train": [python, "-m", "sb3_course.cli", "train", "--algo", "course_sac", "--env", ENV_ID,
                  "--device", device, "-n", str(budget.train_steps), "--seed", "0", "--eval-freq", "-1",
                  "-f", str(out / "train"), *budget.train_args],
    }  # fmt: skip


def run_steps(device: str, budget: Budget, out: Path) -> list[dict[str, Any]]:
    """Every step in turn (the evaluation only when the training step saved its final model)."""
    steps = []
    for name, command in step_commands(device, budget, out).items():
        if name == "tests" and not (REPOSITORY / "tests").is_dir():
            steps.append(skipped_step(name, f"no tests/ folder at {REPOSITORY}: run from a checkout of the repository"))
        else:
            print(f"{name}: running (limit {budget.limits_s[name]:.0f} s), output in {out / name}.log", flush=True)
            steps.append(run_step(name, command, budget.limits_s[name], out))
        print(f"{name}: {status(steps[-1])} in {steps[-1]['wall_s']:.0f} s", flush=True)
    model = saved_model(out / "train.log")
    if model is None:
        steps.append(skipped_step("evaluate", "the train step saved no final model"))
    else:
        command = [sys.executable, "-m", "sb3_course.benchmarks.gpu_check", "--evaluate", str(model),
                   "--device", device, "--episodes", str(budget.episodes), "--out", str(out)]  # fmt: skip
        steps.append(run_step("evaluate", command, budget.limits_s["evaluate"], out))
    print(f"evaluate: {status(steps[-1])} in {steps[-1]['wall_s']:.0f} s", flush=True)
    return steps


def status(step: dict[str, Any]) -> str:
    if step.get("skipped"):
        return f"skipped ({step['skipped']})"
    if step["timed_out"]:
        return f"timed out after {step['limit_s']:.0f} s"
    return "passed" if step["returncode"] == 0 else f"failed (exit status {step['returncode']})"


def summary(command: str, machine: dict[str, Any], steps: list[dict[str, Any]], budget: Budget, out: Path) -> dict[str, Any]:
    """What every step gave: test counts, the bench table, the training run's wall time and final return."""
    by_name = {step["name"]: step for step in steps}
    evaluation = out / "evaluate.json"
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine,
        "steps": steps,
        "tests": pytest_counts(out / "tests.xml"),
        "bench_table": [line for line in read(out / "bench.log").splitlines() if line.startswith("|")],
        "train": {
            "steps": budget.train_steps,
            "status": status(by_name["train"]),
            "wall_s": by_name["train"]["wall_s"],
            "last_fps": last_fps(out / "train.log"),
        },
        "evaluation": json.loads(evaluation.read_text()) if evaluation.exists() else None,
        "passed": all(step["returncode"] == 0 for step in steps),
    }


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def markdown(result: dict[str, Any]) -> str:
    machine = result["machine"]
    lines = [
        f"# GPU check, {result['date_utc']}",
        "",
        f"`{result['command']}` on {machine['device']} ({machine['device_name']}); CPU {machine['cpu']} "
        f"({machine['cpu_count']} cores); torch {machine['torch']}, CUDA {machine['cuda']}, "
        f"SB3 {machine['stable_baselines3']}, Python {machine['python']}",
        "",
        "| step | result | wall s | output |",
        "|---|---|---:|---|",
        *(f"| {s['name']} | {status(s)} | {s['wall_s']:.0f} | {s.get('log', '-')} |" for s in result["steps"]),
    ]
    counts = result["tests"]
    if counts is not None:
        lines += ["", "tests: " + ", ".join(f"{counts[key]} {key}" for key in ("passed", "failed", "errors", "skipped"))]
    if result["bench_table"]:
        lines += ["", "bench (steps/s):", "", *result["bench_table"]]
    train = result["train"]
    fps = "not reported" if train["last_fps"] is None else train["last_fps"]
    lines += [
        "",
        f"train: CourseSAC {ENV_ID}, {train['steps']} steps, {train['status']} in {train['wall_s']:.0f} s wall time "
        f"(start-up included; SB3's last time/fps: {fps})",
    ]
    evaluation = result["evaluation"]
    if evaluation is not None:
        lines.append(
            f"final return: {evaluation['mean_return']:.1f} +- {evaluation['std_return']:.1f} over "
            f"{evaluation['episodes']} deterministic episodes"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_course.benchmarks.gpu_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="folder for the steps' output and the summary (created)")
    parser.add_argument("--device", default="cuda", help="torch device: cuda (default), cuda:<index> or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: proves the script runs, measures nothing")
    parser.add_argument("--evaluate", default=None, help=argparse.SUPPRESS)  # the evaluate step, in a child process
    parser.add_argument("--episodes", type=int, default=10, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    if args.evaluate is not None:
        evaluation = evaluate(args.evaluate, args.device, args.episodes)
        (out / "evaluate.json").write_text(json.dumps(evaluation, indent=1))
        print(json.dumps(evaluation))
        return 0
    device = checked_device(args.device)
    out.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES:  # a previous check's, which the summary would otherwise read
        (out / name).unlink(missing_ok=True)
    budget = QUICK if args.quick else FULL
    machine = machine_description(device)
    print(f"GPU check on {device} ({machine['device_name']}), output in {out}", flush=True)
    command = f"{parser.prog} {shlex.join(sys.argv[1:] if argv is None else argv)}"
    result = summary(command, machine, run_steps(str(device), budget, out), budget, out)
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (out / "summary.md").write_text(text)
    print()
    print(text, end="")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""
One training run (a :class:`Job`) and the one trainer of the package: ``python -m sb3_course.train`` for one seed in
a subprocess (rl-zoo3's ExperimentManager: Monitor, separate deterministic evaluation env, ``evaluations.npz``, the
final model saved as ``<env_id>.zip`` in the run folder), with one torch thread, dying with its parent. The parity
suite, ``sb3-course verify`` and the learning checks all train through :func:`train`.
"""

import ctypes
import glob
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from sb3_course.common.files import is_dead_owner, owner_tag

PR_SET_PDEATHSIG = 1  # prctl option, linux/prctl.h


@dataclass(frozen=True)
class Job:
    """
    One training run: ``hyperparams`` is an rl-zoo3 YAML block (JSON text), empty for the algorithm's recipe;
    ``extra_args`` are further ``sb3-course train`` flags (e.g. ``-params name:value``).
    """

    algo: str
    env_id: str
    seed: int
    n_timesteps: int
    eval_freq: int
    eval_episodes: int
    hyperparams: str = ""
    cpus: int = 1
    extra_args: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        settings = [self.algo, self.env_id, self.n_timesteps, self.eval_freq, self.eval_episodes, self.hyperparams]
        # Extra flags join the hash only when given, so the runs saved before they existed keep their keys
        spec = json.dumps([*settings, *([list(self.extra_args)] if self.extra_args else [])])
        # A namespaced env id ("ALE/Pong-v5") names no folder: its slash becomes "_" (the hash keeps keys apart)
        env = self.env_id.replace("/", "_")
        return f"{self.algo}_{env}_{hashlib.sha1(spec.encode()).hexdigest()[:10]}_seed{self.seed}"


@dataclass
class RunResult:
    """Evaluation steps, the returns of every evaluation episode, and the cost of the run."""

    job: Job
    timesteps: np.ndarray
    returns: np.ndarray  # (n_evaluations, eval_episodes)
    wall_time: float

    @property
    def steps_per_second(self) -> float:
        return self.job.n_timesteps / self.wall_time


def train_command(job: Job, folder: str) -> list[str]:
    """The ``python -m sb3_course.train`` command of ``job`` (writes a one-block config file when needed)."""
    command = [
        sys.executable, "-m", "sb3_course.train", "--algo", job.algo, "--env", job.env_id, "--seed", str(job.seed),
        "-n", str(job.n_timesteps), "--eval-freq", str(job.eval_freq), "--eval-episodes", str(job.eval_episodes),
        "--n-eval-envs", "1", "--num-threads", "1", "-f", folder, "--verbose", "0",
    ]  # fmt: skip
    if job.hyperparams:
        config = os.path.join(folder, "config.yml")
        with open(config, "w") as file:
            yaml.safe_dump({job.env_id: {"n_timesteps": job.n_timesteps, **json.loads(job.hyperparams)}}, file)
        command += ["--conf-file", config]
    return [*command, *job.extra_args]


# The training subprocesses running now, so that an interrupted sweep can stop them (``stop_children``)
_children: set[subprocess.Popen] = set()


def _die_with_parent() -> None:
    """In the child: ask Linux to send SIGTERM when the parent dies, so a killed sweep leaves no orphans."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_children(grace: float = 10.0) -> None:
    """Terminate the running training subprocesses (kill those still alive after ``grace`` seconds)."""
    children = list(_children)
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def train(job: Job, folder: str) -> tuple[str, dict[str, Any]]:
    """
    Train ``job`` in a subprocess logging under ``folder``; return its rl-zoo3 run folder and its evaluations
    (plain types, for Ray). A failed run raises a ``RuntimeError`` with the command and the end of its stderr.
    """
    command = train_command(job, folder)
    # SB3's logger makes a folder for each learn() without a log folder, in the system's temporary folder unless
    # SB3_LOGDIR names one: under the run's folder, it goes with it
    env = {**os.environ, "SB3_LOGDIR": os.path.join(folder, "sb3_logger")}
    start = time.perf_counter()
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_die_with_parent
    ) as process:
        _children.add(process)
        try:
            _, stderr = process.communicate()
        finally:
            _children.discard(process)
    wall_time = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{job.key} failed (exit {process.returncode}, {shlex.join(command)}):\n{stderr[-3000:]}")
    (run_folder,) = glob.glob(os.path.join(folder, job.algo, f"{job.env_id}_*"))
    with np.load(os.path.join(run_folder, "evaluations.npz")) as data:
        evaluations = {"timesteps": data["timesteps"].tolist(), "returns": data["results"].tolist(), "wall_time": wall_time}
    return run_folder, evaluations


def _run_folder_prefix(job: Job) -> str:
    return os.path.join(tempfile.gettempdir(), f"run-{job.key}.")


def run_job(job: Job) -> dict[str, Any]:
    """
    :func:`train` in a temporary folder, deleted afterwards: the evaluations only. The folder is named after the job
    and its owner process (``run-<key>.<pid>@<host>.<random>``), so that a sweep killed before deleting it (SIGKILL)
    leaves one that :func:`remove_stale_run_folders` finds.
    """
    prefix = _run_folder_prefix(job)
    with tempfile.TemporaryDirectory(prefix=os.path.basename(prefix) + owner_tag() + ".") as folder:
        return train(job, folder)[1]


def remove_stale_run_folders(jobs: list[Job]) -> list[str]:
    """Remove the temporary run folders of ``jobs`` whose owner process (on this host) is gone; return them."""
    removed = []
    for job in jobs:
        prefix = _run_folder_prefix(job)
        for folder in glob.glob(glob.escape(prefix) + "*"):
            tag = folder[len(prefix) :].rpartition(".")[0]
            if is_dead_owner(tag):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed

"""
Training jobs of a parity sweep and the two ways of running them (a local pool of subprocesses or Ray tasks).

A job is one ``sb3-course train`` run (rl-zoo3's ExperimentManager: Monitor, separate deterministic
evaluation env, ``evaluations.npz``). Its result is saved under ``<out>/runs/<key>.npz`` + ``.json`` as soon
as it finishes, each renamed into place whole (``sb3_course.common.files.atomic_path``), and a sweep skips every
job whose result exists: an interrupted sweep resumes where it stopped. The key hashes everything that changes the
run (algorithm, env, hyperparameters, budget, evaluation, seed), so the course side shared by the matched and recipe
modes is trained once.
"""

import ctypes
import glob
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from sb3_course.common.files import atomic_path, write_text_atomically

PR_SET_PDEATHSIG = 1  # prctl option, linux/prctl.h


@dataclass(frozen=True)
class Job:
    """One training run: ``hyperparams`` is an rl-zoo3 YAML block (JSON text), empty for the algorithm's recipe."""

    algo: str
    env_id: str
    seed: int
    n_timesteps: int
    eval_freq: int
    eval_episodes: int
    hyperparams: str = ""
    cpus: int = 1

    @property
    def key(self) -> str:
        spec = json.dumps([self.algo, self.env_id, self.n_timesteps, self.eval_freq, self.eval_episodes, self.hyperparams])
        return f"{self.algo}_{self.env_id}_{hashlib.sha1(spec.encode()).hexdigest()[:10]}_seed{self.seed}"


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
    return command


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


def run_job(job: Job) -> dict[str, Any]:
    """Train ``job`` in a subprocess with one torch thread and return its evaluations (plain types, for Ray)."""
    with tempfile.TemporaryDirectory(prefix=f"parity-{job.key}-") as folder:
        command = train_command(job, folder)
        start = time.perf_counter()
        with subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent
        ) as process:
            _children.add(process)
            try:
                _, stderr = process.communicate()
            finally:
                _children.discard(process)
        wall_time = time.perf_counter() - start
        if process.returncode != 0:
            raise RuntimeError(f"{job.key} failed (exit {process.returncode}, {shlex.join(command)}):\n{stderr[-3000:]}")
        (path,) = glob.glob(os.path.join(folder, job.algo, f"{job.env_id}_*", "evaluations.npz"))
        with np.load(path) as data:
            return {"timesteps": data["timesteps"].tolist(), "returns": data["results"].tolist(), "wall_time": wall_time}


class RunStore:
    """The ``runs/`` folder of a sweep: one ``<key>.npz`` (curves) and ``<key>.json`` (job and cost) per run."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        os.makedirs(self.folder, exist_ok=True)

    def has(self, job: Job) -> bool:
        return os.path.exists(os.path.join(self.folder, f"{job.key}.json"))

    def save(self, job: Job, result: dict[str, Any]) -> None:
        base = os.path.join(self.folder, job.key)
        # Each file is renamed into place whole (atomic_path); the .json is written last and marks the run finished
        with atomic_path(f"{base}.npz") as tmp, open(tmp, "wb") as file:
            np.savez(file, timesteps=np.asarray(result["timesteps"]), returns=np.asarray(result["returns"]))
        meta = {"job": asdict(job), "wall_time": result["wall_time"], "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_text_atomically(f"{base}.json", json.dumps(meta, indent=1))

    def load(self, job: Job) -> RunResult:
        """The saved run of ``job``; a ``ValueError`` naming the files when they cannot be read."""
        base = os.path.join(self.folder, job.key)
        try:
            with open(f"{base}.json") as file:
                meta = json.load(file)
            with np.load(f"{base}.npz") as data:
                return RunResult(job, data["timesteps"], data["returns"], meta["wall_time"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(
                f"run {base}.json / .npz cannot be read ({type(error).__name__}: {error}); delete both to train it again"
            ) from error


class CpuSlots:
    """A counting semaphore over CPU slots: a job holds ``min(job.cpus, total)`` of them while it runs."""

    def __init__(self, total: int) -> None:
        self.total, self.free = total, total
        self.condition = threading.Condition()

    def hold(self, cpus: int) -> Callable[[], None]:
        cpus = min(cpus, self.total)
        with self.condition:
            self.condition.wait_for(lambda: self.free >= cpus)
            self.free -= cpus

        def release() -> None:
            with self.condition:
                self.free += cpus
                self.condition.notify_all()

        return release


Callback = Callable[[Job, dict[str, Any] | None, BaseException | None], None]


def run_unfinished(planned: Iterable[Job], store: RunStore, execute: Callable[..., None]) -> list[str]:
    """
    Run the jobs of ``planned`` that ``store`` does not hold yet, longest first, with ``execute`` (``run_local``
    or ``run_ray`` with their other arguments bound, called as ``execute(jobs, on_done=...)``), saving each run as
    it finishes, under a progress bar over runs. Return the failures' messages.
    """
    jobs = list(planned)
    todo = [job for job in jobs if not store.has(job)]
    # Longest first, so that the last slot is not left with one long job
    todo.sort(key=lambda job: -job.n_timesteps * job.cpus)
    print(f"{len(jobs)} runs, {len(jobs) - len(todo)} already finished in {store.folder}, {len(todo)} to go")
    failures: list[str] = []
    progress = tqdm(total=len(todo), unit="run", disable=not todo)

    def on_done(job: Job, result: dict[str, Any] | None, error: BaseException | None) -> None:
        if result is not None:
            store.save(job, result)
        else:
            failures.append(f"{job.key}: {error}")
        progress.update()

    try:
        execute(todo, on_done=on_done)
    finally:
        progress.close()
    return failures


def run_local(jobs: Iterable[Job], n_cpus: int, on_done: Callback) -> None:
    """Run ``jobs`` as subprocesses on this machine, ``n_cpus`` CPU slots at a time (A3C jobs take one per worker)."""
    slots, stopping = CpuSlots(n_cpus), threading.Event()

    def run(job: Job) -> None:
        release = slots.hold(job.cpus)
        try:
            if stopping.is_set():
                return
            result, error = run_job(job), None
        except Exception as exception:
            result, error = None, exception
        finally:
            release()
        if not stopping.is_set():
            on_done(job, result, error)

    pool = ThreadPoolExecutor(max_workers=n_cpus)
    try:
        for future in [pool.submit(run, job) for job in jobs]:
            future.result()
    except BaseException:
        # Ctrl-C / SIGTERM: start nothing more, stop what runs; finished runs are saved already
        stopping.set()
        pool.shutdown(wait=False, cancel_futures=True)
        stop_children()
        raise
    finally:
        pool.shutdown(wait=True)


def run_ray(jobs: Iterable[Job], address: str | None, n_cpus: int, on_done: Callback) -> None:
    """
    Run ``jobs`` as Ray tasks (``num_cpus`` = the job's CPU slots) on the cluster at ``address``, or on a local
    Ray instance with ``n_cpus`` CPUs when ``address`` is ``None``. Every node needs sb3_course installed; the
    results travel back to this process, which writes them.
    """
    try:
        import ray
    except ImportError as error:
        raise SystemExit("--backend ray needs Ray: pip install 'sb3_course[ray]'") from error
    started_here = not ray.is_initialized()
    if started_here:
        # Workers import this module by name; a source checkout not installed on the nodes travels as the working dir
        ray.init(address=address, num_cpus=None if address else n_cpus, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(run_job)
        pending = {remote.options(num_cpus=job.cpus).remote(job): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                on_done(job, ray.get(done[0]), None)
            except ray.exceptions.RayTaskError as error:
                on_done(job, None, error)
    finally:
        if started_here:
            ray.shutdown()

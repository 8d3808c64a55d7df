"""
The run store of a sweep: one archive, ``<runs>/runs.jsonl``, with one line per finished run (its job, the evaluation
steps, the returns of every evaluation episode, the wall time), sorted by run key.

A run is added by rewriting the archive whole (:func:`sb3_course.common.files.atomic_path`) under a lock on the
folder, so a reader sees the archive before or after the run was added, never half of it, and two sweeps (threads or
processes) that share the folder both keep their runs: a crash loses at most the run being added. Folders of older
versions (a ``<key>.npz`` + ``<key>.json`` pair per run) are converted into the archive with::

    python -m sb3_course.experiments.store docs/parity/runs
"""

import argparse
import fcntl
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import numpy as np

from sb3_course.common.files import write_text_atomically
from sb3_course.experiments.jobs import Job, RunResult

ARCHIVE = "runs.jsonl"


class DamagedRunError(ValueError):
    """A stored run that cannot be read or holds values no training run writes."""


def _check_values(job: Job, timesteps: np.ndarray, returns: np.ndarray, wall_time: Any) -> None:
    """
    A ``ValueError`` saying what is wrong unless the values are those of a training run (what the reports compute
    on): a positive finite ``wall_time``; at least one evaluation, at non-negative increasing steps; the returns
    finite, one row per evaluation and one column per evaluation episode of the job.
    """
    if isinstance(wall_time, bool) or not isinstance(wall_time, int | float) or not 0 < wall_time < math.inf:
        raise ValueError(f"wall_time must be a positive number of seconds, got {wall_time!r}")
    for name, array, ndim, kinds in (("timesteps", timesteps, 1, "iu"), ("returns", returns, 2, "iuf")):
        if array.dtype.kind not in kinds or array.ndim != ndim or array.size == 0:
            raise ValueError(f"{name} must be a non-empty {ndim}-D array of numbers, got shape {array.shape} {array.dtype}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} holds NaN or infinite values")
    if timesteps[0] < 0 or (np.diff(timesteps) <= 0).any():
        raise ValueError(f"timesteps must be non-negative and increasing, got {timesteps.tolist()}")
    if returns.shape != (len(timesteps), job.eval_episodes):
        raise ValueError(
            f"returns must hold one row per evaluation and {job.eval_episodes} episodes per row (the job's "
            f"eval_episodes), got shape {returns.shape} for {len(timesteps)} evaluations"
        )


def run_result(job: Job, record: dict[str, Any], where: str) -> RunResult:
    """
    The run of ``job`` in ``record`` (a line of an archive, or a converted pair of per-run files), checked; a
    one-line :class:`DamagedRunError` naming ``where`` and what to delete when it is not a whole training run.
    """
    try:
        timesteps = np.asarray(record["timesteps"])
        returns = np.asarray(record["returns"])
        wall_time = record["wall_time"]
        _check_values(job, timesteps, returns, wall_time)
    except (KeyError, TypeError, ValueError) as error:
        message = f"run {where} cannot be read ({type(error).__name__}: {error}); delete it to train it again"
        raise DamagedRunError(message) from error
    return RunResult(job, timesteps, returns, float(wall_time))


def record_of(job: Job, result: dict[str, Any], finished: str) -> dict[str, Any]:
    """The archive line of a run (JSON numbers: float64 returns and wall times are kept bit for bit)."""
    return {
        "key": job.key,
        "job": asdict(job),
        "wall_time": result["wall_time"],
        "finished": finished,
        "timesteps": np.asarray(result["timesteps"]).tolist(),
        "returns": np.asarray(result["returns"], dtype=float).tolist(),
    }


@contextmanager
def _locked(folder: str) -> Iterator[None]:
    """An exclusive lock on ``folder`` itself (no lock file to plant a link at), held by one writer process."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def per_run_files(folder: str) -> list[str]:
    """The ``<key>.npz`` / ``<key>.json`` files of an older store in ``folder``."""
    return sorted(name for name in os.listdir(folder) if name.endswith((".npz", ".json")))


class RunStore:
    """The runs of a sweep: one line of ``<folder>/runs.jsonl`` per finished run (see the module's docstring)."""

    def __init__(self, folder: str, converting: bool = False, create: bool = True) -> None:
        """
        :param converting: leave the per-run files of an older store in ``folder`` alone (:func:`convert`)
        :param create: create ``folder`` if it does not exist (a store only read from, ``--report-only``, does not)
        """
        self.folder = folder
        self.path = os.path.join(folder, ARCHIVE)
        if create:
            os.makedirs(self.folder, exist_ok=True)
        if os.path.isdir(folder) and per_run_files(folder) and not converting:
            raise ValueError(
                f"{folder} holds the per-run files of an older sb3_course (<key>.npz / .json): convert them into "
                f"{ARCHIVE} with `python -m sb3_course.experiments.store {folder}`"
            )
        self._lock = threading.Lock()
        self._cache: tuple[tuple[int, int, int], dict[str, dict[str, Any]]] = ((0, 0, 0), {})

    def _records(self) -> dict[str, dict[str, Any]]:
        """The archive's lines by run key, read again whenever the file was replaced."""
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return {}
        signature = (status.st_ino, status.st_mtime_ns, status.st_size)
        if self._cache[0] != signature:
            records = {}
            with open(self.path, encoding="utf-8") as file:
                for number, line in enumerate(file, 1):
                    try:
                        record = json.loads(line)
                        records[str(record["key"])] = record
                    except (ValueError, KeyError, TypeError) as error:
                        raise DamagedRunError(
                            f"line {number} of {self.path} is not a run ({type(error).__name__}: {error}); delete that "
                            "line to train its run again"
                        ) from error
            self._cache = (signature, records)
        return self._cache[1]

    def keys(self) -> list[str]:
        return sorted(self._records())

    def has(self, job: Job) -> bool:
        return job.key in self._records()

    def save(self, job: Job, result: dict[str, Any]) -> None:
        self.add([record_of(job, result, time.strftime("%Y-%m-%dT%H:%M:%S"))])

    def add(self, new: list[dict[str, Any]]) -> None:
        """Add archive lines (replacing a run of the same key), rewriting the archive whole under the folder's lock."""
        with self._lock, _locked(self.folder):
            records = {**self._records(), **{record["key"]: record for record in new}}
            write_text_atomically(self.path, "".join(json.dumps(records[key]) + "\n" for key in sorted(records)))

    def load(self, job: Job) -> RunResult:
        """The saved run of ``job``; a :class:`DamagedRunError` naming the archive and the run when it cannot be read."""
        return run_result(job, self._records().get(job.key, {}), f"{job.key} in {self.path}")


def convert(folder: str) -> int:
    """
    Move the per-run files of an older store in ``folder`` into its archive (each run read back and compared before
    its files are deleted); return how many runs moved.
    """
    names = per_run_files(folder)
    keys = sorted({os.path.splitext(name)[0] for name in names})
    jobs, originals, records = [], [], []
    for key in keys:
        base = os.path.join(folder, key)
        with open(f"{base}.json") as file:
            meta = json.load(file)
        with np.load(f"{base}.npz") as data:
            arrays = {"timesteps": data["timesteps"], "returns": data["returns"]}
        job = Job(**{**meta["job"], "extra_args": tuple(meta["job"].get("extra_args", ()))})
        if job.key != key:
            raise ValueError(f"{base}.json describes run {job.key}, not {key}; leave it out of {folder} to convert")
        jobs.append(job)
        originals.append(arrays)
        records.append(record_of(job, {**arrays, "wall_time": meta["wall_time"]}, meta["finished"]))
    store = RunStore(folder, converting=True)
    store.add(records)
    for job, arrays in zip(jobs, originals, strict=True):
        run = store.load(job)
        same = all(np.array_equal(getattr(run, name), arrays[name]) for name in ("timesteps", "returns"))
        if not same or run.returns.dtype != arrays["returns"].dtype or run.timesteps.dtype != arrays["timesteps"].dtype:
            raise ValueError(f"run {job.key} reads back differently from {store.path}; its files are kept")
    for name in names:
        os.unlink(os.path.join(folder, name))
    return len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description="Convert run folders of per-run files into one runs.jsonl each.")
    parser.add_argument("folders", nargs="+")
    for folder in parser.parse_args().folders:
        print(f"{folder}: {convert(folder)} runs moved into {os.path.join(folder, ARCHIVE)}")


if __name__ == "__main__":
    main()

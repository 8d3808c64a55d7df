"""
Running many training jobs (:mod:`sb3_course.experiments.jobs`): a local pool of subprocesses over CPU slots or Ray
tasks, a resumable run store, and interruption that keeps what finished.

Each job's result is added to the sweep's run archive (:mod:`sb3_course.experiments.store`) as soon as it finishes, and
a sweep skips every job whose result exists: an interrupted sweep resumes where it stopped. The key hashes everything
that changes the run (algorithm, env, hyperparameters, budget, evaluation, seed), so a run shared by two sweeps (the
course side of parity's matched and recipe modes) is trained once.
"""

import signal
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tqdm import tqdm

from sb3_course.experiments.jobs import Job, remove_stale_run_folders, run_job, stop_children
from sb3_course.experiments.store import DamagedRunError, RunStore

T = TypeVar("T")


def exit_on_damaged_run(prog: str, read: Callable[[], T]) -> T:
    """``read()`` (a report over stored runs); a damaged run ends the command with one line and status 2."""
    try:
        return read()
    except DamagedRunError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(2)


def exit_without_runs(prog: str, store: RunStore, jobs: Iterable[Job], flag: str) -> None:
    """A report over ``store`` that holds none of ``jobs`` (``--report-only``): one line naming the folder, status 2."""
    if not exit_on_damaged_run(prog, lambda: any(store.has(job) for job in jobs)):
        print(
            f"{prog}: error: {store.folder} holds no finished run of this sweep, so there is nothing to report; give the "
            f"{flag} of the sweep (and its settings), or run it without --report-only",
            file=sys.stderr,
        )
        sys.exit(2)


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
    # The temporary folders of a sweep killed by SIGKILL (it could not delete them)
    for folder in remove_stale_run_folders(todo):
        print(f"removed {folder}, left by a killed sweep")
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


def interrupt(signum: int, frame: object) -> None:
    """Signal handler: stop the sweep as Ctrl-C does (finished runs stay saved)."""
    raise KeyboardInterrupt(f"signal {signum}")


def run_interruptibly(sweep: Callable[[], list[str]], runs: str) -> list[str]:
    """
    ``sweep()`` with SIGTERM handled as Ctrl-C (on the main thread): running jobs are stopped, finished ones stay
    saved in ``runs``, and the process exits with status 130 and one line saying so.
    """
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if on_main_thread else None
    try:
        return sweep()
    except KeyboardInterrupt:
        print(f"Interrupted: finished runs are saved in {runs}; the same command resumes the sweep.", file=sys.stderr)
        sys.exit(130)
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)

"""
A3C's worker processes seen from the main process: start them, read their messages, turn every way they can fail
(an exception, a crash while starting, a script they cannot re-import) into one ``A3CWorkerError`` that says what
to do, and stop them.
"""

import multiprocessing as mp
import os
import queue
import signal
import sys
import time

import cloudpickle
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper

from sb3_course.a3c.worker import ERROR, WORKER_NAME, A3CWorkerError, Worker, WorkerConfig, run_worker

# Exit code of a worker whose re-import of the main module ran ``A3C.learn()`` (a script without a main guard)
EXIT_UNGUARDED_MAIN = 86
MAIN_GUARD_HINT = 'put the code that trains under `if __name__ == "__main__":`'


# fork is unsafe with torch threads
START_METHODS = ("forkserver", "spawn")


def check_device(device: th.device | str) -> None:
    """
    Raise a ``ValueError`` when ``device`` is not the CPU (``"auto"`` is the CPU for A3C); an invalid device raises
    torch's error type (as SB3), its message naming the argument.
    """
    if device == "auto":
        return
    try:
        kind = th.device(device).type
    except (RuntimeError, TypeError) as error:
        raise type(error)(f"device: {error}") from None
    if kind != "cpu":
        raise ValueError(
            f"A3C's workers update one policy in shared CPU memory (Hogwild), so device must be 'cpu' or 'auto', "
            f"got {device!r}: pass device='cpu'"
        )


def exit_if_importing_main_in_worker() -> None:
    """
    Called by ``A3C.learn()``. In a worker process it can only run because the worker re-imports the main module
    (``forkserver`` / ``spawn``) and the script trains at import: the worker leaves with :data:`EXIT_UNGUARDED_MAIN`
    at once (it would fail to start workers of its own), and the main process explains it.
    """
    if mp.current_process().name.startswith(WORKER_NAME):
        os._exit(EXIT_UNGUARDED_MAIN)


def check_main_module() -> None:
    """
    Raise when the workers could not re-import the main module: a script read from stdin (``python < train.py``)
    has a ``__file__`` (``<stdin>``) that names no file.
    """
    main = sys.modules["__main__"]
    path = getattr(main, "__file__", None)
    if getattr(main.__spec__, "name", None) is None and path is not None and not os.path.isfile(path):
        raise A3CWorkerError(
            f"A3C's worker processes re-import the main module from its file, and this one has none (__file__ is "
            f"{path!r}: a script read from stdin?); save the script to a file and run `python <file>`, and "
            f"{MAIN_GUARD_HINT}"
        )


class WorkerPool:
    """
    The worker processes seen from the main process: start, watch (messages, failures) and stop them.

    :param config: the shared hyperparameters
    :param policy: the policy, already in shared memory
    :param n_workers: number of worker processes
    :param start_timesteps: initial value of the shared step counter
    :param start_method: multiprocessing start method (``forkserver`` or ``spawn``: safe with torch threads)
    :param worker_class: the class each worker process runs (pickled by reference: it must be importable)
    """

    def __init__(
        self,
        config: WorkerConfig,
        policy: ActorCriticPolicy,
        n_workers: int,
        start_timesteps: int,
        start_method: str,
        worker_class: type[Worker] = Worker,
    ) -> None:
        self.start_method = start_method
        self.context = mp.get_context(start_method)
        if start_method == "forkserver":
            # Import torch and SB3 once in the fork server instead of once per worker; torch._dynamo is what
            # the first optimizer construction imports (seconds).
            self.context.set_forkserver_preload(["sb3_course.a3c.worker", "torch._dynamo"])
        try:
            cloudpickle.dumps(config)
        except Exception as error:
            raise A3CWorkerError(
                f"A3C cannot send its settings to the worker processes: {type(error).__name__}: {error}; the env "
                "factory and learning-rate schedule must be picklable (cloudpickle)"
            ) from error
        self.total_timesteps = config.total_timesteps
        self.counter = self.context.Value("q", start_timesteps)
        self.stop_event = self.context.Event()
        self.messages = self.context.Queue()
        payload = CloudpickleWrapper(config)
        self.processes = [
            self.context.Process(  # type: ignore[attr-defined]
                target=run_worker,
                args=(worker_class, rank, payload, policy, self.counter, self.stop_event, self.messages),
                daemon=True,
                name=f"{WORKER_NAME}-{rank}",
            )
            for rank in range(n_workers)
        ]

    @property
    def steps(self) -> int:
        """Environment steps taken by all workers (shared counter, read without its lock: one aligned integer)."""
        return int(self.counter.get_obj().value)

    def start(self) -> None:
        check_main_module()
        for rank, process in enumerate(self.processes):
            try:
                process.start()
            except Exception as error:
                raise A3CWorkerError(
                    f"A3C could not start worker {rank}: {type(error).__name__}: {error}; the policy is sent to the "
                    "workers with pickle: define custom policy classes and functions in an importable module"
                ) from error

    def all_exited(self) -> bool:
        return all(process.exitcode is not None for process in self.processes)

    def _drain(self, timeout: float) -> list[tuple]:
        received = []
        try:
            received.append(self.messages.get(timeout=timeout))
            while True:
                received.append(self.messages.get_nowait())
        except queue.Empty:
            return received

    def poll(self, timeout: float) -> list[tuple]:
        """
        Messages received within ``timeout`` seconds; raises ``A3CWorkerError`` if a worker failed: it reported an
        exception, or it ended (whatever its exit code, 0 included) before the step budget was spent. The main
        process stops the workers only after its last poll, so here a worker ends by itself only when the budget is
        spent (the counter only grows, and is read after the exit code).
        """
        received = self._drain(timeout)
        self.raise_errors(received)
        for rank, process in enumerate(self.processes):
            exitcode = process.exitcode
            if exitcode is None or (exitcode == 0 and self.steps >= self.total_timesteps):
                continue
            # Its error message may still be in the pipe.
            self.raise_errors(self._drain(1.0))
            raise A3CWorkerError(self._death_message(rank, exitcode))
        return received

    def _death_message(self, rank: int, exitcode: int) -> str:
        """Why a worker ended without reporting an exception, and what to do."""
        if exitcode == EXIT_UNGUARDED_MAIN:
            main = getattr(sys.modules["__main__"], "__file__", "the main module")
            return (
                f"A3C worker {rank} could not start: each worker process re-imports {main} (start method "
                f"{self.start_method}) and that script trains A3C again when imported; {MAIN_GUARD_HINT}"
            )
        if exitcode == 0:
            return (
                f"A3C worker {rank} ended with exit code 0 before the step budget was spent ({self.steps} of "
                f"{self.total_timesteps} steps) and training was not asked to stop: its env, or a library it calls, "
                "ended the process (exit(0) / os._exit(0)); its output is on stderr"
            )
        if exitcode < 0:
            name = signal.Signals(-exitcode).name
            return f"A3C worker {rank} was killed by {name} (out of memory? see the system log); try fewer n_workers"
        return (
            f"A3C worker {rank} ended with exit code {exitcode} before it could report an exception: it failed while "
            "starting (re-importing the main module or unpickling its arguments) or its env ended the process; "
            "its traceback is on stderr"
        )

    @staticmethod
    def raise_errors(received: list[tuple]) -> None:
        for message in received:
            if message[0] == ERROR:
                raise A3CWorkerError(f"A3C worker {message[1]} failed:\n{message[2]}")

    def close(self, timeout: float = 5.0) -> list[tuple]:
        """Stop every worker started (terminate or kill stragglers) and return the messages still queued."""
        self.stop_event.set()
        started = [process for process in self.processes if process.pid is not None]
        received: list[tuple] = []
        deadline = time.monotonic() + timeout
        # Keep reading: a process does not exit while its queued messages are not flushed into the pipe.
        while any(process.is_alive() for process in started) and time.monotonic() < deadline:
            received += self._drain(0.05)
        for process in started:
            if process.is_alive():
                process.terminate()
                process.join(1.0)
            if process.is_alive():
                process.kill()
            process.join()
        received += self._drain(0.0)
        self.messages.close()
        self.messages.join_thread()
        return received

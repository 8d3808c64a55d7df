"""
What the throughput benchmarks share: the machine's idle CPU share (Linux ``/proc/stat``) and a callback that
times the environment steps after a warm-up.
"""

import time

from stable_baselines3.common.callbacks import BaseCallback


def cpu_times() -> tuple[int, int]:
    """Idle and total CPU time of the whole machine so far (Linux ``/proc/stat``; zeros elsewhere)."""
    try:
        with open("/proc/stat") as file:
            fields = [int(value) for value in file.readline().split()[1:]]
    except OSError:
        return 0, 0
    return fields[3] + fields[4], sum(fields)  # idle + iowait, all


def idle_percent(start: tuple[int, int], end: tuple[int, int]) -> float:
    """The share of the machine's CPU time between two ``cpu_times()`` readings that stayed idle (%)."""
    return 100 * (end[0] - start[0]) / max(end[1] - start[1], 1)


def machine_idle_percent(seconds: float = 1.0) -> float:
    """The share of the machine's CPU time that stays idle over the next ``seconds`` (%; 100 where unknown)."""
    start = cpu_times()
    time.sleep(seconds)
    end = cpu_times()
    return idle_percent(start, end) if end[1] > start[1] else 100.0


class StepClock(BaseCallback):
    """
    Times the steps between ``warmup`` and the end of training (the main process sees every step), in wall time
    and in CPU time of the whole process (``time.process_time``: every thread of it, so JAX's or BLAS's helper
    threads count; other load on the machine does not). Time that another callback spends on something else (an
    evaluation) is handed to :meth:`pause` and left out.

    :param warmup: the step count at which the clock starts
    """

    def __init__(self, warmup: int) -> None:
        super().__init__()
        self.warmup = warmup
        self.start: tuple[float, int, tuple[int, int], float] | None = None
        self.paused = 0.0
        self.paused_cpu = 0.0

    def _on_step(self) -> bool:
        if self.start is None and self.num_timesteps >= self.warmup:
            self.start = (time.perf_counter(), self.num_timesteps, cpu_times(), time.process_time())
        return True

    def pause(self, seconds: float, cpu_seconds: float = 0.0) -> None:
        """Leave ``seconds`` of wall time and ``cpu_seconds`` of CPU time out (ignored before the clock starts)."""
        if self.start is not None:
            self.paused += seconds
            self.paused_cpu += cpu_seconds

    def measure(self) -> tuple[float, float]:
        """Steps per second since the warm-up, and the share of the machine's CPU time that stayed idle (%)."""
        assert self.start is not None, "the clock never started: fewer steps than the warm-up"
        start_time, start_steps, start_cpu, _ = self.start
        elapsed = time.perf_counter() - start_time - self.paused
        return (self.num_timesteps - start_steps) / elapsed, idle_percent(start_cpu, cpu_times())

    def cpu_steps_per_second(self) -> float:
        """Steps per CPU-second of this process since the warm-up."""
        assert self.start is not None, "the clock never started: fewer steps than the warm-up"
        _, start_steps, _, start_process = self.start
        return (self.num_timesteps - start_steps) / (time.process_time() - start_process - self.paused_cpu)

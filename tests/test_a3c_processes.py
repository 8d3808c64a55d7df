"""
A3C's process faults (issue 18): a killed main process, scripts the workers cannot re-import, env ids they cannot
find, factories they cannot receive, ``learn(0)``, and the device. The process cases run a training script in a
subprocess marked by an environment variable that every process it starts inherits, so that none of them, orphan
or not, escapes the final check (``/proc``: Linux).
"""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import gymnasium as gym
import pytest
import torch as th

from sb3_course import A3C
from sb3_course.a3c import pool as a3c_pool
from sb3_course.a3c.worker import WORKER_NAME

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

TINY = dict(net_arch=dict(trunk=[8], vf=[8]))

ENDLESS_SCRIPT = """
import ctypes, os, sys, time
import gymnasium as gym, numpy as np
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from sb3_course import A3C

class Endless(gym.Env):
    # An episode that never ends: a worker's whole-episode rollout never comes back to its outer loop
    observation_space, action_space = spaces.Box(-1, 1, (2,), np.float32), spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(2, np.float32), {{}}

    def step(self, action):
        self.steps = getattr(self, "steps", 0) + 1
        if {block} and self.steps == 100:
            # Blocked in a step for an hour
            open(f"{ready}.blocked.{{os.getpid()}}", "w").close()
            time.sleep(3600)
        return np.ones(2, np.float32), 0.0, False, False, {{}}

def make_env():
    if not {death_signal}:
        ctypes.CDLL(None).prctl(1, 0)  # PR_SET_PDEATHSIG off: only the worker's watch of the main process is left
    return Endless()

class Ready(BaseCallback):
    def _on_step(self):
        if self.n_calls == 150:
            open("{ready}", "w").close()
        return True

if __name__ == "__main__":
    A3C("MlpPolicy", make_env, n_workers=2, policy_kwargs=dict(net_arch=[8])).learn(10**12, callback=Ready())
"""

UNGUARDED_SCRIPT = """
from sb3_course import A3C
A3C("MlpPolicy", "CartPole-v1", n_workers=1, policy_kwargs=dict(net_arch=[8])).learn(200)
"""

REGISTERED_IN_GUARD_SCRIPT = """
import gymnasium as gym
from sb3_course import A3C

class Short(gym.Wrapper):
    # MountainCar cannot reach its goal in 20 steps: every episode ends at the registered limit, whatever the policy
    def __init__(self):
        super().__init__(gym.make("MountainCar-v0", max_episode_steps=20))

if __name__ == "__main__":
    gym.register("GuardedShort-v0", entry_point=Short)
    gym.register("GuardedShortByName-v0", entry_point="__main__:Short")
    for env_id in ("GuardedShort-v0", "GuardedShortByName-v0"):
        model = A3C("MlpPolicy", env_id, n_workers=2, policy_kwargs=dict(net_arch=[8]))
        model.learn(200)
        print(env_id, model.num_timesteps, sorted({info["l"] for info in model.ep_info_buffer}))
"""

EXITING_SCRIPT = """
import multiprocessing as mp, os, sys
import gymnasium as gym
from sb3_course import A3C

class Exiting(gym.Wrapper):
    # An env whose simulator ends the process at its 50th step, without an exception, in the workers named
    def step(self, action):
        self.steps = getattr(self, "steps", 0) + 1
        if self.steps == 50 and mp.current_process().name in {names}:
            {exit_call}
        return super().step(action)

if __name__ == "__main__":
    model = A3C("MlpPolicy", lambda: Exiting(gym.make("CartPole-v1")), n_workers=2, policy_kwargs=dict(net_arch=[8]))
    model.learn(100_000)
"""


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # state, ppid, ... (the name may hold spaces)


def marked_processes(mark: str) -> list[int]:
    """Live (not zombie) processes whose environment holds ``A3C_TEST_MARK=<mark>``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        stat = _stat(int(entry.name))
        if f"A3C_TEST_MARK={mark}".encode() in environ.split(b"\0") and stat is not None and stat[0] != "Z":
            found.append(int(entry.name))
    return found


def wait_until_gone(mark: str, timeout: float) -> list[int]:
    """The marked processes still alive after ``timeout`` seconds (polling)."""
    deadline = time.monotonic() + timeout
    while (alive := marked_processes(mark)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def run_marked(args: list[str], mark: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "A3C_TEST_MARK": mark, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, *args], env=env, cwd=cwd, text=True, **kwargs)


def kill_marked(mark: str) -> None:
    for pid in marked_processes(mark):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize(
    ("signum", "death_signal", "block"),
    [
        pytest.param(signal.SIGTERM, True, False, id="SIGTERM"),
        pytest.param(signal.SIGKILL, True, False, id="SIGKILL"),
        pytest.param(signal.SIGKILL, False, False, id="SIGKILL-watch-only"),
        pytest.param(signal.SIGKILL, False, True, id="SIGKILL-watch-only-blocked-in-step"),
    ],
)
def test_workers_end_with_a_killed_main_process(tmp_path, signum, death_signal, block):
    mark, ready = uuid.uuid4().hex, tmp_path / "ready"
    script = textwrap.dedent(ENDLESS_SCRIPT).format(death_signal=death_signal, block=block, ready=ready)
    process = run_marked(["-c", script], mark, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() or (block and len(list(tmp_path.glob("ready.blocked.*"))) < 2):
            assert process.poll() is None and time.monotonic() < deadline, "training did not start"
            time.sleep(0.05)
        # The main process, the fork server, the resource tracker and two workers inside an endless rollout
        assert len(marked_processes(mark)) == 5
        process.send_signal(signum)
        assert process.wait(timeout=30) == -signum
        # A bound for a loaded CI machine (the workers go at once)
        assert wait_until_gone(mark, timeout=15) == []
    finally:
        process.kill()
        process.wait()
        kill_marked(mark)


def test_script_without_main_guard(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(UNGUARDED_SCRIPT))
    mark = uuid.uuid4().hex
    process = run_marked(["train.py"], mark, tmp_path, stderr=subprocess.PIPE)
    try:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 1
        last_line = stderr.strip().splitlines()[-1]
        assert last_line.startswith("sb3_course.a3c.worker.A3CWorkerError: A3C worker 0 could not start")
        assert 'put the code that trains under `if __name__ == "__main__":`' in last_line
        # The worker stopped before any traceback of its own (multiprocessing's "bootstrapping phase" error)
        assert stderr.count("Traceback") == 1 and "bootstrapping" not in stderr
        assert wait_until_gone(mark, timeout=15) == []
    finally:
        process.kill()
        kill_marked(mark)


def test_script_read_from_stdin(tmp_path):
    mark = uuid.uuid4().hex
    process = run_marked(["-"], mark, tmp_path, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, stderr = process.communicate(textwrap.dedent(UNGUARDED_SCRIPT), timeout=120)
        assert process.returncode == 1
        last_line = stderr.strip().splitlines()[-1]
        assert "A3CWorkerError: A3C's worker processes re-import the main module from its file" in last_line
        assert "'<stdin>'" in last_line and "save the script to a file" in last_line
        assert wait_until_gone(mark, timeout=15) == []
    finally:
        process.kill()
        kill_marked(mark)


@pytest.mark.parametrize(
    ("exit_call", "ranks", "expected"),
    [
        # The case: every worker ends with status 0 (learn() used to return at once, without an error)
        pytest.param("os._exit(0)", (0, 1), "ended with exit code 0 before the step budget was spent", id="all-exit-0"),
        # One worker ends, the other could spend the budget alone: still an error
        pytest.param("os._exit(0)", (1,), "A3C worker 1 ended with exit code 0 before the step", id="one-exits-0"),
        # sys.exit(0) raises SystemExit, which the worker reports with its traceback
        pytest.param("sys.exit(0)", (0, 1), "SystemExit: 0", id="sys.exit-0"),
    ],
)
def test_a_worker_ending_before_the_budget_is_an_error(tmp_path, exit_call, ranks, expected):
    names = {f"{WORKER_NAME}-{rank}" for rank in ranks}
    (tmp_path / "train.py").write_text(textwrap.dedent(EXITING_SCRIPT).format(names=names, exit_call=exit_call))
    mark = uuid.uuid4().hex
    process = run_marked(["train.py"], mark, tmp_path, stderr=subprocess.PIPE)
    try:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 1, stderr
        assert "A3CWorkerError: A3C worker" in stderr and expected in stderr
        assert wait_until_gone(mark, timeout=15) == []
    finally:
        process.kill()
        kill_marked(mark)


def test_env_id_registered_inside_the_main_guard_trains(tmp_path):
    # Entry points are loaded in the main process: the workers need no registration (by class or by name)
    (tmp_path / "train.py").write_text(textwrap.dedent(REGISTERED_IN_GUARD_SCRIPT))
    mark = uuid.uuid4().hex
    process = run_marked(["train.py"], mark, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        assert stdout.splitlines() == ["GuardedShort-v0 200 [20]", "GuardedShortByName-v0 200 [20]"]
        assert wait_until_gone(mark, timeout=15) == []
    finally:
        process.kill()
        kill_marked(mark)


@pytest.fixture
def started_pools(monkeypatch):
    """The worker pools started during the test."""
    pools: list[a3c_pool.WorkerPool] = []
    start = a3c_pool.WorkerPool.start

    def recording_start(pool):
        pools.append(pool)
        start(pool)

    monkeypatch.setattr(a3c_pool.WorkerPool, "start", recording_start)
    return pools


def test_unpicklable_env_factory_fails_at_construction(started_pools):
    lock = threading.Lock()

    def make_env() -> gym.Env:
        assert lock is not None  # the factory holds a lock: cloudpickle cannot send it to a worker
        return gym.make("CartPole-v1")

    with pytest.raises(ValueError, match=r"cannot be pickled \(TypeError: cannot pickle '_thread.lock' object\); build"):
        A3C("MlpPolicy", make_env, n_workers=2, policy_kwargs=TINY)
    assert started_pools == []


@pytest.mark.parametrize("total_timesteps", [0, -5])
def test_learn_nothing_returns_at_once(started_pools, total_timesteps):
    model = A3C("MlpPolicy", "CartPole-v1", n_workers=2, policy_kwargs=TINY)
    assert model.learn(total_timesteps) is model
    assert model.num_timesteps == 0 and started_pools == []


def cartpole_dying_in_workers() -> gym.Env:
    if multiprocessing.current_process().name.startswith(WORKER_NAME):
        os._exit(3)  # the worker ends before its first step without a message, as at start-up failures
    return gym.make("CartPole-v1")


def test_a_worker_dying_between_poll_and_exit_check_is_reported(monkeypatch):
    # The main thread paused right after a poll that still saw the worker alive: the worker's exit must be read by a
    # later poll, not taken for the end of training
    poll = a3c_pool.WorkerPool.poll

    def paused_poll(pool, timeout):
        received = poll(pool, timeout)
        while not pool.all_exited():
            time.sleep(0.01)
        return received

    monkeypatch.setattr(a3c_pool.WorkerPool, "poll", paused_poll)
    model = A3C("MlpPolicy", cartpole_dying_in_workers, n_workers=1, policy_kwargs=TINY)
    with pytest.raises(a3c_pool.A3CWorkerError, match="worker 0 ended with exit code 3 before it could report"):
        model.learn(1_000)
    assert model.num_timesteps == 0


def test_device_must_be_the_cpu():
    for device in ("cuda", "cuda:0", "meta"):
        with pytest.raises(ValueError, match=r"shared CPU memory \(Hogwild\), so device must be 'cpu' or 'auto'") as error:
            A3C("MlpPolicy", "CartPole-v1", n_workers=1, device=device)
        assert "\n" not in str(error.value) and "pass device='cpu'" in str(error.value)
    for device in ("cpu", "auto", th.device("cpu")):
        assert A3C("MlpPolicy", "CartPole-v1", n_workers=1, device=device).device.type == "cpu"


@pytest.mark.cuda
@pytest.mark.skipif(not th.cuda.is_available(), reason="needs CUDA")
def test_on_a_gpu_machine_a3c_stays_on_the_cpu(tmp_path):
    # "auto" picks the GPU for SB3's A2C; A3C's Hogwild policy stays in shared CPU memory and still trains
    model = A3C("MlpPolicy", "CartPole-v1", n_workers=1, n_steps=5, policy_kwargs=TINY, device="auto").learn(100)
    assert model.device.type == "cpu" and all(p.device.type == "cpu" for p in model.policy.parameters())
    model.save(tmp_path / "a3c.zip")
    with pytest.raises(ValueError, match="pass device='cpu'"):
        A3C.load(tmp_path / "a3c.zip", device="cuda")
    assert A3C.load(tmp_path / "a3c.zip").device.type == "cpu"

"""
A3C unit tests. Workers are real processes (forkserver: the first test pays for the fork server's imports).
The test module is pickled by value so that its helper envs and factories reach the workers.
"""

import multiprocessing as mp
import os
import sys
import time

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor

from sb3_course import A3C
from sb3_course.a3c import A3CPolicy, A3CWorkerError
from sb3_course.a3c import worker as a3c_worker
from sb3_course.a3c.worker import env_factory_from_vec_env
from sb3_course.common.wrappers import CourseA3CReward

TINY = dict(net_arch=dict(trunk=[8, 8], vf=[8]))

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def worker_pids(monkeypatch):
    """PIDs of every worker process started during the test."""
    pids: list[int] = []
    start = a3c_worker.WorkerPool.start

    def recording_start(pool):
        start(pool)
        pids.extend(process.pid for process in pool.processes)

    monkeypatch.setattr(a3c_worker.WorkerPool, "start", recording_start)
    return pids


def assert_no_worker_alive(pids: list[int]) -> None:
    assert pids and not mp.active_children()
    deadline = time.monotonic() + 2.0
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)


def failing_cartpole() -> gym.Env:
    class Failing(gym.Wrapper):
        def step(self, action):
            raise RuntimeError("boom in the worker's env")

    return Failing(gym.make("CartPole-v1"))


class StopAt(BaseCallback):
    def __init__(self, step: int, exception: type[BaseException] | None = None) -> None:
        super().__init__()
        self.step, self.exception = step, exception

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.step and self.exception is not None:
            raise self.exception
        return self.num_timesteps < self.step


def test_critic_gradient_stops_at_trunk():
    obs_space, act_space = spaces.Box(-1, 1, (4,)), spaces.Discrete(2)
    for detach in (True, False):
        policy = A3CPolicy(obs_space, act_space, lambda _: 1e-3, detach_critic=detach, **TINY)
        values = policy.predict_values(th.randn(5, 4))
        values.pow(2).sum().backward()
        trunk_grads = [p.grad for p in policy.mlp_extractor.trunk.parameters()]
        assert all(p.grad is not None for p in policy.mlp_extractor.critic_branch.parameters())
        if detach:
            assert all(g is None for g in trunk_grads)
        else:
            assert any(g is not None and g.abs().sum() > 0 for g in trunk_grads)
    # The actor loss does train the trunk.
    policy.zero_grad()
    policy.get_distribution(th.randn(5, 4)).log_prob(th.zeros(5)).sum().backward()
    assert all(p.grad is not None for p in policy.mlp_extractor.trunk.parameters())


def test_workers_update_shared_parameters_and_callbacks(worker_pids, tmp_path):
    model = A3C("MlpPolicy", "CartPole-v1", n_workers=2, n_steps=5, learning_rate=1e-2, policy_kwargs=TINY, seed=0)
    before = [p.detach().clone() for p in model.policy.parameters()]
    eval_callback = EvalCallback(make_vec_env("CartPole-v1"), eval_freq=200, n_eval_episodes=1, log_path=str(tmp_path))
    checkpoint = CheckpointCallback(save_freq=300, save_path=str(tmp_path))
    model.learn(600, callback=[eval_callback, checkpoint], progress_bar=True)
    # Only the workers optimise; the main process sees their in-place updates of the shared tensors.
    assert any(not th.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))
    assert model.num_timesteps == 600 and eval_callback.n_calls == 600
    np.testing.assert_array_equal(np.load(tmp_path / "evaluations.npz")["timesteps"], [200, 400, 600])
    assert (tmp_path / "rl_model_600_steps.zip").exists()
    assert len(model.ep_info_buffer) > 0
    assert_no_worker_alive(worker_pids)


def test_worker_exception_reaches_main_process(worker_pids):
    model = A3C("MlpPolicy", failing_cartpole, n_workers=2, policy_kwargs=TINY)
    start = time.monotonic()
    with pytest.raises(A3CWorkerError, match="boom in the worker's env") as error:
        model.learn(10_000)
    assert "Traceback" in str(error.value) and time.monotonic() - start < 20
    assert_no_worker_alive(worker_pids)


@pytest.mark.parametrize("exception", [None, KeyboardInterrupt])
def test_stop_and_interrupt_leave_no_worker(worker_pids, exception):
    model = A3C("MlpPolicy", "CartPole-v1", n_workers=2, policy_kwargs=TINY)
    if exception is None:
        model.learn(100_000, callback=StopAt(300))
        assert 300 <= model.num_timesteps < 100_000
    else:
        with pytest.raises(exception):
            model.learn(100_000, callback=StopAt(300, exception))
    assert_no_worker_alive(worker_pids)


def test_vec_env_box_actions_save_load(tmp_path):
    # rl-zoo3 passes a DummyVecEnv: workers rebuild Pendulum-v1 from its EnvSpec.
    model = A3C("ActorCriticMlpPolicy", make_vec_env("Pendulum-v1"), n_workers=2, n_steps=5, policy_kwargs=dict(net_arch=[8]))
    model.learn(400)
    assert model.num_timesteps == 400
    obs = np.random.default_rng(0).uniform(-1, 1, size=(10, 3)).astype(np.float32)
    model.save(tmp_path / "a3c.zip")
    loaded = A3C.load(tmp_path / "a3c.zip", env=make_vec_env("Pendulum-v1"))
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    assert loaded.n_workers == 2 and loaded.n_steps == 5 and loaded.env_fn is not None


def test_workers_episodes_reach_the_monitor_file(tmp_path):
    # rl-zoo3 wraps its env in a Monitor writing <log dir>/0.monitor.csv; its plots read that file
    from stable_baselines3.common.monitor import load_results

    model = A3C("MlpPolicy", make_vec_env("CartPole-v1", monitor_dir=str(tmp_path)), n_workers=2, seed=0)
    model.learn(600)
    rows = load_results(str(tmp_path))
    assert len(rows) == model._episode_num > 2
    assert rows["l"].sum() <= 600 and set(rows["r"]) <= set(rows["l"].astype(float))


def test_construction_errors():
    env = gym.make("CartPole-v1")
    env.action_space = spaces.MultiBinary(2)
    with pytest.raises(AssertionError, match="only supports"):
        A3C("MlpPolicy", env)
    with pytest.raises(ValueError, match="n_workers"):
        A3C("MlpPolicy", "CartPole-v1", n_workers=0)
    with pytest.raises(ValueError, match="start_method"):
        A3C("MlpPolicy", "CartPole-v1", start_method="fork")


def test_workers_rebuild_env_with_recorded_wrappers():
    vec_env = make_vec_env("CartPole-v1", wrapper_class=CourseA3CReward, wrapper_kwargs=dict(failure_reward=-5.0))
    env = env_factory_from_vec_env(vec_env)()
    # Shaping outside Monitor: the workers log CartPole's own returns.
    assert isinstance(env, CourseA3CReward) and isinstance(env.env, Monitor) and env.failure_reward == -5.0
    env.reset(seed=0)
    terminated = False
    while not terminated:
        _, reward, terminated, _, info = env.step(0)
    assert reward == -5.0 and info["episode"]["r"] == info["episode"]["l"]

"""
A3C unit tests. Workers are real processes (forkserver: the first test pays for the fork server's imports).
The test module is pickled by value so that its helper envs and factories reach the workers.
"""

import copy
import multiprocessing as mp
import os
import queue
import sys
import time

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor

from sb3_course import A3C
from sb3_course.a3c import A3CPolicy, A3CWorkerError
from sb3_course.a3c import pool as a3c_pool
from sb3_course.a3c.envs import worker_env_factory
from sb3_course.a3c.worker import Rollout, Worker
from sb3_course.common.returns import discounted_returns
from sb3_course.common.wrappers import CourseA3CReward
from sb3_course.parity.a2c_updates import A2CUpdates, A2CUpdatesWorker

TINY = dict(net_arch=dict(trunk=[8, 8], vf=[8]))

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def worker_pids(monkeypatch):
    """PIDs of every worker process started during the test."""
    pids: list[int] = []
    start = a3c_pool.WorkerPool.start

    def recording_start(pool):
        start(pool)
        pids.extend(process.pid for process in pool.processes)

    monkeypatch.setattr(a3c_pool.WorkerPool, "start", recording_start)
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


def cartpole_failing_at_step_50() -> gym.Env:
    class FailingAt50(gym.Wrapper):
        steps = 0

        def step(self, action):
            self.steps += 1
            if self.steps == 50:
                time.sleep(0.5)  # the main process has seen the 50th step and stops the pool meanwhile
                raise RuntimeError("boom at the budget's last step")
            return super().step(action)

    return FailingAt50(gym.make("CartPole-v1"))


def test_worker_exception_at_the_last_step_of_the_budget_is_not_lost(worker_pids):
    # The shared counter reaches the budget before the env fails: the main loop may end before the error arrives
    model = A3C("MlpPolicy", cartpole_failing_at_step_50, n_workers=1, policy_kwargs=TINY)
    with pytest.raises(A3CWorkerError, match="boom at the budget's last step"):
        model.learn(50)
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
    env.action_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))  # A2C refuses it too
    with pytest.raises(AssertionError, match="only supports"):
        A3C("MlpPolicy", env)
    with pytest.raises(ValueError, match="n_workers"):
        A3C("MlpPolicy", "CartPole-v1", n_workers=0)
    with pytest.raises(ValueError, match="start_method"):
        A3C("MlpPolicy", "CartPole-v1", start_method="fork")


def test_workers_rebuild_env_with_recorded_wrappers():
    vec_env = make_vec_env("CartPole-v1", wrapper_class=CourseA3CReward, wrapper_kwargs=dict(failure_reward=-5.0))
    env = worker_env_factory(vec_env)()
    # Shaping outside Monitor: the workers log CartPole's own returns.
    assert isinstance(env, CourseA3CReward) and isinstance(env.env, Monitor) and env.failure_reward == -5.0
    env.reset(seed=0)
    terminated = False
    while not terminated:
        _, reward, terminated, _, info = env.step(0)
    assert reward == -5.0 and info["episode"]["r"] == info["episode"]["l"]


def in_process_worker(model: A3C, total_timesteps: int = 10_000) -> Worker:
    """Worker 0 of ``model`` in the test process (no child process): its rollouts and updates, called directly."""
    counter, stop_event = mp.Value("q", 0), mp.Event()
    config = model._worker_config(total_timesteps)
    return model.worker_class(0, config, model.policy, counter, stop_event, queue.Queue())


@pytest.mark.parametrize("worker_class", [Worker, A2CUpdatesWorker])
def test_rollouts_end_with_the_episode_or_run_across_it(worker_class):
    # Episodes of exactly 3 steps (time limit) with reward 1; V is 0.5 everywhere.
    model = A3C(
        "MlpPolicy", lambda: gym.make("CartPole-v1", max_episode_steps=3), n_workers=1, n_steps=7, gamma=0.9,
        policy_kwargs=TINY, seed=0,
    )  # fmt: skip
    model.worker_class = worker_class  # type: ignore[misc]
    worker = in_process_worker(model)
    worker._value = lambda obs: 0.5  # type: ignore[method-assign]
    rollout = worker.collect_rollout()
    assert rollout is not None
    if worker_class is Worker:
        # Cut at the truncation, bootstrapped from V(s_3) in the last reward (as across episodes below)
        assert (rollout.rewards, rollout.episode_ends, rollout.last_value) == ([1.0, 1.0, 1.45], [False, False, True], 0.0)
        assert len(rollout.episode_infos) == 1
        # G_2 = 1 + 0.9 * V(s_3), G_1 = 1 + 0.9 * G_2, G_0 = 1 + 0.9 * G_1
        returns = discounted_returns(np.array(rollout.rewards), 0.9, rollout.last_value, rollout.episode_ends)
        np.testing.assert_allclose(returns, [3.0745, 2.305, 1.45], rtol=1e-6)
        return
    # 7 steps across two truncations: gamma * V(s_T) joins the reward of each episode's last step (as SB3's A2C)
    assert rollout.rewards == [1.0, 1.0, 1.45, 1.0, 1.0, 1.45, 1.0]
    assert rollout.episode_ends == [False, False, True, False, False, True, False]
    assert rollout.last_value == 0.5 and [info["l"] for info in rollout.episode_infos] == [3, 3]
    # The next rollout goes on inside the third episode: 2 steps to its end, 3 of the fourth, 2 of the fifth
    assert worker.collect_rollout().episode_ends == [False, True, False, False, True, False, False]  # type: ignore[union-attr]


class CartPoleActions(gym.Wrapper):
    """CartPole with another action space: the first dimension of an action, modulo 2, pushes the cart."""

    def __init__(self, action_space: spaces.Space) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.action_space = action_space

    def step(self, action):
        assert self.action_space.contains(action), action
        return self.env.step(int(np.asarray(action).flat[0]) % 2)


ACTION_SPACES = {"Discrete": None, "MultiDiscrete": spaces.MultiDiscrete([3, 2]), "MultiBinary": spaces.MultiBinary(3)}


@pytest.mark.parametrize("action_space", list(ACTION_SPACES))
@pytest.mark.parametrize(("gae_lambda", "normalize_advantage"), [(1.0, False), (0.9, True)])
def test_one_worker_with_fixed_rollouts_and_mean_loss_takes_a2cs_update(gae_lambda, normalize_advantage, action_space):
    """
    A3C's update equations against SB3's A2C: on A2C's own rollout (64 CartPole steps across episode ends) and
    from the same weights, the worker's step with A2C's rollouts and mean loss (``A2CUpdatesWorker``, the parity
    suite's implementation check) lands where ``A2C.train()`` does (GAE with lambda 1 = the worker's Monte-Carlo
    returns bootstrapped from V; GAE with lambda 0.9 and standardised advantages as A2C's). CartPole's Discrete
    actions, or MultiDiscrete / MultiBinary ones.
    """
    space = ACTION_SPACES[action_space]
    env_fn = (lambda: gym.make("CartPole-v1")) if space is None else (lambda: CartPoleActions(space))
    # No clipping at this norm: the gradients themselves are compared (Adam's first step is about lr * sign(g))
    settings = dict(learning_rate=1e-3, gamma=0.99, vf_coef=0.5, ent_coef=0.01, max_grad_norm=100.0, policy_kwargs=TINY)
    a2c = A2C(
        A3CPolicy, make_vec_env(env_fn, n_envs=1, seed=0), n_steps=64, gae_lambda=gae_lambda, use_rms_prop=False,
        normalize_advantage=normalize_advantage, seed=0, **settings,
    )  # fmt: skip

    class Snapshot(BaseCallback):
        def _on_rollout_end(self) -> None:
            self.weights = copy.deepcopy(self.model.policy.state_dict())
            self.last_obs, self.last_done = self.model._last_obs.copy(), bool(self.model._last_episode_starts[0])

        def _on_step(self) -> bool:
            return True

    def record_gradients(optimizer: th.optim.Optimizer) -> list[th.Tensor]:
        gradients: list[th.Tensor] = []
        step = optimizer.step

        def recording_step(*args, **kwargs):
            gradients.extend(p.grad.clone() for group in optimizer.param_groups for p in group["params"])
            return step(*args, **kwargs)

        optimizer.step = recording_step  # type: ignore[method-assign]
        return gradients

    snapshot, a2c_gradients = Snapshot(), record_gradients(a2c.policy.optimizer)
    a2c.learn(64, callback=snapshot)  # one rollout, one train()
    buffer = a2c.rollout_buffer
    starts = buffer.episode_starts[:, 0].astype(bool)
    episode_ends = [*starts[1:], snapshot.last_done]
    assert 1 <= sum(episode_ends) < 64, "the rollout must run across episode ends"

    model = A3C(
        "MlpPolicy", env_fn, n_workers=1, n_steps=64, normalize_returns=False, gae_lambda=gae_lambda,
        normalize_advantage=normalize_advantage, **settings,
    )  # fmt: skip
    A2CUpdates().init_callback(model)
    model.policy.load_state_dict(snapshot.weights)
    worker = in_process_worker(model)
    worker_gradients = record_gradients(worker.optimizer)
    last_value = 0.0 if snapshot.last_done else worker._value(snapshot.last_obs[0])
    rollout = Rollout(
        observations=list(buffer.observations),  # train() flattened them (one env: in time order)
        actions=list(buffer.actions),
        rewards=[float(r) for r in buffer.rewards[:, 0]],
        episode_ends=episode_ends,
        last_value=last_value,
    )
    worker.update(rollout)
    assert len(worker_gradients) == len(a2c_gradients) > 0
    for worker_gradient, a2c_gradient in zip(worker_gradients, a2c_gradients, strict=True):
        th.testing.assert_close(worker_gradient, a2c_gradient, rtol=1e-5, atol=1e-7)
    for name, param in a2c.policy.state_dict().items():
        th.testing.assert_close(model.policy.state_dict()[name], param, rtol=1e-5, atol=1e-7, msg=name)
    # And it moved: the comparison is not of two untouched networks
    assert not th.equal(model.policy.state_dict()["action_net.weight"], snapshot.weights["action_net.weight"])


def test_a2c_updates_need_n_steps():
    with pytest.raises(ValueError, match="needs n_steps"):
        A3C("MlpPolicy", "CartPole-v1", n_workers=1).learn(10, callback=A2CUpdates())


def test_a2c_updates_callback_of_the_implementation_check_reaches_the_workers(monkeypatch):
    """
    The parity suite's ``--course-params`` for A3C name the callback that rl-zoo3 builds from a recipe's
    ``callback:`` (``sb3-course train`` builds the key ``a3c`` as ``A3C``): it makes the model's ``worker_class``
    ``A2CUpdatesWorker`` before the workers are configured, and the worker processes run that class.
    """
    from rl_zoo3.utils import get_callback_list

    from sb3_course.zoo.matched import SB3_EXPRESSIBLE

    (name,) = [param.partition(":")[2] for param in SB3_EXPRESSIBLE["a3c"] if param.startswith("callback:")]
    (callback,) = get_callback_list({"callback": name})
    model = A3C("MlpPolicy", "CartPole-v1", n_workers=1, n_steps=8, policy_kwargs=TINY)
    assert model.worker_class is Worker
    init, classes_sent = a3c_pool.WorkerPool.__init__, []

    def recording_init(pool, *args, **kwargs):
        init(pool, *args, **kwargs)
        classes_sent.extend(process._args[0] for process in pool.processes)

    monkeypatch.setattr(a3c_pool.WorkerPool, "__init__", recording_init)
    # The worker process imports the class by name (A2CUpdatesWorker must be importable): it trains
    assert model.learn(64, callback=callback).num_timesteps == 64
    assert model.worker_class is A2CUpdatesWorker and classes_sent == [A2CUpdatesWorker]
    assert A3C.worker_class is Worker
    with pytest.raises(TypeError, match="A2CUpdates makes an A3C model"):
        A2CUpdates().init_callback(A2C("MlpPolicy", "CartPole-v1"))

"""
Conformance with SB3's behaviour: the checks of SB3's own test suite (test_save_load, test_predict, test_callbacks,
test_spaces, test_train_eval_mode, test_deterministic), parametrised over the five course algorithms and, where
it shows that a check itself is right, over SB3's DQN, SAC and A2C. A3C starts worker processes only in the
tests that call ``learn()``; the others use it without training.
"""

import copy
import io
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecFrameStack, VecNormalize
from torch import nn

from sb3_course import A3C, REINFORCE, CourseDDPG, CourseDQN, CourseSAC

cloudpickle.register_pickle_by_value(sys.modules[__name__])

DISCRETE, BOX = spaces.Discrete(3), spaces.Box(-1, 1, (2,), np.float32)
OBSERVATION_SPACES = {
    "box": spaces.Box(-1, 1, (4,), np.float32),
    "box2d": spaces.Box(-1, 1, (2, 3), np.float32),
    "box64": spaces.Box(-1, 1, (4,), np.float64),
    "discrete": spaces.Discrete(5),
}


@dataclass(frozen=True)
class Algo:
    """An algorithm with the settings that make it train in a fraction of a second."""

    cls: type[BaseAlgorithm]
    env_id: str
    kwargs: dict[str, Any]
    custom_net_arch: Any  # hidden layers of width 7, in the algorithm's net_arch format
    action_spaces: tuple[spaces.Space, ...]
    marks: tuple = field(default=())

    @property
    def id(self) -> str:
        return self.cls.__name__

    def param(self) -> Any:
        return pytest.param(self, id=self.id, marks=self.marks)


OFF_POLICY = dict(learning_starts=20, buffer_size=1_000, batch_size=8)
COURSE_ALGOS = [
    Algo(CourseDQN, "CartPole-v1", dict(policy_kwargs=dict(net_arch=[8]), **OFF_POLICY), [7, 7], (DISCRETE,)),
    Algo(
        CourseDDPG,
        "Pendulum-v1",
        dict(policy_kwargs=dict(net_arch=[8], state_encoder_dim=4, action_encoder_dim=4), **OFF_POLICY),
        dict(pi=[7], qf=[7]),
        (BOX, spaces.Box(-2, 2, (2,), np.float64)),
    ),
    Algo(
        CourseSAC,
        "Pendulum-v1",
        dict(policy_kwargs=dict(net_arch=[8]), **OFF_POLICY),
        [7, 7],
        (BOX, spaces.Box(-2, 2, (2,), np.float64)),
    ),
    Algo(REINFORCE, "CartPole-v1", dict(policy_kwargs=dict(net_arch=[8]), n_episodes=1), [7], (DISCRETE, BOX)),
    Algo(
        A3C,
        "CartPole-v1",
        dict(policy_kwargs=dict(net_arch=dict(trunk=[8], vf=[8])), n_workers=1, n_steps=5),
        dict(trunk=[7], vf=[7]),
        (DISCRETE, BOX),
    ),
]
# SB3's own algorithms: the same checks pass on them, so the checks test SB3's behaviour and nothing else.
SB3_ALGOS = [
    Algo(DQN, "CartPole-v1", dict(policy_kwargs=dict(net_arch=[8]), **OFF_POLICY), [7, 7], (DISCRETE,)),
    Algo(SAC, "Pendulum-v1", dict(policy_kwargs=dict(net_arch=[8]), **OFF_POLICY), [7, 7], (BOX,)),
    Algo(A2C, "CartPole-v1", dict(policy_kwargs=dict(net_arch=[8]), n_steps=8), [7], (DISCRETE, BOX)),
]
COURSE = [algo.param() for algo in COURSE_ALGOS]
COURSE_AND_SB3 = COURSE + [algo.param() for algo in SB3_ALGOS]
SINGLE_PROCESS = [algo.param() for algo in COURSE_ALGOS if algo.cls is not A3C]


class SpaceEnv(gym.Env):
    """
    A check_env-clean env with any observation and action space (no registered id); episodes of 10 steps, reward
    :meth:`reward` (here -|obs|).
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        self.observation_space, self.action_space = observation_space, action_space
        self.t = 0

    def _obs(self) -> Any:
        return self.observation_space.sample()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.observation_space.seed(seed)
        self.t = 0
        return self._obs(), {}

    def reward(self, obs: Any, action: Any) -> float:
        return -float(np.abs(np.asarray(obs, dtype=np.float64)).mean())

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self.t += 1
        obs = self._obs()
        return obs, self.reward(obs, action), False, self.t >= 10, {}


def space_env_fn(observation_space: spaces.Space, action_space: spaces.Space):
    return lambda: SpaceEnv(observation_space, action_space)


def make_model(algo: Algo, env: Any = None, **overrides: Any) -> BaseAlgorithm:
    """The algorithm on ``env`` (default: its env id); A3C gets env factories, as its workers need."""
    if env is None:
        env = algo.env_id
    elif algo.cls is A3C and isinstance(env, gym.Env):
        env = space_env_fn(env.observation_space, env.action_space)
    return algo.cls("MlpPolicy", env, **{**algo.kwargs, **overrides})


def sample_observations(space: spaces.Space, n: int, seed: int = 0) -> Any:
    """``n`` observations of ``space`` (seeded with ``seed``) as a batch: an array, or a dict of arrays for ``Dict``."""
    space.seed(seed)
    samples = [space.sample() for _ in range(n)]
    if isinstance(space, spaces.Dict):
        return {key: np.stack([sample[key] for sample in samples]) for key in space.spaces}
    return np.stack([np.asarray(sample) for sample in samples])


def space_cases() -> list:
    """Every observation space with the first action space, and every other action space with a Box observation."""
    cases = []
    for algo in COURSE_ALGOS:
        first, *others = algo.action_spaces
        for name, obs_space in OBSERVATION_SPACES.items():
            cases.append(pytest.param(algo, obs_space, first, id=f"{algo.id}-{name}-{first}"))
        for action_space in others:
            cases.append(pytest.param(algo, OBSERVATION_SPACES["box"], action_space, id=f"{algo.id}-box-{action_space}"))
    return cases


def assert_same_parameters(model: BaseAlgorithm, other: BaseAlgorithm) -> None:
    for (name, param), (_, other_param) in zip(
        model.policy.state_dict().items(), other.policy.state_dict().items(), strict=True
    ):
        assert th.equal(param, other_param), name


# -- spaces and predict (SB3 test_spaces.py, test_predict.py) -------------------------------------------------


@pytest.mark.parametrize("observation_space", OBSERVATION_SPACES.values(), ids=OBSERVATION_SPACES.keys())
@pytest.mark.parametrize("action_space", [DISCRETE, BOX, spaces.Box(-2, 2, (2,), np.float64)], ids=str)
def test_test_envs_are_check_env_clean(observation_space, action_space):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Only SB3's advice may remain: flatten a 2-d Box (the MLP policies do), prefer float32 actions in [-1, 1]
        warnings.filterwarnings("ignore", message=".*[Ww]e recommend")
        check_env(SpaceEnv(observation_space, action_space))


@pytest.mark.parametrize(("algo", "observation_space", "action_space"), space_cases())
def test_predict_shapes_for_every_supported_space(algo, observation_space, action_space):
    model = make_model(algo, SpaceEnv(observation_space, action_space), seed=0)
    single = sample_observations(observation_space, 1)[0]
    batch = sample_observations(observation_space, 3)
    for deterministic in (True, False):
        action, state = model.predict(single, deterministic=deterministic)
        assert (
            state is None and action.shape == action_space.shape and action_space.contains(action.astype(action_space.dtype))
        )
        actions, _ = model.predict(batch, deterministic=deterministic)
        assert actions.shape == (3, *action_space.shape)
        assert all(action_space.contains(a.astype(action_space.dtype)) for a in actions)
    if algo.cls is not A3C:
        # The whole training path (buffers, losses) with this space; A3C's workers are tested with CartPole.
        model.learn(40)
        assert model.num_timesteps >= 40


@pytest.mark.parametrize("algo", COURSE_AND_SB3)
def test_plain_gym_env_is_wrapped_in_monitor_and_vec_env(algo):
    env = gym.make(algo.env_id)
    model = make_model(algo, env if algo.cls is not A3C else lambda: gym.make(algo.env_id))
    vec_env = model.get_env()
    assert isinstance(vec_env, DummyVecEnv) and isinstance(vec_env.envs[0], Monitor)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action.astype(env.action_space.dtype))


# -- save / load (SB3 test_save_load.py) --------------------------------------------------------------------------


@pytest.mark.parametrize("algo", COURSE_AND_SB3)
def test_save_load_parameters_and_exact_match(algo, tmp_path):
    model = make_model(algo, seed=0)
    if algo.cls is not A3C:
        model.learn(40)
    obs = sample_observations(model.observation_space, 5)
    expected, _ = model.predict(obs, deterministic=True)
    params = copy.deepcopy(model.get_parameters())

    # set_parameters round trip after a change of every weight
    with th.no_grad():
        for param in model.policy.parameters():
            param.add_(1.0)
    assert not th.equal(next(iter(model.get_parameters()["policy"].values())), next(iter(params["policy"].values())))
    model.set_parameters(params, exact_match=True)
    assert th.equal(next(iter(model.get_parameters()["policy"].values())), next(iter(params["policy"].values())))
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], expected)

    # an unknown object, a missing object (allowed without exact_match), a missing tensor
    with pytest.raises(ValueError, match="invalid object name"):
        model.set_parameters({**params, "not_a_module": {}}, exact_match=False)
    # (A3C saves only the policy: each worker has its own optimizer, started afresh by every learn())
    # every other algorithm saves its optimizers' state along with the policy
    assert list(params) == ["policy"] if algo.cls is A3C else len(params) >= 2
    if algo.cls is not A3C:
        partial = {name: state for name, state in params.items() if name == "policy"}
        with pytest.raises(ValueError, match="Names of parameters do not match"):
            model.set_parameters(partial, exact_match=True)
        model.set_parameters(partial, exact_match=False)
    incomplete = {name: dict(state) for name, state in params.items()}
    del incomplete["policy"][next(iter(incomplete["policy"]))]
    with pytest.raises(RuntimeError, match="Missing key"):
        model.set_parameters(incomplete, exact_match=True)

    model.save(tmp_path / "model")
    for loaded in (
        algo.cls.load(tmp_path / "model.zip", env=make_model(algo).get_env(), device="cpu"),
        algo.cls.load(tmp_path / "model", device="cpu"),
    ):
        assert type(loaded) is algo.cls and loaded.num_timesteps == model.num_timesteps
        assert_same_parameters(model, loaded)
        np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
        assert loaded.device == th.device("cpu")
    assert loaded.get_env() is None

    # file objects, as SB3 allows
    file = io.BytesIO()
    model.save(file)
    file.seek(0)
    np.testing.assert_array_equal(algo.cls.load(file).predict(obs, deterministic=True)[0], expected)


@pytest.mark.parametrize("algo", COURSE_AND_SB3)
def test_excluded_and_included_save_params(algo, tmp_path):
    model = make_model(algo, verbose=2)
    model.save(tmp_path / "excluded.zip", exclude=["verbose", "gamma"])
    data, _, _ = load_from_zip_file(tmp_path / "excluded.zip")
    assert "verbose" not in data and "gamma" not in data
    assert algo.cls.load(tmp_path / "excluded.zip").verbose == 0
    model.save(tmp_path / "included.zip", exclude=["verbose", "gamma"], include=["verbose"])
    data, _, _ = load_from_zip_file(tmp_path / "included.zip")
    assert data["verbose"] == 2 and "gamma" not in data
    # the env is never saved, whatever the include list (SB3 excludes it explicitly)
    assert "env" not in data and algo.cls.load(tmp_path / "included.zip").verbose == 2


@pytest.mark.parametrize("algo", COURSE_AND_SB3)
def test_set_env_compatible_and_incompatible(algo):
    model = make_model(algo)
    other = make_model(algo).get_env()
    model.set_env(other)
    assert model.get_env() is other and model.n_envs == 1
    incompatible = "Pendulum-v1" if algo.env_id == "CartPole-v1" else "MountainCarContinuous-v0"
    with pytest.raises(ValueError, match="spaces do not match"):
        model.set_env(DummyVecEnv([lambda: gym.make(incompatible)]))
    assert model.get_env() is other


# -- callbacks, logging, continuation (SB3 test_callbacks.py, test_logger.py, test_run.py) ------------------------


class StopAfter(BaseCallback):
    def __init__(self, n_calls: int) -> None:
        super().__init__()
        self.stop_at = n_calls

    def _on_step(self) -> bool:
        return self.n_calls < self.stop_at


@pytest.mark.parametrize("algo", COURSE)
def test_callbacks_tensorboard_and_continuation(algo, tmp_path):
    model = make_model(algo, tensorboard_log=str(tmp_path / "tb"), seed=0)
    name = algo.cls.__name__
    eval_callback = EvalCallback(make_vec_env(algo.env_id), eval_freq=50, n_eval_episodes=1, log_path=str(tmp_path / "eval"))
    checkpoints = CheckpointCallback(save_freq=100, save_path=str(tmp_path / "ckpt"), save_replay_buffer=True)
    model.learn(100, callback=CallbackList([eval_callback, checkpoints]))
    assert model.num_timesteps >= 100 and eval_callback.n_calls == model.num_timesteps
    assert (tmp_path / "eval" / "evaluations.npz").exists() and (tmp_path / "ckpt" / "rl_model_100_steps.zip").exists()
    if hasattr(model, "replay_buffer"):
        assert (tmp_path / "ckpt" / "rl_model_replay_buffer_100_steps.pkl").exists()
    assert [p.name for p in (tmp_path / "tb").iterdir()] == [f"{name}_1"]

    # continuation: same TensorBoard run, the step counter goes on; a reward threshold stops at the first eval
    start = model.num_timesteps
    stop_on_reward = StopTrainingOnRewardThreshold(reward_threshold=-np.inf)
    threshold_eval = EvalCallback(
        make_vec_env(algo.env_id), eval_freq=30, n_eval_episodes=1, callback_on_new_best=stop_on_reward
    )
    model.learn(1_000, callback=threshold_eval, reset_num_timesteps=False)
    assert start + 30 <= model.num_timesteps < start + 1_000 and threshold_eval.n_calls == 30
    assert [p.name for p in (tmp_path / "tb").iterdir()] == [f"{name}_1"]

    # learn() again from zero: a new TensorBoard run; a callback returning False stops training
    stop = StopAfter(25)
    model.learn(1_000, callback=stop)
    assert stop.n_calls == 25 and model.num_timesteps < 1_000
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == [f"{name}_1", f"{name}_2"]
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb" / f"{name}_1").iterdir())


# -- policies: train / eval mode, custom networks (SB3 test_train_eval_mode.py, test_custom_policy.py) -------------


class FlattenBatchNormDropoutExtractor(BaseFeaturesExtractor):
    """SB3's test extractor: batch norm and dropout, so train and eval mode give different outputs."""

    def __init__(self, observation_space: spaces.Space) -> None:
        super().__init__(observation_space, get_flattened_obs_dim(observation_space))
        self.flatten = nn.Flatten()
        self.batch_norm = nn.BatchNorm1d(self._features_dim)
        self.dropout = nn.Dropout(0.5)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.dropout(self.batch_norm(self.flatten(observations)))


def batch_norm_stats(model: BaseAlgorithm) -> list[th.Tensor]:
    return [m.running_mean.clone() for m in model.policy.modules() if isinstance(m, nn.BatchNorm1d)]


@pytest.mark.parametrize("algo", COURSE)
def test_train_eval_mode_with_batch_norm_and_dropout(algo):
    policy_kwargs = {**algo.kwargs["policy_kwargs"], "features_extractor_class": FlattenBatchNormDropoutExtractor}
    model = make_model(algo, policy_kwargs=policy_kwargs, seed=0)
    obs = sample_observations(model.observation_space, 20)
    stats = batch_norm_stats(model)
    assert stats
    # predict() runs in eval mode: dropout off and running statistics unchanged
    first, _ = model.predict(obs, deterministic=True)
    for _ in range(3):
        np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], first)
    assert not model.policy.training
    assert all(th.equal(a, b) for a, b in zip(stats, batch_norm_stats(model), strict=True))
    if algo.cls is not A3C:
        # training runs in train mode: the running statistics move
        model.learn(60)
        assert any(not th.equal(a, b) for a, b in zip(stats, batch_norm_stats(model), strict=True))


@pytest.mark.parametrize("algo", COURSE)
def test_custom_net_arch_and_activation(algo):
    policy_kwargs = {**algo.kwargs["policy_kwargs"], "net_arch": algo.custom_net_arch, "activation_fn": nn.Tanh}
    model = make_model(algo, policy_kwargs=policy_kwargs)
    modules = list(model.policy.modules())
    assert any(isinstance(m, nn.Tanh) for m in modules) and not any(isinstance(m, nn.ReLU) for m in modules)
    assert any(isinstance(m, nn.Linear) and m.out_features == 7 for m in modules)
    model.predict(sample_observations(model.observation_space, 2))


# -- vectorised envs (SB3 test_vec_envs.py, test_vec_normalize.py) -----------------------------------------------


@pytest.mark.parametrize("algo", SINGLE_PROCESS)
def test_subproc_vec_env_with_vec_normalize_and_frame_stack(algo):
    # VecNormalize outermost: off-policy algorithms store its unnormalised observations (SB3's order too)
    env = VecNormalize(VecFrameStack(SubprocVecEnv([lambda: gym.make(algo.env_id)] * 2, start_method="fork"), 2))
    try:
        overrides = dict(n_episodes=2) if algo.cls is REINFORCE else {}
        model = make_model(algo, env, **overrides).learn(60)
        assert model.num_timesteps >= 60 and model.n_envs == 2
        obs = env.reset()
        actions, _ = model.predict(obs)
        assert actions.shape[0] == 2 and obs.shape == (2, 2 * gym.make(algo.env_id).observation_space.shape[0])
    finally:
        env.close()


def test_a3c_rejects_vec_env_wrappers_it_cannot_copy():
    env = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    with pytest.raises(ValueError, match="cannot copy VecNormalize"):
        A3C("MlpPolicy", env, n_workers=1)


# -- determinism (SB3 test_deterministic.py) ---------------------------------------------------------------------


@pytest.mark.parametrize("algo", SINGLE_PROCESS)
def test_same_seed_same_parameters_and_actions(algo):
    obs = sample_observations(gym.make(algo.env_id).observation_space, 10)
    runs = []
    for _ in range(2):
        model = make_model(algo, seed=3).learn(120)
        actions = [model.predict(obs, deterministic=deterministic)[0] for deterministic in (True, False)]
        runs.append((model, actions))
    (model, actions), (other, other_actions) = runs
    assert_same_parameters(model, other)
    for a, b in zip(actions, other_actions, strict=True):
        np.testing.assert_array_equal(a, b)

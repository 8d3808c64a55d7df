"""
A3C as a drop-in for SB3's A2C (issue 17): each check runs on A2C first, from one list, so that it is shown to test
SB3's behaviour. A3C runs one or two real worker processes for a few hundred steps.
"""

import inspect
import math
import sys
from typing import Any

import cloudpickle
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from test_conformance import SpaceEnv, sample_observations
from torch import nn

from sb3_course import A3C
from sb3_course.common.validation import MAX_WORKERS
from sb3_course.zoo import SB3_COURSE_POLICIES

cloudpickle.register_pickle_by_value(sys.modules[__name__])

IMAGE = spaces.Box(0, 255, (36, 36, 3), np.uint8)  # channel-last: SB3 adds VecTransposeImage (NatureCNN's minimum)
OBSERVATIONS = {
    "MlpPolicy": spaces.Box(-1, 1, (4,), np.float32),
    "CnnPolicy": IMAGE,
    "MultiInputPolicy": spaces.Dict({"vector": spaces.Box(-1, 1, (3,), np.float32), "image": IMAGE}),
}
# Small settings for each class: A2C as SB3's tests, A3C with one worker
SETTINGS: dict[type[BaseAlgorithm], dict[str, Any]] = {
    A2C: dict(n_steps=8),
    A3C: dict(n_workers=1, n_steps=8),
}
CLASSES = [pytest.param(cls, id=cls.__name__) for cls in SETTINGS]


class PlainEnv(SpaceEnv):
    """:class:`SpaceEnv` (an env class with no registered id, no ``EnvSpec``) with reward ``t mod 3``."""

    def reward(self, obs: Any, action: Any) -> float:
        return float(self.t % 3)


def make(cls: type[BaseAlgorithm], policy: str = "MlpPolicy", env: Any = "CartPole-v1", **kwargs: Any) -> BaseAlgorithm:
    return cls(policy, env, **{**SETTINGS[cls], **kwargs})


def test_every_a2c_argument_is_an_a3c_argument_at_the_same_position():
    a2c = list(inspect.signature(A2C.__init__).parameters)
    a3c = list(inspect.signature(A3C.__init__).parameters)
    assert a3c[: len(a2c) - 1] == a2c[:-1] and a3c[-1] == a2c[-1] == "_init_setup_model"
    # sb3_course.zoo.register() (run by other tests) adds the course policies to A2C's aliases; SB3's own three
    assert {"MlpPolicy", "CnnPolicy", "MultiInputPolicy"} <= set(A3C.policy_aliases)
    assert set(A2C.policy_aliases) - set(SB3_COURSE_POLICIES["a2c"]) <= set(A3C.policy_aliases)


@pytest.mark.parametrize("policy", list(OBSERVATIONS))
@pytest.mark.parametrize("cls", CLASSES)
def test_policies_learn_save_load_with_exact_predictions(cls, policy, tmp_path):
    # An env instance of an unregistered class: A3C's worker gets a pickled copy (images transposed as SB3 does)
    env = PlainEnv(OBSERVATIONS[policy], spaces.Discrete(3))
    model = make(cls, policy, env, seed=0, policy_kwargs=dict(net_arch=[8]))
    model.learn(96)  # a multiple of A2C's n_steps
    assert model.num_timesteps == 96 and len(model.ep_info_buffer) >= 9
    obs = sample_observations(OBSERVATIONS[policy], 5, seed=1)
    actions, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip", env=PlainEnv(OBSERVATIONS[policy], spaces.Discrete(3)))
    assert type(loaded.policy) is type(model.policy)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], actions)
    for name, tensor in model.policy.state_dict().items():
        assert th.equal(loaded.policy.state_dict()[name], tensor), name
    loaded.learn(48)


class CheckedActionsEnv(PlainEnv):
    """:class:`PlainEnv` that fails on an action outside its action space; the reward favours action 1 everywhere."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        obs, _, terminated, truncated, info = super().step(action)
        return obs, float(np.mean(np.asarray(action) == 1)), terminated, truncated, info


# A2C's predictions: MultiDiscrete actions as integers, MultiBinary ones as floats (0.0 or 1.0)
MULTI_ACTION_SPACES = {
    "MultiDiscrete": (spaces.MultiDiscrete([3, 2]), np.int64),
    "MultiBinary": (spaces.MultiBinary(3), np.float32),
}


@pytest.mark.parametrize("space_name", list(MULTI_ACTION_SPACES))
@pytest.mark.parametrize("cls", CLASSES)
def test_multi_discrete_and_multi_binary_actions(cls, space_name, tmp_path):
    action_space, dtype = MULTI_ACTION_SPACES[space_name]
    obs_space = OBSERVATIONS["MlpPolicy"]
    model = make(cls, env=CheckedActionsEnv(obs_space, action_space), seed=0, policy_kwargs=dict(net_arch=[8]))
    model.learn(200)  # A3C's worker raises (A3CWorkerError) on an action the env refuses
    assert model.num_timesteps == 200 and len(model.ep_info_buffer) >= 19
    obs = sample_observations(obs_space, 5, seed=1)
    for deterministic in (True, False):
        actions, _ = model.predict(obs, deterministic=deterministic)
        assert actions.shape == (5, *action_space.shape) and actions.dtype == dtype
        assert all(action_space.contains(action) for action in actions)
    action, _ = model.predict(obs[0], deterministic=True)
    assert action.shape == action_space.shape and action.dtype == dtype and action_space.contains(action)
    # The sampled actions vary: every dimension takes more than one value over 100 samples
    samples = model.predict(sample_observations(obs_space, 100, seed=1))[0]
    assert all(len(np.unique(samples[:, i])) > 1 for i in range(samples.shape[1]))
    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip", env=CheckedActionsEnv(obs_space, action_space))
    assert loaded.action_space == action_space
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    for name, tensor in model.policy.state_dict().items():
        assert th.equal(loaded.policy.state_dict()[name], tensor), name
    loaded.learn(48)


@pytest.mark.parametrize("cls", CLASSES)
def test_dict_observations_need_multi_input_policy(cls):
    with pytest.raises(ValueError, match="You must use `MultiInputPolicy`"):
        make(cls, "MlpPolicy", PlainEnv(OBSERVATIONS["MultiInputPolicy"], spaces.Discrete(3)))


@pytest.mark.parametrize(
    "net_arch, actor_sizes, critic_sizes",
    [
        ([8, 6], [8, 6], [8, 6]),
        (dict(pi=[8], vf=[6, 5]), [8], [6, 5]),
    ],
)
@pytest.mark.parametrize("cls", CLASSES)
def test_sb3_net_arch_forms(cls, net_arch, actor_sizes, critic_sizes):
    model = make(cls, policy_kwargs=dict(net_arch=net_arch, activation_fn=nn.Tanh))
    if cls is A2C:
        actor, critic = model.policy.mlp_extractor.policy_net, model.policy.mlp_extractor.value_net
    else:
        # The course's form: pi is the trunk (the actor's layers), vf the critic's branch on the trunk output
        assert model.policy.net_arch == dict(trunk=actor_sizes, vf=critic_sizes)
        actor, critic = model.policy.mlp_extractor.trunk, model.policy.mlp_extractor.critic_branch
    assert [m.out_features for m in actor if isinstance(m, nn.Linear)] == actor_sizes
    assert [m.out_features for m in critic if isinstance(m, nn.Linear)] == critic_sizes
    assert all(isinstance(m, nn.Tanh) for m in [*actor, *critic] if not isinstance(m, nn.Linear))
    model.learn(40)


# Wrong arguments that A2C refuses at construction (argument, value, the name the message must hold)
WRONG_ARGUMENTS = [
    ("learning_rate", "1e-3", "learning_rate"),
    ("learning_rate", -1.0, "learning_rate"),
    ("n_steps", "5", "n_steps"),
    ("n_steps", 2.5, "n_steps"),
    ("rms_prop_eps", "1e-5", "rms_prop_eps"),
    ("verbose", "1", "verbose"),
    ("seed", "3", "seed"),
    ("seed", -1, "seed"),
    ("device", "tpu", "device"),
]


@pytest.mark.parametrize(("argument", "value", "name"), WRONG_ARGUMENTS)
def test_wrong_arguments_raise_a2cs_exception_type_naming_the_argument(argument, value, name):
    with pytest.raises(Exception) as a2c_error:
        make(A2C, **{argument: value})
    with pytest.raises(type(a2c_error.value), match=name):
        make(A3C, **{argument: value})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(n_workers=2.5), TypeError, "n_workers must be an integer, got 2.5"),
        (dict(n_workers="2"), TypeError, "n_workers must be an integer"),
        (dict(n_workers=10**9), ValueError, f"n_workers must lie in \\[1, {MAX_WORKERS}\\]"),
        (dict(learning_rate=math.inf), ValueError, "learning_rate must lie in"),
        (dict(gamma="0.9"), TypeError, "gamma must be a number"),
        (dict(gamma=1.5), ValueError, "gamma must lie in"),
        (dict(vf_coef=math.nan), ValueError, "vf_coef must be a number, got nan"),
        (dict(ent_coef=math.inf), ValueError, "ent_coef must lie in"),
        (dict(max_grad_norm=0.0), ValueError, "max_grad_norm must lie in"),
        (dict(gae_lambda=2.0), ValueError, "gae_lambda must lie in"),
        (dict(sde_sample_freq=-2), ValueError, "sde_sample_freq must lie in"),
        (dict(normalize_advantage="False"), TypeError, "normalize_advantage must be True or False"),
        (dict(use_sde=1), TypeError, "use_sde must be True or False"),
        (dict(stats_window_size=0), ValueError, "stats_window_size must lie in"),
        (dict(rollout_buffer_class=object), ValueError, "rollout_buffer_class / rollout_buffer_kwargs: A3C's workers"),
        (dict(gae_lambda=0.9), ValueError, "gae_lambda < 1 needs normalize_returns=False"),
        (dict(policy_kwargs=dict(net_arch=dict(trunk=[8], pi=[8]))), ValueError, "net_arch must be a list"),
        (dict(policy_kwargs=dict(net_arch=[8, 0])), ValueError, "net_arch layer size must lie in"),
    ],
)
def test_a3c_argument_checks(kwargs, error, match):
    with pytest.raises(error, match=match):
        make(A3C, **kwargs)


def test_a3c_takes_a2cs_optimizer_and_advantage_arguments():
    model = make(A3C, use_rms_prop=True, rms_prop_eps=1e-4, normalize_advantage=True, gae_lambda=0.9, normalize_returns=False)
    assert model.policy_kwargs["optimizer_class"] is th.optim.RMSprop
    assert model.policy_kwargs["optimizer_kwargs"] == dict(alpha=0.99, eps=1e-4, weight_decay=0)
    model.learn(100)
    assert model.num_timesteps == 100


@pytest.mark.parametrize("use_sde", [False, True])
@pytest.mark.parametrize("cls", CLASSES)
def test_gsde_on_and_off(cls, use_sde):
    model = make(cls, env="Pendulum-v1", use_sde=use_sde, sde_sample_freq=4, policy_kwargs=dict(net_arch=[8]))
    assert model.use_sde is use_sde and model.policy.use_sde is use_sde
    model.learn(96)
    assert model.num_timesteps == 96


def test_a3c_gsde_needs_box_actions():
    with pytest.raises(AssertionError, match="use_sde needs a Box action space"):
        make(A3C, use_sde=True)


class Calls(BaseCallback):
    """The callback events, counted."""

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[str, int] = {}

    def _count(self, event: str) -> None:
        self.events[event] = self.events.get(event, 0) + 1

    def _on_training_start(self) -> None:
        self._count("training_start")

    def _on_step(self) -> bool:
        self._count("step")
        return True

    def _on_training_end(self) -> None:
        self._count("training_end")


@pytest.mark.parametrize("cls", CLASSES)
def test_learn_zero_steps_returns_at_once(cls):
    model, callback = make(cls), Calls()
    assert model.learn(0, callback=callback) is model
    assert model.num_timesteps == 0 and callback.events == dict(training_start=1, training_end=1)


@pytest.mark.parametrize("cls", CLASSES)
def test_callbacks_see_every_step(cls):
    callback = Calls()
    make(cls).learn(64, callback=callback)
    assert callback.events == dict(training_start=1, step=64, training_end=1)


@pytest.mark.parametrize("cls", CLASSES)
def test_seed_sets_the_initial_parameters(cls):
    first, second, other = (make(cls, seed=seed).policy.state_dict() for seed in (3, 3, 4))
    assert all(th.equal(first[name], second[name]) for name in first)
    assert not all(th.equal(first[name], other[name]) for name in first)


@pytest.mark.parametrize("cls", CLASSES)
def test_tensorboard_logging(cls, tmp_path):
    pytest.importorskip("tensorboard")
    make(cls, tensorboard_log=str(tmp_path), verbose=0).learn(200, tb_log_name="run", log_interval=1)
    (run,) = tmp_path.iterdir()
    assert run.name == "run_1" and any(path.name.startswith("events.out.tfevents") for path in run.iterdir())


def test_a3c_copies_a_vec_env_of_unregistered_envs_with_two_workers():
    model = make(A3C, env=make_vec_env(lambda: PlainEnv(OBSERVATIONS["MlpPolicy"], spaces.Box(-1, 1, (2,)))), n_workers=2)
    model.learn(200)
    assert model.num_timesteps == 200 and len(model.ep_info_buffer) >= 18

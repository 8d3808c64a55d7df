"""
The course off-policy classes as drop-in replacements of SB3's: every check runs on the SB3 class first and then on
its course counterpart (DQN / CourseDQN, DDPG / CourseDDPG, SAC / CourseSAC), from one list of pairs, so each one is
shown to test SB3's behaviour and nothing else. The checks are SB3's generic behaviours (its documentation and its
own test suite: test_save_load, test_dict_env, test_cnn, test_spaces, test_sde, test_her, test_custom_policy,
test_train_eval_mode, test_deterministic, test_tensorboard, test_callbacks), and the constructor's arguments.
"""

import argparse
import importlib
import importlib.util
import inspect
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import rl_zoo3
import torch as th
import yaml
from gymnasium import spaces
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3 import DDPG, DQN, SAC, HerReplayBuffer
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import BitFlippingEnv
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import SubprocVecEnv, VecFrameStack, VecNormalize, VecTransposeImage
from test_conformance import SpaceEnv, assert_same_parameters, sample_observations
from torch import nn

from sb3_course import CourseDDPG, CourseDQN, CourseSAC
from sb3_course.zoo import COURSE_ALGOS, SB3_COUNTERPARTS, SB3_COURSE_POLICIES, register
from sb3_course.zoo.checks import check_recipe

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@dataclass(frozen=True)
class Algo:
    """One side of a pair, with the settings that make it train in a fraction of a second."""

    cls: type[BaseAlgorithm]
    sb3: type[BaseAlgorithm]  # the SB3 class of its pair (itself for an SB3 class)
    env_id: str
    discrete: bool
    policy_kwargs: dict[str, Any]

    def make(self, env: Any = None, policy: str = "MlpPolicy", **overrides: Any) -> BaseAlgorithm:
        # a copy: SB3's DDPG adds n_critics to the dict it is given
        settings = dict(learning_starts=20, buffer_size=500, batch_size=8, policy_kwargs=dict(self.policy_kwargs))
        return self.cls(policy, self.env_id if env is None else env, **{**settings, **overrides})

    def action_space(self, dtype: type = np.float32) -> spaces.Space:
        return spaces.Discrete(3) if self.discrete else spaces.Box(-2, 2, (2,), dtype)


TINY = dict(net_arch=[8])
# CourseDDPG's critic encodes state and action separately: small encoders too
TINY_DDPG = dict(net_arch=[8], state_encoder_dim=4, action_encoder_dim=4)
PAIRS = [
    (Algo(DQN, DQN, "CartPole-v1", True, TINY), Algo(CourseDQN, DQN, "CartPole-v1", True, TINY)),
    (Algo(DDPG, DDPG, "Pendulum-v1", False, TINY), Algo(CourseDDPG, DDPG, "Pendulum-v1", False, TINY_DDPG)),
    (Algo(SAC, SAC, "Pendulum-v1", False, TINY), Algo(CourseSAC, SAC, "Pendulum-v1", False, TINY)),
]
# SB3's class first, then the course class
ALGOS = [pytest.param(algo, id=algo.cls.__name__) for pair in PAIRS for algo in pair]
CONTINUOUS = [pytest.param(algo, id=algo.cls.__name__) for pair in PAIRS for algo in pair if not algo.discrete]
COURSE = [pytest.param(course, id=course.cls.__name__) for _, course in PAIRS]
SAC_PAIR = [pytest.param(algo, id=algo.cls.__name__) for algo in PAIRS[2]]

IMAGE = spaces.Box(0, 255, (36, 36, 1), np.uint8)  # NatureCNN's smallest input; channel-last, as SB3 transposes
OBSERVATION_SPACES = {
    "MlpPolicy": spaces.Box(-1, 1, (4,), np.float32),
    "CnnPolicy": IMAGE,
    "MultiInputPolicy": spaces.Dict({"vec": spaces.Box(-1, 1, (3,), np.float32), "img": IMAGE}),
}


class ActionCostEnv(SpaceEnv):
    """:class:`SpaceEnv` with reward -|action| (continuous) or -action."""

    def reward(self, obs: Any, action: Any) -> float:
        return -float(np.abs(np.asarray(action, dtype=np.float64)).sum())


def space_env(algo: Algo, policy: str = "MlpPolicy", action_dtype: type = np.float32) -> ActionCostEnv:
    return ActionCostEnv(OBSERVATION_SPACES[policy], algo.action_space(action_dtype))


def assert_finite(model: BaseAlgorithm) -> None:
    assert all(th.isfinite(param).all() for param in model.policy.parameters())


# -- policies and spaces (SB3 test_save_load.py, test_dict_env.py, test_cnn.py, test_spaces.py) ------------------


def test_constructor_signature_and_policies_are_sb3s():
    for sb3, course in PAIRS:
        ours = inspect.signature(course.cls.__init__).parameters
        theirs = inspect.signature(sb3.cls.__init__).parameters
        # SB3's arguments, in SB3's positional order; the course's own ones only by keyword, after them
        positional = [name for name, param in ours.items() if param.kind is param.POSITIONAL_OR_KEYWORD]
        assert positional == list(theirs), course.cls.__name__
        # SB3's own names; ``sb3_course.zoo.register()`` (run by an earlier test in this process) adds the course
        # policies to SB3's classes as policy names of their own
        course_names = {name for policies in SB3_COURSE_POLICIES.values() for name in policies}
        assert set(sb3.cls.policy_aliases) - course_names <= set(course.cls.policy_aliases)


@pytest.mark.parametrize("policy", OBSERVATION_SPACES)
@pytest.mark.parametrize("algo", ALGOS)
def test_save_load_every_policy_type_exact_match(algo, policy, tmp_path):
    model = algo.make(space_env(algo, policy), policy, seed=0).learn(40)
    obs = sample_observations(model.observation_space, 5)
    expected, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model")
    loaded = algo.cls.load(tmp_path / "model", env=space_env(algo, policy), device="cpu")
    assert type(loaded.policy) is type(model.policy)
    assert_same_parameters(model, loaded)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
    loaded.learn(20, reset_num_timesteps=False)  # and it trains on
    assert loaded.num_timesteps == model.num_timesteps + 20


@pytest.mark.parametrize("policy", ["CnnPolicy", "MultiInputPolicy"])
@pytest.mark.parametrize("algo", ALGOS)
def test_image_and_dict_observations_through_subproc_frame_stack_and_normalize(algo, policy):
    # VecNormalize normalises only the vector part (images are scaled by the policy) and comes last: off-policy
    # algorithms store the observations under it, so the images are transposed to channel-first before it
    norm_keys = dict(norm_obs_keys=["vec"]) if policy == "MultiInputPolicy" else dict(norm_obs=False)
    vec_env = SubprocVecEnv([lambda: space_env(algo, policy)] * 2, start_method="fork")
    env = VecNormalize(VecTransposeImage(VecFrameStack(vec_env, n_stack=2)), **norm_keys)
    try:
        model = algo.make(env, policy, seed=0).learn(40)
        assert model.num_timesteps == 40 and model._n_updates > 0
        obs = env.reset()
        actions, _ = model.predict(obs, deterministic=True)
        assert len(actions) == 2 and all(model.action_space.contains(action) for action in actions)
    finally:
        env.close()


@pytest.mark.parametrize("algo", CONTINUOUS)
def test_float64_action_space(algo):
    env = space_env(algo, action_dtype=np.float64)
    model = algo.make(env, seed=0).learn(40)
    action, _ = model.predict(env.reset(seed=0)[0])
    assert env.action_space.contains(action.astype(np.float64))


@pytest.mark.parametrize("algo", ALGOS)
def test_goal_env_with_her_and_multi_input_policy(algo):
    env = BitFlippingEnv(n_bits=4, continuous=not algo.discrete, max_steps=4)
    model = algo.make(env, "MultiInputPolicy", replay_buffer_class=HerReplayBuffer, seed=0).learn(60)
    assert isinstance(model.replay_buffer, HerReplayBuffer) and model._n_updates > 0


# -- replay buffers and exploration (SB3 test_run.py, test_sde.py) ------------------------------------------------


@pytest.mark.parametrize(
    "buffer", [dict(), dict(optimize_memory_usage=True, replay_buffer_kwargs=dict(handle_timeout_termination=False))]
)
@pytest.mark.parametrize("algo", ALGOS)
def test_tiny_buffer_with_the_default_batch_size(algo, buffer):
    # SB3 samples a batch with replacement: 16 transitions feed a batch of 32 (DQN) or 256 (DDPG, SAC)
    model = algo.cls(
        "MlpPolicy", algo.env_id, buffer_size=16, learning_starts=20, policy_kwargs=dict(algo.policy_kwargs), **buffer
    )
    assert model.batch_size > 16
    model.learn(60)
    assert model._n_updates > 0
    assert_finite(model)


@pytest.mark.parametrize("use_sde", [False, True])
@pytest.mark.parametrize("algo", SAC_PAIR)
def test_gsde_on_and_off(algo, use_sde, tmp_path):
    model = algo.make(use_sde=use_sde, sde_sample_freq=4, use_sde_at_warmup=True, seed=0).learn(60)
    assert model.use_sde == model.actor.use_sde == use_sde
    if use_sde:
        assert model.actor.get_std().shape == (8, 1)  # (latent features, actions): the gSDE noise matrix
    else:
        with pytest.raises(AssertionError, match="only available when using gSDE"):
            model.actor.get_std()
    obs = sample_observations(model.observation_space, 4)
    expected, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model")
    loaded = algo.cls.load(tmp_path / "model", device="cpu")
    assert loaded.use_sde == use_sde
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)


# -- vectorised envs, seeds, modes, networks (SB3 test_deterministic.py, test_train_eval_mode.py, ...) -----------


@pytest.mark.parametrize("algo", ALGOS)
def test_same_seed_same_parameters_with_several_envs(algo):
    runs = [algo.make(make_vec_env(algo.env_id, n_envs=3), seed=seed).learn(60) for seed in (1, 1, 2)]
    assert all(run.n_envs == 3 and run.num_timesteps == 60 for run in runs)
    assert_same_parameters(runs[0], runs[1])
    assert any(not th.equal(a, b) for a, b in zip(runs[0].policy.parameters(), runs[2].policy.parameters(), strict=True))


class BatchNormExtractor(BaseFeaturesExtractor):
    """Flatten and batch norm: running statistics show which mode a pass ran in."""

    def __init__(self, observation_space: spaces.Space) -> None:
        super().__init__(observation_space, get_flattened_obs_dim(observation_space))
        self.net = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(self._features_dim))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.net(observations)


def running_means(model: BaseAlgorithm) -> list[th.Tensor]:
    return [module.running_mean.clone() for module in model.policy.modules() if isinstance(module, nn.BatchNorm1d)]


@pytest.mark.parametrize("algo", ALGOS)
def test_train_and_eval_mode(algo):
    policy_kwargs = {**algo.policy_kwargs, "features_extractor_class": BatchNormExtractor}
    model = algo.make(policy_kwargs=policy_kwargs, learning_starts=1_000, seed=0).learn(30)  # collect, no training
    obs = sample_observations(model.observation_space, 6)
    before = running_means(model)
    model.predict(obs, deterministic=True)
    assert not model.policy.training
    assert all(th.equal(a, b) for a, b in zip(before, running_means(model), strict=True))
    model.train(gradient_steps=1, batch_size=8)
    assert model.policy.training
    assert any(not th.equal(a, b) for a, b in zip(before, running_means(model), strict=True))


@pytest.mark.parametrize("form", ["list", "dict"])
@pytest.mark.parametrize("algo", ALGOS)
def test_custom_net_arch_forms_and_activation(algo, form):
    if form == "dict" and algo.discrete:
        pytest.skip("DQN's net_arch is a list (SB3's QNetwork)")
    net_arch = [7, 7] if form == "list" else dict(pi=[5], qf=[9])
    model = algo.make(policy_kwargs={**algo.policy_kwargs, "net_arch": net_arch, "activation_fn": nn.Tanh}).learn(30)
    modules = list(model.policy.modules())
    assert any(isinstance(m, nn.Tanh) for m in modules) and not any(isinstance(m, nn.ReLU) for m in modules)

    def widths(module: nn.Module) -> set[int]:
        return {m.out_features for m in module.modules() if isinstance(m, nn.Linear)}

    if form == "list":
        assert 7 in widths(model.policy)
    else:
        assert 5 in widths(model.actor) and 9 not in widths(model.actor)
        assert 9 in widths(model.critic) and 5 not in widths(model.critic)


class CountCalls(BaseCallback):
    def __init__(self, stop_at: int) -> None:
        super().__init__()
        self.stop_at, self.rollouts = stop_at, 0

    def _on_rollout_end(self) -> None:
        self.rollouts += 1

    def _on_step(self) -> bool:
        return self.n_calls < self.stop_at


@pytest.mark.parametrize("algo", ALGOS)
def test_tensorboard_and_callbacks(algo, tmp_path):
    model = algo.make(tensorboard_log=str(tmp_path / "tb"), seed=0)
    evaluation = EvalCallback(make_vec_env(algo.env_id), eval_freq=20, n_eval_episodes=1, log_path=str(tmp_path / "eval"))
    checkpoints = CheckpointCallback(save_freq=30, save_path=str(tmp_path / "ckpt"))
    count = CountCalls(stop_at=45)
    model.learn(100, callback=CallbackList([evaluation, checkpoints, count]), tb_log_name="run")
    # stopped by the callback at its 45th step; the others saw every step
    assert model.num_timesteps == count.n_calls == evaluation.n_calls == 45 and count.rollouts > 0
    assert (tmp_path / "eval" / "evaluations.npz").exists() and (tmp_path / "ckpt" / "rl_model_30_steps.zip").exists()
    assert any((tmp_path / "tb" / "run_1").glob("events.out.tfevents*"))


# -- constructor arguments: SB3's meanings, SB3's error types ------------------------------------------------------

# Arguments that make SB3 fail (at construction, or later in learn()) with the error type the course class raises at
# construction, naming the argument
WRONG = {
    "learning_rate='1e-3'": (dict(learning_rate="1e-3"), "learning_rate"),
    "learning_rate=nan": (dict(learning_rate=math.nan), "learning_rate"),
    "buffer_size='100'": (dict(buffer_size="100"), "buffer_size"),
    "buffer_size=2.5": (dict(buffer_size=2.5), "buffer_size"),
    "learning_starts='10'": (dict(learning_starts="10"), "learning_starts"),
    "batch_size='8'": (dict(batch_size="8"), "batch_size"),
    "batch_size=2.5": (dict(batch_size=2.5), "batch_size"),
    "gamma='0.9'": (dict(gamma="0.9"), "gamma"),
    "gradient_steps='1'": (dict(gradient_steps="1"), "gradient_steps"),
    "train_freq='4'": (dict(train_freq="4"), "train_freq"),
    "train_freq=(4,'often')": (dict(train_freq=(4, "often")), "train_freq"),
    "train_freq=0": (dict(train_freq=0), "train_freq"),
    "n_steps='3'": (dict(n_steps="3"), "n_steps"),
    "seed='1'": (dict(seed="1"), "seed"),
    "verbose='1'": (dict(verbose="1"), "verbose"),
}
WRONG_FOR = {
    DQN: {
        "target_update_interval='10'": (dict(target_update_interval="10"), "target_update_interval"),
        "exploration_fraction='0.1'": (dict(exploration_fraction="0.1"), "exploration_fraction"),
        "exploration_final_eps='0.1'": (dict(exploration_final_eps="0.1"), "exploration_final_eps"),
        "max_grad_norm=None": (dict(max_grad_norm=None), "max_grad_norm"),
    },
    DDPG: {"tau='0.5'": (dict(tau="0.5"), "tau")},
    SAC: {
        "tau='0.5'": (dict(tau="0.5"), "tau"),
        "ent_coef='much'": (dict(ent_coef="much"), "ent_coef"),
        "target_entropy='low'": (dict(target_entropy="low"), "target_entropy"),
        "ent_coef='auto_0'": (dict(ent_coef="auto_0"), "ent_coef"),
        "sde_sample_freq='4'": (dict(use_sde=True, sde_sample_freq="4"), "sde_sample_freq"),
    },
}


def wrong_cases() -> list:
    return [
        pytest.param(sb3, course, kwargs, name, id=f"{course.cls.__name__}-{case}")
        for sb3, course in PAIRS
        for case, (kwargs, name) in {**WRONG, **WRONG_FOR[sb3.cls]}.items()
    ]


def builtin_type(error: BaseException) -> type[BaseException]:
    """The first built-in exception class of ``error`` (NumPy's UFuncTypeError is a TypeError)."""
    return next(cls for cls in type(error).__mro__ if cls.__module__ == "builtins")


@pytest.mark.parametrize(("sb3", "course", "kwargs", "name"), wrong_cases())
def test_wrong_argument_raises_sb3s_error_type_at_construction_naming_it(sb3, course, kwargs, name):
    with pytest.raises(Exception) as sb3_error:
        sb3.make(**kwargs).learn(40)
    with pytest.raises(builtin_type(sb3_error.value), match=name):
        course.make(**kwargs)


# Values SB3 accepts without a meaning, refused by the course classes (the README's drop-in table): SB3 runs with a
# 1-slot buffer, empty batches, targets that diverge, gradients flipped or zeroed, epsilon as a certainty...
# (SAC's target_update_interval=0 fails in learn() with a ZeroDivisionError.)
REFUSED = {
    "learning_rate=inf": dict(learning_rate=math.inf),
    "buffer_size=0": dict(buffer_size=0),
    "batch_size=0": dict(batch_size=0),
    "learning_starts=-1": dict(learning_starts=-1),
    "gamma=1.5": dict(gamma=1.5),
    "tau=-0.1": dict(tau=-0.1),
    "tau=2": dict(tau=2.0),
    "gradient_steps=-2": dict(gradient_steps=-2),
    "n_steps=0": dict(n_steps=0),
}
REFUSED_FOR = {
    DQN: {
        "exploration_initial_eps=2": dict(exploration_initial_eps=2.0),
        "exploration_final_eps=-0.1": dict(exploration_final_eps=-0.1),
        "max_grad_norm=-1": dict(max_grad_norm=-1.0),
        "target_update_interval=0": dict(target_update_interval=0),
    },
    DDPG: {},
    SAC: {"ent_coef=-0.1": dict(ent_coef=-0.1), "target_update_interval=0": dict(target_update_interval=0)},
}


def refused_cases() -> list:
    return [
        pytest.param(sb3, course, kwargs, id=f"{course.cls.__name__}-{case}")
        for sb3, course in PAIRS
        for case, kwargs in {**REFUSED, **REFUSED_FOR[sb3.cls]}.items()
    ]


@pytest.mark.parametrize(("sb3", "course", "kwargs"), refused_cases())
def test_meaningless_value_sb3_accepts_is_refused_naming_it(sb3, course, kwargs):
    sb3.make(**kwargs)
    (name,) = kwargs
    with pytest.raises(ValueError, match=name):
        course.make(**kwargs)


# Values with a meaning in SB3 (gradient_steps=-1: as many as environment steps; a batch larger than the buffer;
# episodes as train_freq; strings SB3 converts), accepted and trained with
MEANINGFUL = [
    dict(gradient_steps=-1, learning_starts=0, train_freq=(1, "episode")),
    dict(gradient_steps=0, train_freq=(5, "step")),
    dict(buffer_size=10, batch_size=64, learning_rate=lambda progress: 1e-3 * progress),
]
MEANINGFUL_FOR = {
    DQN: [dict(exploration_fraction=2.0, max_grad_norm=math.inf, target_update_interval=1, tau=0.5)],
    DDPG: [],
    SAC: [dict(ent_coef="auto_0.1", target_entropy="-1.5"), dict(ent_coef="0.05", target_update_interval=3)],
}


def meaningful_cases() -> list:
    return [
        pytest.param(algo, kwargs, id=f"{algo.cls.__name__}-{'-'.join(kwargs)}")
        for pair in PAIRS
        for algo in pair
        for kwargs in MEANINGFUL + MEANINGFUL_FOR[algo.sb3]
    ]


@pytest.mark.parametrize(("algo", "kwargs"), meaningful_cases())
@pytest.mark.filterwarnings("ignore:CourseDQN uses")
def test_value_with_a_meaning_in_sb3_is_accepted(algo, kwargs):
    model = algo.make(**kwargs).learn(40)
    assert model.num_timesteps >= 40
    assert_finite(model)


@pytest.mark.parametrize("algo", ALGOS)
def test_not_an_env_and_unsupported_action_space_raise_sb3s_errors(algo):
    with pytest.raises(ValueError, match="not a Gymnasium environment"):
        algo.cls("MlpPolicy", 42)
    wrong_actions = spaces.Box(-1, 1, (2,), np.float32) if algo.discrete else spaces.Discrete(3)
    with pytest.raises(AssertionError):
        algo.cls("MlpPolicy", ActionCostEnv(OBSERVATION_SPACES["MlpPolicy"], wrong_actions))


@pytest.mark.parametrize("algo", COURSE)
def test_integers_written_as_floats_are_accepted(algo):
    # YAML 1.1 reads 1e5 without a dot as a string, !!float 1e5 as a float: rl-zoo3 recipes write integers so;
    # SB3 fails on a float buffer_size (NumPy shapes) and NumPy seeds, the course classes take them as ints
    model = algo.make(buffer_size=100.0, learning_starts=2e1, batch_size=np.int64(8), seed=np.int64(3)).learn(30)
    assert (model.buffer_size, model.learning_starts, model.batch_size) == (100, 20, 8)
    assert all(type(value) is int for value in (model.buffer_size, model.learning_starts, model.batch_size))


# -- rl-zoo3's own recipes with the course key in place of SB3's ---------------------------------------------------

ZOO_HYPERPARAMS = Path(rl_zoo3.__file__).parent / "hyperparams"
COURSE_KEYS = {sb3_key: key for key, sb3_key in SB3_COUNTERPARTS.items() if key in ("course_dqn", "course_ddpg", "course_sac")}
# The env the `default` block is tried on
DEFAULT_ENVS = {"dqn": "CartPole-v1", "ddpg": "Pendulum-v1", "sac": "Pendulum-v1"}
# A few hundred steps that train: updates from step 100 on small batches from a small buffer (the recipes' networks
# and batches of 256 would take seconds per block)
SMOKE = dict(learning_starts=100, buffer_size=1_000, batch_size=32)
N_TIMESTEPS = 200


def zoo_blocks() -> list:
    blocks = []
    for sb3_key in COURSE_KEYS:
        with open(ZOO_HYPERPARAMS / f"{sb3_key}.yml") as file:
            blocks += [pytest.param(sb3_key, block, id=f"{sb3_key}-{block}") for block in yaml.safe_load(file)]
    return blocks


def missing_piece(env_id: str, recipe: dict[str, Any]) -> str | None:
    """Why the block cannot run here (an env or a wrapper package not installed), or ``None``."""
    for wrapper in recipe.get("env_wrapper", []):
        name = next(iter(wrapper)) if isinstance(wrapper, dict) else wrapper
        if importlib.util.find_spec(name.split(".")[0]) is None:
            return f"the recipe's wrapper {name} is not installed"
    try:
        gym.make(env_id).close()
    except (gym.error.Error, ImportError) as error:
        return f"{env_id} cannot be made here: {error}"
    return None


def block_env(sb3_key: str, block: str) -> str | None:
    """The env id a block is tried on (rl-zoo3's `atari` block: the first Atari env registered, if any)."""
    if block == "default":
        return DEFAULT_ENVS[sb3_key]
    if block == "atari":
        return next((env_id for env_id, spec in gym.registry.items() if "AtariEnv" in str(spec.entry_point)), None)
    return block


@pytest.mark.parametrize(("sb3_key", "block"), zoo_blocks())
@pytest.mark.filterwarnings("ignore")
def test_rl_zoo3_recipe_block_trains_with_the_course_key(sb3_key, block, tmp_path):
    importlib.import_module("rl_zoo3.import_envs")  # the env packages rl-zoo3's scripts register
    with open(ZOO_HYPERPARAMS / f"{sb3_key}.yml") as file:
        recipe = yaml.safe_load(file)[block]
    env_id = block_env(sb3_key, block)
    if env_id is None:
        pytest.skip("no Atari env is registered here (ale-py is not installed)")
    reason = missing_piece(env_id, recipe)
    if reason is not None:
        pytest.skip(reason)
    key = COURSE_KEYS[sb3_key]
    config = tmp_path / f"{key}.yml"
    config.write_text(yaml.safe_dump({env_id: recipe}))
    check_recipe(key, env_id, config, [])  # what `sb3-course train` checks before rl-zoo3 runs
    register()
    manager = ExperimentManager(
        argparse.Namespace(), key, env_id, str(tmp_path / "logs"), n_timesteps=N_TIMESTEPS, eval_freq=0, log_interval=-1,
        hyperparams=SMOKE, config=str(config), seed=0, verbose=0, device="cpu",
    )  # fmt: skip
    model, _ = manager.setup_experiment()
    assert isinstance(model, COURSE_ALGOS[key])
    manager.learn(model)
    assert model.num_timesteps >= N_TIMESTEPS and model._n_updates > 0
    assert_finite(model)

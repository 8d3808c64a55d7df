"""
REINFORCE as a drop-in for SB3's A2C: SB3's generic behaviours, each check parametrised over A2C and REINFORCE from
one list, so every check is shown to hold on A2C first. Tiny networks and budgets.
"""

import glob
import inspect
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C
from stable_baselines3.common import base_class
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnMaxEpisodes,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack, VecNormalize
from test_conformance import sample_observations

from sb3_course import REINFORCE
from sb3_course.reinforce.reinforce import A2C_ONLY
from sb3_course.zoo import SB3_COURSE_POLICIES

CLASSES = [A2C, REINFORCE]


def tiny() -> dict:
    # A new dict per model: A2C adds its RMSprop to the policy_kwargs it is given
    return dict(policy_kwargs=dict(net_arch=[8]))


class DictEnv(gym.Env):
    """``Dict`` observations (a vector, optionally a 36x36 image and a ``Discrete`` key); episodes of 5 steps."""

    def __init__(self, image: bool = True, discrete_key: bool = False, box_actions: bool = False) -> None:
        keys: dict[str, spaces.Space] = {"vec": spaces.Box(-1, 1, (3,), np.float32)}
        if image:
            keys["img"] = spaces.Box(0, 255, (36, 36, 1), np.uint8)
        if discrete_key:
            keys["pos"] = spaces.Discrete(3)
        self.observation_space = spaces.Dict(keys)
        self.action_space = spaces.Box(-1, 1, (2,), np.float32) if box_actions else spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), float(np.sum(action)), self.t >= 5, False, {}


class ShortBoxEnv(gym.Env):
    """Box observations, ``Box`` or other actions (float64 by default); episodes of 5 steps."""

    def __init__(self, action_space: spaces.Space | None = None) -> None:
        self.observation_space = spaces.Box(-1, 1, (3,), np.float32)
        self.action_space = action_space or spaces.Box(-2, 2, (2,), np.float64)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, dtype=self.action_space.dtype)), action
        self.t += 1
        return np.full(3, self.t / 5, np.float32), -float(np.square(action).sum()), self.t >= 5, False, {}


def image_env() -> gym.Env:
    return FakeImageEnv(screen_height=36, screen_width=36)  # the smallest NatureCNN input; episodes of 10 steps


def make(cls, env, **kwargs):
    """A tiny model; REINFORCE runs at least one episode per env in a batch (its ``n_episodes >= n_envs``)."""
    n_envs = env.num_envs if isinstance(env, VecEnv) else 1
    extra = dict(n_episodes=max(2, n_envs)) if cls is REINFORCE else {}
    return cls(env=env, **{**tiny(), **extra, **kwargs})


POLICY_ENVS = {
    "MlpPolicy": lambda: gym.make("CartPole-v1"),
    "CnnPolicy": image_env,
    "MultiInputPolicy": lambda: DictEnv(image=True, discrete_key=True),
}


@pytest.mark.parametrize("policy", list(POLICY_ENVS))
@pytest.mark.parametrize("cls", CLASSES)
def test_save_load_exact_predictions(cls, policy, tmp_path):
    model = make(cls, DummyVecEnv([POLICY_ENVS[policy]]), policy=policy, seed=0).learn(60)
    assert model._n_updates > 0
    obs = sample_observations(POLICY_ENVS[policy]().observation_space, 8)
    model.save(tmp_path / "model.zip")
    loaded = cls.load(tmp_path / "model.zip")
    assert type(loaded.policy) is type(model.policy)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    for name, param in model.policy.state_dict().items():
        assert th.equal(param, loaded.policy.state_dict()[name]), name


def test_a2cs_arguments_with_a_meaning_and_its_policies_are_accepted_in_a2cs_order():
    a2c, reinforce = (inspect.signature(cls.__init__).parameters for cls in CLASSES)
    assert set(reinforce) - set(a2c) == {"n_episodes", "use_baseline", "a2c_only"}
    assert set(a2c) - set(reinforce) == set(A2C_ONLY)
    shared = [name for name in a2c if name in reinforce]
    assert [name for name in reinforce if name in a2c] == shared
    # The course's defaults (Adam 2e-4, gamma 1, normalised returns, no clipping); A2C's when set
    differing = {name for name in shared if a2c[name].default != reinforce[name].default}
    assert differing == {"learning_rate", "gamma", "max_grad_norm", "normalize_advantage", "use_rms_prop"}
    # sb3_course.zoo.register() (run by other tests) adds the course policies to A2C's aliases
    assert set(A2C.policy_aliases) - set(SB3_COURSE_POLICIES["a2c"]) == set(REINFORCE.policy_aliases)


A2C_ONLY_VALUES = dict(n_steps=8, gae_lambda=0.9, rollout_buffer_class=RolloutBuffer, rollout_buffer_kwargs={})


@pytest.mark.parametrize("name", A2C_ONLY)
@pytest.mark.parametrize("cls", CLASSES)
def test_a2cs_fixed_rollout_arguments_point_to_a2c(cls, name):
    kwargs = {name: A2C_ONLY_VALUES[name]}
    if cls is A2C:
        assert make(cls, gym.make("CartPole-v1"), policy="MlpPolicy", **kwargs).learn(16)._n_updates > 0
        return
    with pytest.raises(TypeError, match=f"^REINFORCE updates on whole episodes; {name} is A2C's: use stable_baselines3.A2C$"):
        make(cls, gym.make("CartPole-v1"), policy="MlpPolicy", **kwargs)


def _image_frame_stack() -> VecEnv:
    return VecFrameStack(make_vec_env(image_env, n_envs=2), n_stack=2)


def _dict_frame_stack() -> VecEnv:
    return VecFrameStack(DummyVecEnv([DictEnv] * 2), n_stack=2)


def _dict_normalized_subprocesses() -> VecEnv:
    # Normalise the vector key only, as SB3's examples do for images in a Dict
    return VecNormalize(SubprocVecEnv([DictEnv] * 2, start_method="fork"), norm_obs_keys=["vec"])


@pytest.mark.parametrize(
    "make_env,policy",
    [
        (_image_frame_stack, "CnnPolicy"),
        (_dict_frame_stack, "MultiInputPolicy"),
        (_dict_normalized_subprocesses, "MultiInputPolicy"),
    ],
    ids=["image-VecFrameStack", "dict-VecFrameStack", "dict-VecNormalize-SubprocVecEnv"],
)
@pytest.mark.parametrize("cls", CLASSES)
def test_image_and_dict_observations_with_vec_wrappers(cls, make_env, policy):
    env = make_env()
    try:
        model = make(cls, env, policy=policy, seed=0).learn(60)
        assert model.num_timesteps >= 60 and model._n_updates > 0 and model.n_envs == 2
        actions, _ = model.predict(env.reset())
        assert actions.shape == (2,) and all(env.action_space.contains(a) for a in actions)
    finally:
        env.close()


@pytest.mark.parametrize(
    "action_space",
    [spaces.Box(-2, 2, (2,), np.float64), spaces.MultiDiscrete([3, 2]), spaces.MultiBinary(3), spaces.Discrete(3)],
    ids=["Box-float64", "MultiDiscrete", "MultiBinary", "Discrete"],
)
@pytest.mark.parametrize("cls", CLASSES)
def test_action_spaces_with_several_envs(cls, action_space):
    # The env asserts that every action it gets lies in its space
    env = DummyVecEnv([lambda: ShortBoxEnv(action_space)] * 3)
    model = make(cls, env, policy="MlpPolicy", seed=0).learn(90)
    assert model._n_updates > 0 and model.num_timesteps % 3 == 0
    actions, _ = model.predict(sample_observations(env.observation_space, 4))
    assert all(action_space.contains(np.asarray(a, dtype=action_space.dtype)) for a in actions)


@pytest.mark.parametrize("cls", CLASSES)
def test_gsde(cls, tmp_path):
    model = make(cls, DummyVecEnv([ShortBoxEnv] * 2), policy="MlpPolicy", use_sde=True, sde_sample_freq=4, seed=0)
    model.learn(40)
    assert model.policy.use_sde and model._n_updates > 0
    model.save(tmp_path / "model.zip")
    assert cls.load(tmp_path / "model.zip").policy.use_sde
    with pytest.raises(ValueError, match="gSDE"):
        make(cls, gym.make("CartPole-v1"), policy="MlpPolicy", use_sde=True)


@pytest.mark.parametrize("cls", CLASSES)
def test_rms_prop(cls):
    model = make(cls, gym.make("CartPole-v1"), policy="MlpPolicy", use_rms_prop=True, rms_prop_eps=1e-3)
    assert isinstance(model.policy.optimizer, th.optim.RMSprop) and model.policy.optimizer.defaults["eps"] == 1e-3
    adam = make(cls, gym.make("CartPole-v1"), policy="MlpPolicy", use_rms_prop=False)
    assert isinstance(adam.policy.optimizer, th.optim.Adam)


# Wrong types and values: the exception type SB3's A2C raises (at construction or, for some, in learn()); REINFORCE
# raises it at construction with the argument's name. A2C itself accepts gamma=1.5, ent_coef=-1, sde_sample_freq=2.5
# or normalize_advantage="no" (REINFORCE refuses them, tests/test_reinforce.py).
BAD_ARGUMENTS = [
    (dict(learning_rate=math.inf), ValueError),
    (dict(learning_rate=-1.0), ValueError),
    (dict(n_steps="5"), TypeError),
    (dict(n_steps=2.5), TypeError),
    (dict(gamma="0.99"), TypeError),
    (dict(gae_lambda="1"), TypeError),
    (dict(ent_coef="0"), TypeError),
    (dict(vf_coef="0.5"), TypeError),
    (dict(rms_prop_eps="1e-5", use_rms_prop=True), TypeError),
    (dict(stats_window_size="100"), TypeError),
    (dict(stats_window_size=2.5), TypeError),
    (dict(sde_sample_freq="4", use_sde=True), TypeError),
    (dict(seed="0"), TypeError),
    (dict(seed=2.5), TypeError),
    (dict(seed=-1), ValueError),
    (dict(verbose="1"), TypeError),
]


@pytest.mark.parametrize(
    "kwargs,error", BAD_ARGUMENTS, ids=[f"{next(iter(k))}={next(iter(k.values()))!r}" for k, _ in BAD_ARGUMENTS]
)
@pytest.mark.parametrize("cls", CLASSES)
def test_bad_arguments_raise_a2cs_exception_type(cls, kwargs, error):
    name = next(iter(kwargs))
    env = DummyVecEnv([ShortBoxEnv])  # Box actions: gSDE applies
    if cls is A2C:
        with pytest.raises(error):
            A2C("MlpPolicy", env, **kwargs).learn(10)
    else:
        with pytest.raises(error, match=name):
            REINFORCE("MlpPolicy", env, **kwargs)


@pytest.mark.parametrize("cls", CLASSES)
def test_unsupported_spaces_raise_assertion_error_and_env_type_value_error(cls):
    env = ShortBoxEnv(spaces.Tuple([spaces.Discrete(2), spaces.Discrete(2)]))
    with pytest.raises(AssertionError):
        cls("MlpPolicy", env)
    with pytest.raises(ValueError, match="environment"):
        cls("MlpPolicy", 42)
    with pytest.raises(ValueError, match="MultiInputPolicy"):
        cls("MlpPolicy", DictEnv())


@pytest.mark.parametrize("cls", CLASSES)
def test_seeded_runs_are_deterministic(cls):
    models = [make(cls, make_vec_env("CartPole-v1", n_envs=2), policy="MlpPolicy", seed=3).learn(100) for _ in range(2)]
    first, second = (m.policy.state_dict() for m in models)
    assert models[0]._n_updates > 0
    assert all(th.equal(first[name], second[name]) for name in first)
    obs = sample_observations(models[0].observation_space, 16)
    np.testing.assert_array_equal(*(m.predict(obs, deterministic=True)[0] for m in models))


class CountingCallback(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.events = {"training_start": 0, "rollout_start": 0, "rollout_end": 0, "training_end": 0}

    def _on_training_start(self) -> None:
        self.events["training_start"] += 1

    def _on_rollout_start(self) -> None:
        self.events["rollout_start"] += 1

    def _on_rollout_end(self) -> None:
        self.events["rollout_end"] += 1

    def _on_training_end(self) -> None:
        self.events["training_end"] += 1

    def _on_step(self) -> bool:
        assert "new_obs" in self.locals and "dones" in self.locals  # the locals SB3's callbacks read
        return True


@pytest.mark.parametrize("cls", CLASSES)
def test_callbacks(cls, tmp_path):
    counting = CountingCallback()
    evaluation = EvalCallback(make_vec_env("CartPole-v1"), n_eval_episodes=1, eval_freq=40, log_path=str(tmp_path))
    checkpoints = CheckpointCallback(save_freq=50, save_path=str(tmp_path))
    model = make(cls, make_vec_env("CartPole-v1", n_envs=2), policy="MlpPolicy", seed=0)
    model.learn(200, callback=[counting, evaluation, checkpoints])
    assert counting.n_calls == model.num_timesteps // 2
    assert counting.events["training_start"] == counting.events["training_end"] == 1
    assert counting.events["rollout_start"] >= counting.events["rollout_end"] >= model._n_updates > 0
    assert len(evaluation.evaluations_timesteps) == counting.n_calls // 40
    assert len(glob.glob(str(tmp_path / "rl_model_*_steps.zip"))) == counting.n_calls // 50
    # A callback that returns False stops training: here at the first episode end
    stopped = make(cls, make_vec_env("CartPole-v1"), policy="MlpPolicy", seed=0)
    stopped.learn(5_000, callback=StopTrainingOnMaxEpisodes(max_episodes=1))
    assert 0 < stopped.num_timesteps < 500


@pytest.mark.parametrize("cls", CLASSES)
def test_tensorboard(cls, tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    model = make(cls, make_vec_env("CartPole-v1"), policy="MlpPolicy", tensorboard_log=str(tmp_path), seed=0)
    model.learn(300, log_interval=1, tb_log_name="run")
    (run,) = glob.glob(str(tmp_path / "run_1"))
    accumulator = event_accumulator.EventAccumulator(run)
    accumulator.Reload()
    assert {"train/policy_loss", "train/entropy_loss", "rollout/ep_rew_mean", "time/fps"} <= set(accumulator.Tags()["scalars"])


@pytest.mark.parametrize("cls", CLASSES)
def test_progress_bar_counts_every_step(cls, progress_bars):
    model = make(cls, make_vec_env("CartPole-v1", n_envs=2), policy="MlpPolicy").learn(200, progress_bar=True)
    assert progress_bars == [(200, model.num_timesteps)] and model.num_timesteps >= 200


def _fake_cuda(monkeypatch) -> None:
    """Make SB3 pick a CUDA device and keep the policy where it is: the GPU check runs on a CPU-only machine."""
    monkeypatch.setattr(base_class, "get_device", lambda device="auto": th.device("cuda"))
    monkeypatch.setattr(ActorCriticPolicy, "to", lambda self, *args, **kwargs: self)


def gpu_warnings(build) -> list[str]:
    """The messages of the GPU warnings that ``build()`` gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build()
    return [str(w.message) for w in caught if "on the GPU" in str(w.message)]


@pytest.mark.parametrize("cls", CLASSES)
def test_gpu_warning_for_mlp_policies(cls, monkeypatch):
    assert gpu_warnings(lambda: cls("MlpPolicy", "CartPole-v1", device="cpu")) == []
    _fake_cuda(monkeypatch)
    (message,) = gpu_warnings(lambda: cls("MlpPolicy", "CartPole-v1", device="cuda"))
    assert message.startswith(f"You are trying to run {cls.__name__} on the GPU")
    # Not for CNNs (SB3's condition: the MlpPolicy class only)
    assert gpu_warnings(lambda: cls("CnnPolicy", image_env(), device="cuda")) == []
    assert gpu_warnings(lambda: cls("MultiInputPolicy", DictEnv(), device="cuda")) == []


@pytest.mark.cuda
@pytest.mark.skipif(not th.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", CLASSES)
def test_gpu_warning_on_cuda(cls):
    with pytest.warns(UserWarning, match=f"You are trying to run {cls.__name__} on the GPU"):
        model = cls("MlpPolicy", "CartPole-v1", device="cuda", **tiny())
    assert next(model.policy.parameters()).is_cuda

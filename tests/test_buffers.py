"""
FrameStackReplayBuffer against SB3's ReplayBuffer: the same transitions, fed by SB3's own ``_store_transition``
through ``VecFrameStack`` (and ``VecTransposeImage`` for images), must give identical samples for every stored
index, before and after the ring wraps, and the same training with the same seed.
"""

import math
import warnings

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from sb3_course import CourseDQN, CourseSAC
from sb3_course.benchmarks.frames_env import RandomFramesEnv
from sb3_course.common.buffers import FrameStackReplayBuffer
from sb3_course.common.validation import UnsupportedSpaceError

N_STACK = 3
SAMPLE_FIELDS = ("observations", "actions", "next_observations", "dones", "rewards")


class TwinBuffer(FrameStackReplayBuffer):
    """FrameStackReplayBuffer that also feeds a plain ReplayBuffer (pages are 1/16 of a small ring: they get freed)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        plain_kwargs = {key: value for key, value in kwargs.items() if key not in ("n_stack", "channels_order")}
        self.plain = ReplayBuffer(*args, **plain_kwargs)

    def add(self, *args) -> None:
        self.plain.add(*args)
        super().add(*args)


def frames_env(n_envs: int, frame_shape: tuple[int, ...], discrete: bool = True, length=(1, 8)) -> VecFrameStack:
    def make() -> RandomFramesEnv:
        return RandomFramesEnv(frame_shape, length, discrete=discrete, truncation_prob=0.5, special_frame_prob=0.15)

    return VecFrameStack(DummyVecEnv([make] * n_envs), N_STACK)


def assert_same_samples(buffer: TwinBuffer) -> None:
    """Every stored (position, env) pair, and seeded ``sample()`` calls, give identical tensors in both buffers."""
    plain = buffer.plain
    assert (buffer.pos, buffer.full, buffer.size()) == (plain.pos, plain.full, plain.size())
    positions = np.repeat(np.arange(buffer.size()), 4)  # 4 random env indices per position
    for seed in range(2):
        np.random.seed(seed)
        expected = plain._get_samples(positions)
        np.random.seed(seed)
        got = buffer._get_samples(positions)
        for name in SAMPLE_FIELDS:
            assert th.equal(getattr(got, name), getattr(expected, name)), name
        np.random.seed(seed)
        expected = plain.sample(32)
        np.random.seed(seed)
        got = buffer.sample(32)
        assert all(th.equal(getattr(got, name), getattr(expected, name)) for name in SAMPLE_FIELDS)


def collecting_model(
    n_envs: int, frame_shape: tuple[int, ...], buffer_size: int, n_stack=N_STACK, **buffer_kwargs
) -> CourseDQN:
    """CourseDQN that only collects (random actions before learning_starts) into a TwinBuffer."""
    return CourseDQN(
        "MlpPolicy",
        frames_env(n_envs, frame_shape),
        buffer_size=buffer_size,
        batch_size=1,
        learning_starts=10**6,
        replay_buffer_class=TwinBuffer,
        replay_buffer_kwargs=dict(n_stack=n_stack, **buffer_kwargs),
        seed=n_envs,
    )


@pytest.mark.parametrize("n_envs", [1, 2])
@pytest.mark.parametrize(
    "frame_shape, channels_first",
    [((12, 12, 3), True), ((5, 4), False)],  # an image (SB3 moves its channels first), a non-image Box
    ids=["image", "vector"],
)
@pytest.mark.parametrize("handle_timeout_termination", [True, False])
def test_samples_equal_plain_buffer_before_and_after_wrap(n_envs, frame_shape, channels_first, handle_timeout_termination):
    slots = 48  # pages of 3 frames
    model = collecting_model(n_envs, frame_shape, slots * n_envs, handle_timeout_termination=handle_timeout_termination)
    buffer = model.replay_buffer
    assert isinstance(buffer, TwinBuffer) and buffer.channels_first == channels_first
    checked_before_wrap = False
    for _ in range(12):
        model.learn(9, reset_num_timesteps=False)
        assert_same_samples(buffer)
        checked_before_wrap |= not buffer.full
    assert checked_before_wrap and buffer.full
    # A fresh learn() resets the envs in the middle of their episodes (no done): obs is then a new stack
    model.learn(13)
    assert_same_samples(buffer)
    # Freed pages: the ring needs at most 2 frames per transition (one-step episodes) and the oldest's history
    pages_needed = math.ceil((2 * slots + N_STACK) / buffer.frames_per_page) + 1
    assert buffer.frames_per_page == 3 and all(0 < len(pages) <= pages_needed for pages in buffer._pages)
    assert (buffer._first_page > 0).all()
    assert buffer.plain.dones.any() and buffer.plain.timeouts.any() == handle_timeout_termination


def test_buffer_of_one_slot_and_reset():
    model = collecting_model(1, (12, 12, 3), buffer_size=1)
    model.learn(9)
    assert_same_samples(model.replay_buffer)
    model.replay_buffer.reset()
    model.replay_buffer.plain.reset()
    assert model.replay_buffer.nbytes < 100 and model.replay_buffer.size() == 0
    model.learn(5)
    assert_same_samples(model.replay_buffer)


def test_tiny_buffer_samples_a_larger_batch_with_replacement():
    # 4 slots, batches of 32 (CourseDQN's default) drawn with replacement, as SB3's ReplayBuffer draws them
    model = collecting_model(1, (12, 12, 3), buffer_size=4)
    model.learn(20)
    buffer = model.replay_buffer
    assert buffer.full and buffer.frames_per_page == 1
    assert_same_samples(buffer)
    np.random.seed(0)
    assert buffer.sample(32).observations.shape == (32, N_STACK * 3, 12, 12)


def test_one_frame_per_transition_plus_one_per_episode():
    env = frames_env(1, (12, 12, 3), length=(10, 10))
    model = CourseDQN(
        "MlpPolicy", env, buffer_size=200, learning_starts=10**6, seed=0,
        replay_buffer_class=FrameStackReplayBuffer, replay_buffer_kwargs=dict(n_stack=N_STACK),
    )  # fmt: skip
    model.learn(200)
    buffer = model.replay_buffer
    # 20 episodes of 10 steps: frames f_0 .. f_10 of each; all-zero first frames are the only extra ones
    assert 220 <= buffer.frames_written[0] <= 220 + 20 * (N_STACK - 1)
    sb3_nbytes = 2 * 200 * N_STACK * 12 * 12 * 3  # obs and next_obs of 3 frames
    assert buffer.nbytes < 0.25 * sb3_nbytes


@pytest.mark.parametrize("algo", [CourseDQN, CourseSAC])
def test_cnn_policy_trains_identically_with_both_buffers_and_saves(algo, tmp_path):
    """Same seed, plain vs frame-stack buffer: the same parameters after training (the algorithm is unchanged)."""

    def train(replay_buffer_class, replay_buffer_kwargs):
        env = frames_env(1, (36, 36, 3), discrete=algo is CourseDQN, length=(5, 30))
        model = algo(
            "CnnPolicy", env, buffer_size=150, learning_starts=100, batch_size=16, train_freq=4, seed=0,
            replay_buffer_class=replay_buffer_class, replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=16), net_arch=[8]),
        )  # fmt: skip
        return model.learn(300)

    plain = train(ReplayBuffer, {})
    model = train(FrameStackReplayBuffer, dict(n_stack=N_STACK))
    assert model.replay_buffer.full
    for expected, got in zip(plain.policy.state_dict().values(), model.policy.state_dict().values(), strict=True):
        assert th.equal(expected, got)

    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "buffer")
    loaded = algo.load(tmp_path / "model", env=model.get_env())
    loaded.load_replay_buffer(tmp_path / "buffer")
    assert isinstance(loaded.replay_buffer, FrameStackReplayBuffer)
    np.random.seed(0)
    expected_batch = model.replay_buffer.sample(8)
    np.random.seed(0)
    assert th.equal(loaded.replay_buffer.sample(8).next_observations, expected_batch.next_observations)
    obs = model.get_env().reset()
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    loaded.learn(20)


IMAGE = spaces.Box(0, 255, (9, 12, 12), np.uint8)
ACTIONS = spaces.Discrete(2)


@pytest.mark.parametrize(
    "observation_space, kwargs, error, match",
    [
        (spaces.Discrete(4), dict(n_stack=3), UnsupportedSpaceError, "Box observations"),
        (IMAGE, {}, ValueError, "needs n_stack"),
        (IMAGE, dict(n_stack=4), ValueError, "not a multiple of 4"),
        (IMAGE, dict(n_stack=0), ValueError, "n_stack must lie in"),
        (IMAGE, dict(n_stack=3, channels_order="middle"), ValueError, "channels_order must be"),
        (spaces.Box(0, 255, (9, 10, 10), np.uint8), dict(n_stack=3, channels_order="last"), ValueError, "on the last axis"),
        (IMAGE, dict(n_stack=3, optimize_memory_usage=True), ValueError, "optimize_memory_usage=False"),
    ],
)
def test_bad_arguments_are_named(observation_space, kwargs, error, match):
    with pytest.raises(error, match=match):
        FrameStackReplayBuffer(10, observation_space, ACTIONS, **kwargs)


def test_wrong_n_stack_warns_but_stays_exact():
    """9 channels of 3 stacked RGB frames read as 9 one-channel frames: no frame is shared, a warning says so."""
    model = collecting_model(1, (12, 12, 3), buffer_size=30, n_stack=9)
    with pytest.warns(UserWarning, match=r"not VecFrameStack\(n_stack=9\)"):
        model.learn(40)
    assert_same_samples(model.replay_buffer)


def test_frame_stacked_input_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        collecting_model(2, (12, 12, 3), buffer_size=30).learn(60)

"""A synthetic image environment for the replay buffer tests and the memory benchmark."""

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class RandomFramesEnv(gym.Env[np.ndarray, Any]):
    """
    Random uint8 frames (incompressible, as a worst case for memory) with episodes of random length, ending by
    termination or by a time-limit truncation at random; some frames are all zeros or repeat the previous one,
    the cases a frame-stacking buffer could mistake for ``VecFrameStack``'s zero fill or for a continuation.

    :param frame_shape: shape of one frame, e.g. (84, 84, 3)
    :param episode_length: (shortest, longest) episode length, drawn uniformly per episode
    :param discrete: ``Discrete(3)`` actions if True, else ``Box(-1, 1, (2,))``
    :param truncation_prob: probability that an episode ends by truncation instead of termination
    :param special_frame_prob: probability that a frame is all zeros, and again that it repeats the previous one
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        frame_shape: tuple[int, ...] = (84, 84, 3),
        episode_length: tuple[int, int] = (1000, 1000),
        discrete: bool = True,
        truncation_prob: float = 0.5,
        special_frame_prob: float = 0.0,
    ) -> None:
        self.observation_space = spaces.Box(0, 255, frame_shape, np.uint8)
        self.action_space = spaces.Discrete(3) if discrete else spaces.Box(-1, 1, (2,), np.float32)
        self.episode_length = episode_length
        self.truncation_prob = truncation_prob
        self.special_frame_prob = special_frame_prob
        self._frame = np.zeros(frame_shape, np.uint8)
        self._steps_left = 0

    def _next_frame(self) -> np.ndarray:
        draw = self.np_random.random()
        if draw < self.special_frame_prob:
            self._frame = np.zeros_like(self._frame)
        elif draw >= 2 * self.special_frame_prob:
            self._frame = self.np_random.integers(0, 256, self._frame.shape, dtype=np.uint8)
        return self._frame.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        low, high = self.episode_length
        self._steps_left = int(self.np_random.integers(low, high + 1))
        return self._next_frame(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._steps_left -= 1
        ended = self._steps_left <= 0
        truncated = ended and self.np_random.random() < self.truncation_prob
        return self._next_frame(), float(self.np_random.standard_normal()), ended and not truncated, truncated, {}


# rl-zoo3 finds the env by id once ``--gym-packages sb3_course.benchmarks.frames_env`` has imported this module
gym.register("SB3CourseRandomFrames-v0", entry_point="sb3_course.benchmarks.frames_env:RandomFramesEnv")

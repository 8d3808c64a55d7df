"""Optional reward shaping of the course notes, as gymnasium wrappers applied outside ``Monitor``."""

from typing import Any, SupportsFloat

import gymnasium as gym


class CourseCartPoleReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """
    The reward shaping of the course DQN notes: 0 on every step, and at the end of an episode
    -1 if the pole fell before ``success_steps`` steps, +1 otherwise.

    Apply it outside ``Monitor`` (rl-zoo3's ``env_wrapper`` and SB3's ``make_vec_env(wrapper_class=...)`` do)
    so that the logged episode returns remain the environment's own returns.

    :param env: the CartPole environment
    :param success_steps: episode length from which an ending counts as a success (notes: 160 of 200)
    """

    def __init__(self, env: gym.Env, success_steps: int = 160) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, success_steps=success_steps)
        super().__init__(env)
        self.success_steps = success_steps
        self._episode_length = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._episode_length = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        self._episode_length += 1
        reward = 0.0
        if terminated or truncated:
            reward = 1.0 if self._episode_length >= self.success_steps else -1.0
        return obs, reward, terminated, truncated, info


class CourseA3CReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """
    The reward shaping of the course A3C notes: ``step_reward`` on every step and ``failure_reward`` on
    the step that ends the episode by termination (a time-limit truncation is no failure and gets
    ``step_reward``; the notes give -10 on any ``done``).

    Apply it outside ``Monitor`` (rl-zoo3's ``env_wrapper`` and ``make_vec_env(wrapper_class=...)`` do; A3C's
    workers rebuild it from the env's ``EnvSpec`` outside their own ``Monitor``) so that the logged episode
    returns remain the environment's own returns.

    :param env: the environment
    :param step_reward: reward of every non-failing step (notes: +1)
    :param failure_reward: reward of a terminating step (notes: -10)
    """

    def __init__(self, env: gym.Env, step_reward: float = 1.0, failure_reward: float = -10.0) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, step_reward=step_reward, failure_reward=failure_reward)
        super().__init__(env)
        self.step_reward = step_reward
        self.failure_reward = failure_reward

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        return obs, self.failure_reward if terminated else self.step_reward, terminated, truncated, info

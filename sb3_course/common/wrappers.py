from typing import Any, SupportsFloat

import gymnasium as gym


class CourseCartPoleReward(gym.Wrapper):
    """
    The reward shaping of the course DQN notes (002): 0 on every step, and at the end of an episode
    -1 if the pole fell before ``success_steps`` steps, +1 otherwise.

    Apply it outside ``Monitor`` (rl-zoo3's ``env_wrapper`` and SB3's ``make_vec_env(wrapper_class=...)`` do)
    so that the logged episode returns remain the environment's own returns.

    :param env: the CartPole environment
    :param success_steps: episode length from which an ending counts as a success (notes: 160 of 200)
    """

    def __init__(self, env: gym.Env, success_steps: int = 160) -> None:
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

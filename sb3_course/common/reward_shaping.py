from typing import Any, SupportsFloat

import gymnasium as gym


class CourseA3CReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """
    The reward shaping of the course A3C notes (001): ``step_reward`` on every step and ``failure_reward`` on
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

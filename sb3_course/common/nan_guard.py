"""Fail fast on NaN or infinite observations and rewards, naming the step (for every algorithm, A3C workers too)."""

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np


def _non_finite(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_non_finite(inner) for inner in value.values())
    if isinstance(value, tuple):
        return any(_non_finite(inner) for inner in value)
    array = np.asarray(value)
    return np.issubdtype(array.dtype, np.number) and not np.all(np.isfinite(array))


class NonFiniteError(ValueError):
    """An environment returned a NaN or infinite observation or reward."""


class CheckFinite(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """
    Raise :class:`NonFiniteError` as soon as ``reset()`` or ``step()`` returns a NaN or infinite observation or
    reward, naming the env step (counted from the wrapper's creation), the episode step and the action.

    A gymnasium wrapper rather than SB3's ``VecCheckNan`` (which does the same for a ``VecEnv`` but does not name
    the step): it works inside ``make_vec_env(wrapper_class=CheckFinite)``, rl-zoo3's ``env_wrapper`` and A3C's
    workers, which rebuild it from the env's ``EnvSpec`` (the error reaches ``learn()`` as ``A3CWorkerError``).

    :param env: the environment
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        super().__init__(env)
        self.total_steps = 0
        self.episode_steps = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.episode_steps = 0
        if _non_finite(obs):
            raise NonFiniteError(f"non-finite observation from reset() after env step {self.total_steps}: {obs}")
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.total_steps += 1
        self.episode_steps += 1
        for name, value in (("observation", obs), ("reward", reward)):
            if _non_finite(value):
                raise NonFiniteError(
                    f"non-finite {name} at env step {self.total_steps} (step {self.episode_steps} of the episode), "
                    f"action {action}: {value}"
                )
        return obs, reward, terminated, truncated, info

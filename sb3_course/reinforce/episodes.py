"""Whole episodes of REINFORCE's batches: per-step storage and stacking into the batch arrays."""

from dataclasses import dataclass, field

import numpy as np

# One step's observation of one env: an array, or one array per key of a ``Dict`` observation space
Observation = np.ndarray | dict[str, np.ndarray]


@dataclass
class Episode:
    """One whole episode of one environment: observations, actions taken (unclipped) and rewards."""

    observations: list[Observation] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rewards)


def env_observation(observations: Observation, index: int) -> Observation:
    """The observation of env ``index`` in a ``VecEnv``'s observations (per key for a ``Dict`` space)."""
    if isinstance(observations, dict):
        return {key: value[index] for key, value in observations.items()}
    return observations[index]


def stack_observations(observations: list[Observation]) -> Observation:
    """Stack per-step observations along a new first axis (per key for a ``Dict`` space, as ``DictRolloutBuffer``)."""
    first = observations[0]
    if isinstance(first, dict):
        return {key: np.stack([obs[key] for obs in observations]) for key in first}  # type: ignore[index]
    return np.stack(observations)  # type: ignore[arg-type]


def episode_shares(n_episodes: int, n_envs: int) -> np.ndarray:
    """How many episodes each environment contributes to a batch of ``n_episodes`` (they sum to ``n_episodes``)."""
    shares = np.full(n_envs, n_episodes // n_envs)
    shares[: n_episodes % n_envs] += 1
    return shares

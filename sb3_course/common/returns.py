"""Monte-Carlo returns and their normalisation, shared by REINFORCE and A3C."""

from collections.abc import Sequence

import numpy as np


def discounted_returns(
    rewards: np.ndarray, gamma: float, last_value: float = 0.0, episode_ends: Sequence[bool] | None = None
) -> np.ndarray:
    """
    Discounted returns of one trajectory, computed backwards: ``G_t = r_t + gamma * G_{t+1}``.

    :param rewards: rewards ``r_0 .. r_{T-1}`` of the trajectory, in time order
    :param gamma: discount factor
    :param last_value: ``G_T``: 0 after a terminal state, the critic's ``V(s_T)`` to bootstrap a cut trajectory
    :param episode_ends: for a trajectory running across episodes, whether an episode ended with step ``t``:
        there the return restarts, ``G_t = r_t`` (a truncation's bootstrap belongs in ``r_t``, as SB3 adds it)
    :return: the returns ``G_0 .. G_{T-1}`` (float32)
    """
    returns = np.empty(len(rewards), dtype=np.float32)
    g = float(last_value)
    for t in reversed(range(len(rewards))):
        if episode_ends is not None and episode_ends[t]:
            g = 0.0
        g = float(rewards[t]) + gamma * g
        returns[t] = g
    return returns


def l2_normalize(values: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """
    ``x / max(||x||_2, eps)``, the A3C notes' ``F.normalize(Returns, dim=0)``.

    :param values: returns of one rollout
    :param eps: lower bound of the norm
    """
    return values / max(float(np.linalg.norm(values)), eps)

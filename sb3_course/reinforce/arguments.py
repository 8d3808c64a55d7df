"""Construction-time checks of REINFORCE's arguments: types and ranges by name, and the A2C arguments per batch mode."""

import math
from typing import Any

from stable_baselines3.common.buffers import RolloutBuffer

from sb3_course.common.validation import check_actor_critic_floats, check_bool, check_int

# Integer arguments and their allowed ranges (seed: NumPy's; sde_sample_freq -1: new gSDE noise per batch only)
INT_RANGES = {
    "n_episodes": (1, math.inf),
    "n_steps": (1, math.inf),
    "sde_sample_freq": (-1, math.inf),
    "stats_window_size": (1, math.inf),
    "verbose": (0, math.inf),
    "seed": (0, 2**32 - 1),
}
FLAGS = ("normalize_advantage", "use_baseline", "use_rms_prop", "use_sde")
OPTIONAL = ("n_steps", "seed")


def check_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """
    Raise a ``TypeError`` naming the argument for a wrong type (a string, ``2.5`` for an integer, ``"False"`` for a
    flag) and a ``ValueError`` naming it for a value out of range.

    :param arguments: the constructor's arguments by name (others are ignored)
    :return: the numbers as Python ``int`` / ``float`` (``1e5`` read from YAML becomes ``100000``), by name
    """
    checked: dict[str, Any] = {}
    for name, (low, high) in INT_RANGES.items():
        value = arguments[name]
        checked[name] = None if value is None and name in OPTIONAL else check_int(name, value, low, high)
    checked.update(check_actor_critic_floats(arguments))
    for name in FLAGS:
        checked[name] = check_bool(name, arguments[name])
    return checked


def check_batch_mode(
    n_steps: int | None,
    use_baseline: bool,
    gae_lambda: float,
    rollout_buffer_class: type[RolloutBuffer] | None,
    rollout_buffer_kwargs: dict[str, Any] | None,
) -> None:
    """
    Refuse the A2C arguments that whole-episode batches cannot honour, and ``n_steps`` batches without a baseline.

    :param n_steps: ``None`` for whole-episode batches, else the steps per env of a fixed-size batch
    :param use_baseline: whether a learned value is trained (fixed-size batches bootstrap from it)
    :param gae_lambda: GAE's lambda (1: Monte-Carlo returns)
    :param rollout_buffer_class: rollout buffer class of the fixed-size batches
    :param rollout_buffer_kwargs: keyword arguments of that buffer
    """
    if n_steps is not None:
        if not use_baseline:
            raise ValueError("n_steps bootstraps the episodes it cuts from the learned value: set use_baseline=True")
        return
    if gae_lambda != 1.0:
        raise ValueError(
            f"gae_lambda={gae_lambda} bootstraps from the learned value inside episodes, but whole-episode batches "
            "(n_steps=None) use Monte-Carlo returns: leave gae_lambda at 1.0, or set n_steps and use_baseline=True "
            "for A2C's GAE batches"
        )
    if rollout_buffer_class is not None or rollout_buffer_kwargs:
        raise ValueError(
            "rollout_buffer_class and rollout_buffer_kwargs configure the fixed-size buffer of n_steps batches; "
            "whole-episode batches (n_steps=None) have none: leave them None, or set n_steps and use_baseline=True"
        )

"""Logging shared by the course algorithms that run their own ``learn()`` loop (REINFORCE, A3C)."""

import sys
import time

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import safe_mean


def record_rollout_and_time(model: BaseAlgorithm) -> None:
    """
    Record ``rollout/ep_rew_mean``, ``rollout/ep_len_mean`` and the ``time/`` entries as SB3's own algorithms do
    in ``dump_logs``; the caller adds its ``train/`` entries and dumps.

    :param model: the algorithm, inside ``learn()`` (after ``_setup_learn``)
    """
    time_elapsed = max((time.time_ns() - model.start_time) / 1e9, sys.float_info.epsilon)
    fps = int((model.num_timesteps - model._num_timesteps_at_start) / time_elapsed)
    assert model.ep_info_buffer is not None
    if len(model.ep_info_buffer) > 0:
        model.logger.record("rollout/ep_rew_mean", safe_mean([ep_info["r"] for ep_info in model.ep_info_buffer]))
        model.logger.record("rollout/ep_len_mean", safe_mean([ep_info["l"] for ep_info in model.ep_info_buffer]))
    model.logger.record("time/episodes", model._episode_num, exclude="tensorboard")
    model.logger.record("time/fps", fps)
    model.logger.record("time/time_elapsed", int(time_elapsed), exclude="tensorboard")
    model.logger.record("time/total_timesteps", model.num_timesteps, exclude="tensorboard")

"""Pieces shared by the continuous-control tests: the hand computations' parts, a fixed batch, save and reload."""

from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import ReplayBufferSamples


def linear(x: th.Tensor, layer: th.nn.Linear) -> th.Tensor:
    """``W x + b`` of a layer's current weights, outside autograd."""
    return x @ layer.weight.detach().T + layer.bias.detach()


def feed_fixed_pendulum_batch(model: BaseAlgorithm) -> ReplayBufferSamples:
    """Make the replay buffer of a Pendulum model return three fixed transitions (the middle one terminal)."""
    batch = ReplayBufferSamples(
        observations=th.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -3.0], [-1.0, 0.5, 0.5]]),
        actions=th.tensor([[0.5], [-1.0], [0.2]]),
        next_observations=th.tensor([[0.5, 0.5, 4.0], [1.0, -1.0, 2.0], [-2.0, 1.0, 8.0]]),
        dones=th.tensor([[0.0], [1.0], [0.0]]),
        rewards=th.tensor([[-3.0], [0.5], [2.0]]),
    )
    model.replay_buffer.sample = lambda *args, **kwargs: batch  # type: ignore[method-assign, union-attr]
    return batch


def reloaded_with_replay_buffer(model: OffPolicyAlgorithm, folder: Path) -> OffPolicyAlgorithm:
    """
    Save a Pendulum model and its replay buffer under ``folder`` and load both back; check that the copy predicts
    the same deterministic actions on 20 observations and holds the same transitions.
    """
    model.save(folder / "model")
    model.save_replay_buffer(folder / "buffer")
    loaded = type(model).load(folder / "model")
    loaded.load_replay_buffer(folder / "buffer")
    observations = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0], loaded.predict(observations, deterministic=True)[0]
    )
    assert model.replay_buffer is not None and loaded.replay_buffer is not None
    assert loaded.replay_buffer.size() == model.replay_buffer.size()
    for name in ("observations", "actions", "rewards"):
        np.testing.assert_array_equal(getattr(loaded.replay_buffer, name), getattr(model.replay_buffer, name), name)
    return loaded

"""Pieces of the hand computations shared by the continuous-control update tests."""

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
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

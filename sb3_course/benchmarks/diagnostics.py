"""
Training diagnostics behind the learning results in ``docs/results.md``: a callback that records, every ``freq``
steps, the quantities that explain why a run ends unsolved (Q values, the critic's gradient norm, the learning
rate, how often the clamped actor sits past its bound), written as one CSV row per record.

It is an rl-zoo3 ``callback`` hyperparameter, so a recipe run records them without code::

    sb3-course train --algo course_dqn --env CartPole-v1 --seed 3 \\
        -params "callback:{'sb3_course.benchmarks.diagnostics.TrainingDiagnostics': dict(path='dqn-{seed}.csv')}"
"""

import csv
from typing import Any

import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from torch.nn import functional as F


class TrainingDiagnostics(BaseCallback):
    """
    Every ``freq`` steps, on ``batch_size`` transitions sampled from the replay buffer: the mean and largest
    |Q(s, a)|, the gradient norm of the critic's (or Q-network's) TD loss, the current learning rate and, for an
    actor with a clamped output, the fraction of states whose pre-clamp action leaves [-1, 1]. Off-policy course
    algorithms only (they have a replay buffer).

    :param path: CSV file to write; ``{seed}`` in it is replaced by the model's seed
    :param freq: steps between two records
    :param batch_size: transitions per record
    """

    def __init__(self, path: str, freq: int = 2000, batch_size: int = 1024) -> None:
        super().__init__()
        self.path, self.freq, self.batch_size = path, freq, batch_size
        self.rows: list[dict[str, float]] = []

    def _on_step(self) -> bool:
        buffer = getattr(self.model, "replay_buffer", None)
        if self.n_calls % self.freq == 0 and buffer is not None and buffer.size() > 0:
            self.rows.append({"timesteps": self.num_timesteps, **self._record(buffer.sample(self.batch_size))})
        return True

    def _record(self, batch: ReplayBufferSamples) -> dict[str, float]:
        model: Any = self.model  # an off-policy course algorithm: q_net or actor / critic
        row = {"learning_rate": float(model.lr_schedule(model._current_progress_remaining))}
        if hasattr(model, "q_net"):
            q_values = model.q_net(batch.observations)
            current = th.gather(q_values, 1, batch.actions.long())
            with th.no_grad():
                target = (
                    batch.rewards
                    + (1 - batch.dones) * model.gamma * model.q_net_target(batch.next_observations).max(1)[0][:, None]
                )
            loss, network = F.smooth_l1_loss(current, target), model.q_net
        else:
            current = model.critic(batch.observations, batch.actions)[0]
            with th.no_grad():
                next_q = model.critic_target(batch.next_observations, model.actor_target(batch.next_observations))[0]
                target = batch.rewards + (1 - batch.dones) * model.gamma * next_q
            loss, network = F.mse_loss(current, target), model.critic
            with th.no_grad():
                mu = getattr(model.actor, "mu", None)
                if mu is not None:
                    features = model.actor.extract_features(batch.observations, model.actor.features_extractor)
                    row["actor_past_bound"] = float((mu(features).abs() > 1).float().mean())
        grads = th.autograd.grad(loss, [param for param in network.parameters() if param.requires_grad], allow_unused=True)
        row["grad_norm"] = float(th.sqrt(sum((grad.square().sum() for grad in grads if grad is not None), th.tensor(0.0))))
        row["q_mean_abs"] = float(current.detach().abs().mean())
        row["q_max_abs"] = float(current.detach().abs().max())
        return row

    def _on_training_end(self) -> None:
        if self.rows:
            with open(self.path.format(seed=self.model.seed), "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=list(self.rows[-1]))
                writer.writeheader()
                writer.writerows(self.rows)

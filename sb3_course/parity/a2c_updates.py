"""
A3C taking SB3's A2C update, for the implementation check of the A3C pair (``SB3_EXPRESSIBLE["a3c"]`` in
:mod:`sb3_course.zoo.matched`): with one worker, A2C's rollouts and its mean loss, A3C computes A2C's update
(``tests/test_a3c.py::test_one_worker_with_fixed_rollouts_and_mean_loss_takes_a2cs_update``), so a gap between
the two sides of the matched comparison can only come from the implementation. The course class itself keeps
the paper's rollouts and the course's summed loss.
"""

import dataclasses

from stable_baselines3.common.callbacks import BaseCallback

from sb3_course.a3c import A3C
from sb3_course.a3c.worker import WorkerConfig


class A3CWithA2CUpdates(A3C):
    """
    A3C whose workers take A2C's update: rollouts of exactly ``n_steps`` steps that run across episode ends (the
    returns restarting at each end and a truncation's ``gamma * V(s_T)`` added to its reward, as SB3's A2C) instead
    of rollouts that end with their episode, and each loss term averaged over the rollout instead of summed (the
    gradient no longer grows with the rollout length, which matters for ``max_grad_norm``).

    Takes A3C's arguments; ``n_steps`` must be set.
    """

    def _worker_config(self, total_timesteps: int) -> WorkerConfig:
        if self.n_steps is None:
            raise ValueError(
                f"{type(self).__name__} needs n_steps: A2C's rollouts are n_steps steps that run across episode ends"
            )
        return dataclasses.replace(super()._worker_config(total_timesteps), a2c_updates=True)


class A2CUpdates(BaseCallback):
    """
    :class:`A3CWithA2CUpdates` for ``sb3-course train``: rl-zoo3 builds the model of the key ``a3c`` as ``A3C``, and
    a recipe cannot name another class, but it can name callbacks (``callback: sb3_course.parity.a2c_updates.A2CUpdates``,
    in the parity suite ``--course-params callback:sb3_course.parity.a2c_updates.A2CUpdates``). When training starts,
    before the workers are configured, this callback makes the A3C model an ``A3CWithA2CUpdates``, which only
    overrides how the workers are configured and adds no state.
    """

    def _init_callback(self) -> None:
        if type(self.model) not in (A3C, A3CWithA2CUpdates):
            raise TypeError(
                f"A2CUpdates makes an A3C model take A2C's updates, got a {type(self.model).__name__}: use it with the "
                "rl-zoo3 key a3c"
            )
        self.model.__class__ = A3CWithA2CUpdates

    def _on_step(self) -> bool:
        return True

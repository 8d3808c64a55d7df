"""
A3C taking SB3's A2C update, for the implementation check of the A3C pair (``SB3_EXPRESSIBLE["a3c"]`` in
:mod:`sb3_course.zoo.matched`): with one worker, A2C's rollouts and its mean loss, A3C computes A2C's update
(``tests/test_a3c.py::test_one_worker_with_fixed_rollouts_and_mean_loss_takes_a2cs_update``), so a gap between
the two sides of the matched comparison can only come from the implementation. The course class itself keeps
the paper's rollouts and the course's summed loss.
"""

import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from sb3_course.a3c import A3C
from sb3_course.a3c.worker import Worker


class A2CUpdatesWorker(Worker):
    """
    An A3C worker taking A2C's update: rollouts of exactly ``n_steps`` steps that run across episode ends (the
    returns restarting at each end and a truncation's ``gamma * V(s_T)`` added to its reward, as SB3's A2C) instead
    of rollouts that end with their episode, and each loss term averaged over the rollout instead of summed (the
    gradient no longer grows with the rollout length, which matters for ``max_grad_norm``).
    """

    rollout_ends_with_episode = False

    def reduce(self, terms: th.Tensor) -> th.Tensor:
        return terms.mean()


class A2CUpdates(BaseCallback):
    """
    Make an A3C model's workers :class:`A2CUpdatesWorker` (its ``worker_class``) when training starts, before they
    are configured: ``A3C(...).learn(n, callback=A2CUpdates())``, or for ``sb3-course train`` (rl-zoo3 builds the
    key ``a3c`` as ``A3C``, and a recipe can name callbacks) ``callback: sb3_course.parity.a2c_updates.A2CUpdates``,
    in the parity suite ``--course-params callback:sb3_course.parity.a2c_updates.A2CUpdates``.
    """

    def _init_callback(self) -> None:
        if not isinstance(self.model, A3C):
            raise TypeError(
                f"A2CUpdates makes an A3C model take A2C's updates, got a {type(self.model).__name__}: use it with the "
                "rl-zoo3 key a3c"
            )
        if self.model.n_steps is None:
            raise ValueError("A2CUpdates needs n_steps: A2C's rollouts are n_steps steps that run across episode ends")
        self.model.worker_class = A2CUpdatesWorker  # type: ignore[misc]

    def _on_step(self) -> bool:
        return True

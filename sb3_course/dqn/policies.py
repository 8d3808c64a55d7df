from typing import Any

from stable_baselines3.dqn.policies import CnnPolicy as SB3CnnPolicy
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.dqn.policies import MultiInputPolicy as SB3MultiInputPolicy

# The course network: obs -> 32 -> ReLU -> 32 -> ReLU -> n_actions (the notes' ``Brain.__init__``)
COURSE_NET_ARCH = [32, 32]


class CourseDQNPolicy(DQNPolicy):
    """
    Q-network policy of the course DQN: SB3's ``DQNPolicy`` with the course MLP [32, 32] as default.

    The policy keeps SB3's ``q_net_target`` module so that checkpoints stay interchangeable with SB3's;
    ``CourseDQN`` decides whether it is used (``use_target_network``).

    :param args: positional arguments of ``DQNPolicy``
    :param net_arch: hidden layer sizes (default: the course's [32, 32])
    :param kwargs: keyword arguments of ``DQNPolicy``
    """

    def __init__(self, *args: Any, net_arch: list[int] | None = None, **kwargs: Any) -> None:
        kwargs["net_arch"] = list(COURSE_NET_ARCH) if net_arch is None else net_arch
        super().__init__(*args, **kwargs)


MlpPolicy = CourseDQNPolicy
# Image and dict observations use SB3's defaults (NatureCNN / CombinedExtractor with no extra hidden layer).
CnnPolicy = SB3CnnPolicy
MultiInputPolicy = SB3MultiInputPolicy

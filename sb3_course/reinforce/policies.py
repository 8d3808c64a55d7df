from typing import Any

from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

# The course network: obs -> 128 -> ReLU -> n_actions (the notes' ``MLP(s_dim, a_dim, [128])``)
COURSE_NET_ARCH = [128]


class CourseMLPDefaults:
    """
    Put before an SB3 actor-critic policy class: the course MLP [128] with ReLU as the default ``net_arch`` and
    ``activation_fn`` (SB3's own defaults are [64, 64] and tanh); any value given is SB3's.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        **kwargs: Any,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]
            observation_space,
            action_space,
            lr_schedule,
            net_arch=list(COURSE_NET_ARCH) if net_arch is None else net_arch,
            activation_fn=activation_fn,
            **kwargs,
        )


class REINFORCEPolicy(CourseMLPDefaults, ActorCriticPolicy):
    """
    Policy of REINFORCE: SB3's ``ActorCriticPolicy`` with the course MLP [128] (ReLU) as default.

    The actor gives the distribution of the action space (categorical for ``Discrete``, diagonal Gaussian for
    ``Box``, ...). The value head is only trained when REINFORCE uses a learned baseline (``use_baseline=True``);
    otherwise it stays untouched.

    :param observation_space: observation space
    :param action_space: action space
    :param lr_schedule: learning rate schedule
    :param net_arch: hidden layer sizes of the actor (and of the separate value network) (default: [128])
    :param activation_fn: activation function of the hidden layers (default: ReLU, as in the course MLP)
    :param kwargs: keyword arguments of ``ActorCriticPolicy``
    """


class REINFORCEMultiInputPolicy(CourseMLPDefaults, MultiInputActorCriticPolicy):
    """
    Policy of REINFORCE for ``Dict`` observations: SB3's ``MultiInputActorCriticPolicy`` (``CombinedExtractor``:
    a CNN per image key, the other keys flattened) with the course MLP [128] (ReLU) on top as default.

    :param observation_space: observation space (``Dict``)
    :param action_space: action space
    :param lr_schedule: learning rate schedule
    :param net_arch: hidden layer sizes of the actor (and of the separate value network) (default: [128])
    :param activation_fn: activation function of the hidden layers (default: ReLU, as in the course MLP)
    :param kwargs: keyword arguments of ``MultiInputActorCriticPolicy``
    """


MlpPolicy = REINFORCEPolicy
# Image observations use SB3's default (NatureCNN, no extra hidden layer).
CnnPolicy = ActorCriticCnnPolicy
MultiInputPolicy = REINFORCEMultiInputPolicy

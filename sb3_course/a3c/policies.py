from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from torch import nn
from torch.nn import functional as F

from sb3_course.common.validation import check_int

# The course network (the notes' ``ActorCritic``): trunk 4 -> 25 -> 50, critic branch 50 -> 25 on the detached trunk
COURSE_NET_ARCH: dict[str, list[int]] = {"trunk": [25, 50], "vf": [25]}
NET_ARCH_FORMS = "a list of layer sizes or dict(pi=[...], vf=[...]) (SB3's forms), or dict(trunk=[...], vf=[...])"


def course_net_arch(net_arch: list[int] | dict[str, list[int]]) -> dict[str, list[int]]:
    """
    ``net_arch`` in the course's form ``{"trunk": [...], "vf": [...]}``. SB3's forms map onto it: ``pi``, the
    actor's hidden layers, is the trunk (the course's actor is the trunk and its head) and ``vf`` the critic's branch
    on the trunk output; a list ``L`` is SB3's ``dict(pi=L, vf=L)``.

    :param net_arch: the ``net_arch`` given
    """
    if isinstance(net_arch, list | tuple):
        net_arch = dict(pi=list(net_arch), vf=list(net_arch))
    if not isinstance(net_arch, dict):
        raise TypeError(f"net_arch must be {NET_ARCH_FORMS}, got {net_arch!r}")
    if not set(net_arch) <= {"trunk", "pi", "vf"} or {"trunk", "pi"} <= set(net_arch):
        raise ValueError(f"net_arch must be {NET_ARCH_FORMS}, got {net_arch!r}")
    course = {"trunk": list(net_arch.get("trunk", net_arch.get("pi", []))), "vf": list(net_arch.get("vf", []))}
    for sizes in course.values():
        for size in sizes:
            check_int("net_arch layer size", size)
    return course


class L2NormalizeExtractor(BaseFeaturesExtractor):
    """
    Flatten each observation and divide it by its L2 norm (the notes: ``F.normalize(x, dim=0)`` on the state).

    :param observation_space: the observation space
    """

    def __init__(self, observation_space: spaces.Space) -> None:
        super().__init__(observation_space, get_flattened_obs_dim(observation_space))
        self.flatten = nn.Flatten()

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return F.normalize(self.flatten(observations), dim=1)


def _mlp(input_dim: int, sizes: list[int], activation_fn: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(input_dim, size), activation_fn()]
        input_dim = size
    return nn.Sequential(*layers)


class CourseActorCriticNet(nn.Module):
    """
    Shared trunk for the actor and a critic branch that reads the trunk output, detached by default, so that the
    critic loss never changes the trunk (the notes: ``c = F.relu(self.l3(y.detach()))``).

    Plays the role of SB3's ``MlpExtractor``: ``latent_pi`` is the trunk output, ``latent_vf`` the branch output.

    :param feature_dim: dimension of the features
    :param net_arch: ``{"trunk": [...], "vf": [...]}`` hidden sizes of the trunk and of the critic branch
    :param activation_fn: activation function of the hidden layers
    :param detach_critic: stop the critic's gradient at the trunk output
    """

    def __init__(
        self, feature_dim: int, net_arch: dict[str, list[int]], activation_fn: type[nn.Module], detach_critic: bool = True
    ) -> None:
        super().__init__()
        self.trunk = _mlp(feature_dim, net_arch.get("trunk", []), activation_fn)
        self.latent_dim_pi = net_arch["trunk"][-1] if net_arch.get("trunk") else feature_dim
        self.critic_branch = _mlp(self.latent_dim_pi, net_arch.get("vf", []), activation_fn)
        self.latent_dim_vf = net_arch["vf"][-1] if net_arch.get("vf") else self.latent_dim_pi
        self.detach_critic = detach_critic

    def _critic(self, latent_trunk: th.Tensor) -> th.Tensor:
        return self.critic_branch(latent_trunk.detach() if self.detach_critic else latent_trunk)

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        latent_trunk = self.trunk(features)
        return latent_trunk, self._critic(latent_trunk)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        return self.trunk(features)

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return self._critic(self.trunk(features))


class A3CPolicy(ActorCriticPolicy):
    """
    The course actor-critic network as an SB3 ``ActorCriticPolicy``: L2-normalised input, shared trunk
    [25, 50] (ReLU), actor head on the trunk, critic branch [25] on the detached trunk and a tanh value head.

    The actor head gives SB3's distributions: categorical logits for ``Discrete`` (the course's log-softmax),
    one categorical per dimension for ``MultiDiscrete``, Bernoulli logits for ``MultiBinary`` and a diagonal
    Gaussian for ``Box``. With ``squash_value`` the value lies in (-1, 1), which suits returns
    normalised to unit norm (A3C's ``normalize_returns``) but not raw returns.

    :param observation_space: observation space
    :param action_space: action space
    :param lr_schedule: learning rate schedule (each A3C worker builds its own optimizer from it)
    :param net_arch: ``{"trunk": [...], "vf": [...]}`` or SB3's forms, see :func:`course_net_arch` (default: the
        course's trunk [25, 50] and branch [25])
    :param activation_fn: activation function of the hidden layers (default: ReLU, as in the course)
    :param ortho_init: orthogonal initialisation (default: off, PyTorch's default initialisation as in the course)
    :param detach_critic: the critic branch reads the detached trunk output (course: on)
    :param squash_value: tanh on the value head (course: on)
    :param features_extractor_class: features extractor (default: flatten and L2-normalise, as in the course)
    :param kwargs: other keyword arguments of ``ActorCriticPolicy``
    """

    default_net_arch: ClassVar[dict[str, list[int]]] = COURSE_NET_ARCH

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        ortho_init: bool = False,
        detach_critic: bool = True,
        squash_value: bool = True,
        features_extractor_class: type[BaseFeaturesExtractor] = L2NormalizeExtractor,
        **kwargs: Any,
    ) -> None:
        self.detach_critic = detach_critic
        self.squash_value = squash_value
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=course_net_arch(self.default_net_arch if net_arch is None else net_arch),  # type: ignore[arg-type]
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            features_extractor_class=features_extractor_class,
            **kwargs,
        )

    def _build_mlp_extractor(self) -> None:
        assert isinstance(self.net_arch, dict)
        self.mlp_extractor = CourseActorCriticNet(  # type: ignore[assignment]
            self.features_dim, self.net_arch, self.activation_fn, self.detach_critic
        )

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        if self.squash_value:
            # Same Linear parameters, so the optimizer built by the parent still holds them.
            self.value_net = nn.Sequential(self.value_net, nn.Tanh())  # type: ignore[assignment]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(detach_critic=self.detach_critic, squash_value=self.squash_value)
        return data


class A3CCnnPolicy(A3CPolicy):
    """
    :class:`A3CPolicy` for images with SB3's ``CnnPolicy`` layout: NatureCNN features shared by the actor and
    critic heads, both losses training it (the A3C paper's Atari network); the course's tanh value head.

    :param observation_space: observation space (images)
    :param action_space: action space
    :param lr_schedule: learning rate schedule (each A3C worker builds its own optimizer from it)
    :param detach_critic: the critic reads the detached features (default: off, as in the paper)
    :param features_extractor_class: features extractor (default: NatureCNN, as SB3's ``CnnPolicy``)
    :param kwargs: other keyword arguments of :class:`A3CPolicy`
    """

    default_net_arch: ClassVar[dict[str, list[int]]] = {"trunk": [], "vf": []}

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        detach_critic: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            detach_critic=detach_critic,
            features_extractor_class=features_extractor_class,
            **kwargs,
        )


class A3CMultiInputPolicy(A3CPolicy):
    """
    :class:`A3CPolicy` for ``Dict`` observations: SB3's ``CombinedExtractor`` (NatureCNN on images, flattened
    vectors) under the course's trunk and detached critic branch.

    :param observation_space: observation space (``Dict``)
    :param action_space: action space
    :param lr_schedule: learning rate schedule (each A3C worker builds its own optimizer from it)
    :param features_extractor_class: features extractor (default: CombinedExtractor, as SB3's ``MultiInputPolicy``)
    :param kwargs: other keyword arguments of :class:`A3CPolicy`
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space, action_space, lr_schedule, features_extractor_class=features_extractor_class, **kwargs
        )


MlpPolicy = A3CPolicy
CnnPolicy = A3CCnnPolicy
MultiInputPolicy = A3CMultiInputPolicy
# A general MLP actor-critic (separate actor and critic MLPs, no detach, linear value head), e.g. for Box actions.
ActorCriticMlpPolicy = ActorCriticPolicy

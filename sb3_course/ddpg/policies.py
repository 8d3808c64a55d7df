import math
from typing import Any, Literal

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN, create_mlp
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.td3.policies import Actor, TD3Policy
from torch import nn

from sb3_course.common.validation import check_float

# The course networks (the notes' ``Actor`` / ``Critic``): actor obs -> 128 -> 64 -> action, critic q_estimator 128 -> 32 -> 1
COURSE_NET_ARCH = {"pi": [128, 64], "qf": [32]}
COURSE_ENCODER_DIM = 64


class ClampedActor(Actor):
    """
    Deterministic actor of the course DDPG: an MLP with identity output, clamped to [-1, 1].

    It works in SB3's normalised action space, so ``clamp(-1, 1)`` here is the notes' ``clamp(low, high)``
    and ``predict`` rescales to the env's bounds as for SB3's tanh actor.

    :param observation_space: Observation space
    :param action_space: Action space
    :param net_arch: hidden layer sizes
    :param features_extractor: network to extract features
    :param features_dim: number of features
    :param activation_fn: activation function of the hidden layers
    :param normalize_images: whether to divide images by 255
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: nn.Module,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
    ) -> None:
        super().__init__(
            observation_space, action_space, net_arch, features_extractor, features_dim, activation_fn, normalize_images
        )
        # The same MLP as SB3's actor without its final tanh
        self.mu = nn.Sequential(*create_mlp(features_dim, get_action_dim(self.action_space), net_arch, activation_fn))

    def unclamped(self, obs: th.Tensor) -> th.Tensor:
        """The MLP's output before the clamp, u(s)."""
        return super().forward(obs)

    def forward(self, obs: th.Tensor) -> th.Tensor:
        # mu(s) = clamp(u(s), -1, 1): zero gradient outside the bounds, as in the notes
        return self.unclamped(obs).clamp(-1.0, 1.0)


def init_final_layer(mlp: nn.Sequential, bound: float | None) -> None:
    """
    Draw the weights and biases of the last ``nn.Linear`` of ``mlp`` from U(-bound, bound), as the DDPG paper
    initialises the final layers of its actor and critic (3e-3): the actor's first outputs lie near 0, inside the
    clamp, and the first Q values near 0. ``None`` keeps PyTorch's default initialisation.
    """
    if bound is None:
        return
    final = [layer for layer in mlp if isinstance(layer, nn.Linear)][-1]
    nn.init.uniform_(final.weight, -bound, bound)
    nn.init.uniform_(final.bias, -bound, bound)


# actor_output -> actor class: the course's clamped MLP, or SB3's actor (tanh output)
ACTOR_OUTPUTS: dict[str, type[Actor]] = {"clamp": ClampedActor, "tanh": Actor}


class EncoderQNetwork(nn.Module):
    """
    Q(s, a) = q_estimator([relu(state_encoder(s)), relu(action_encoder(a))]).

    :param features_dim: size of the state features
    :param action_dim: size of the action
    :param state_encoder_dim: output size of the state encoder
    :param action_encoder_dim: output size of the action encoder
    :param net_arch: hidden layer sizes of the q_estimator
    :param activation_fn: activation function
    """

    def __init__(
        self,
        features_dim: int,
        action_dim: int,
        state_encoder_dim: int,
        action_encoder_dim: int,
        net_arch: list[int],
        activation_fn: type[nn.Module],
    ) -> None:
        super().__init__()
        self.features_dim = features_dim
        self.state_encoder = nn.Sequential(nn.Linear(features_dim, state_encoder_dim), activation_fn())
        self.action_encoder = nn.Sequential(nn.Linear(action_dim, action_encoder_dim), activation_fn())
        self.q_estimator = nn.Sequential(*create_mlp(state_encoder_dim + action_encoder_dim, 1, net_arch, activation_fn))

    def forward(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        return self.q_estimator(th.cat([self.state_encoder(features), self.action_encoder(actions)], dim=1))


class EncoderCritic(ContinuousCritic):
    """
    SB3's ``ContinuousCritic`` whose Q-networks encode state and action separately (the notes' ``Critic``).

    ``forward`` and ``q1_forward`` are SB3's, except that each Q-network gets features and action as two tensors:
    SB3 concatenates them for its concat-MLP, which here would only be split again for the two encoders (two
    operations more in every forward and backward pass, for the same values).

    :param observation_space: Observation space
    :param action_space: Action space
    :param net_arch: hidden layer sizes of the q_estimator
    :param features_extractor: network to extract features
    :param features_dim: number of features
    :param activation_fn: activation function
    :param normalize_images: whether to divide images by 255
    :param n_critics: number of Q-networks (course: 1)
    :param share_features_extractor: whether the features extractor is shared with the actor
    :param state_encoder_dim: output size of the state encoder (course: 64)
    :param action_encoder_dim: output size of the action encoder (course: 64)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 1,
        share_features_extractor: bool = True,
        state_encoder_dim: int = COURSE_ENCODER_DIM,
        action_encoder_dim: int = COURSE_ENCODER_DIM,
    ) -> None:
        # n_critics=0: the parent builds no concat-MLP head; the encoder heads below take their place.
        super().__init__(
            observation_space,
            action_space,
            net_arch,
            features_extractor,
            features_dim,
            activation_fn,
            normalize_images,
            n_critics=0,
            share_features_extractor=share_features_extractor,
        )
        self.n_critics = n_critics
        action_dim = get_action_dim(self.action_space)
        for idx in range(n_critics):
            q_net = EncoderQNetwork(features_dim, action_dim, state_encoder_dim, action_encoder_dim, net_arch, activation_fn)
            self.add_module(f"qf{idx}", q_net)
            self.q_networks.append(q_net)

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        # The features extractor learns from the actor loss only when it is shared with the actor (as SB3)
        with th.set_grad_enabled(not self.share_features_extractor):
            features = self.extract_features(obs, self.features_extractor)
        return tuple(q_net(features, actions) for q_net in self.q_networks)

    def q1_forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        with th.no_grad():
            features = self.extract_features(obs, self.features_extractor)
        return self.q_networks[0](features, actions)


class CourseDDPGPolicy(TD3Policy):
    """
    Actor-critic policy of the course DDPG: SB3's ``TD3Policy`` with a clamped actor and an encoder critic.

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: learning rate schedule of both optimizers (``CourseDDPG`` sets each one's rate)
    :param net_arch: hidden sizes, ``dict(pi=actor, qf=q_estimator)`` or one list for both
        (default: the course's ``dict(pi=[128, 64], qf=[32])``)
    :param state_encoder_dim: output size of the critic's state encoder (course: 64)
    :param action_encoder_dim: output size of the critic's action encoder (course: 64)
    :param n_critics: number of Q-networks (course: 1)
    :param actor_output: ``"clamp"`` (course: identity output clamped to the bounds, no gradient past them) or
        ``"tanh"`` (SB3's actor: tanh output), for comparing the two
    :param final_layer_init: when given, the last layer of the actor and of each Q-network is drawn from
        U(-final_layer_init, final_layer_init) (the DDPG paper's 3e-3); ``None``: PyTorch's default (the notes')
    :param kwargs: other keyword arguments of ``TD3Policy``
    """

    actor: Actor
    actor_target: Actor
    critic: EncoderCritic
    critic_target: EncoderCritic

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        state_encoder_dim: int = COURSE_ENCODER_DIM,
        action_encoder_dim: int = COURSE_ENCODER_DIM,
        n_critics: int = 1,
        actor_output: Literal["clamp", "tanh"] = "clamp",
        final_layer_init: float | None = None,
        **kwargs: Any,
    ) -> None:
        if actor_output not in ACTOR_OUTPUTS:
            raise ValueError(f"actor_output must be one of {tuple(ACTOR_OUTPUTS)}, got {actor_output!r}")
        if final_layer_init is not None:
            check_float("final_layer_init", final_layer_init, 0.0, math.inf, low_inclusive=False, high_inclusive=False)
        self.final_layer_init = final_layer_init
        # Set before the parent's __init__, which calls _build() -> make_actor() / make_critic()
        self.actor_output = actor_output
        self.state_encoder_dim = state_encoder_dim
        self.action_encoder_dim = action_encoder_dim
        net_arch = {key: list(sizes) for key, sizes in COURSE_NET_ARCH.items()} if net_arch is None else net_arch
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, n_critics=n_critics, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            state_encoder_dim=self.state_encoder_dim,
            action_encoder_dim=self.action_encoder_dim,
            actor_output=self.actor_output,
            final_layer_init=self.final_layer_init,
        )
        return data

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> Actor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        actor = ACTOR_OUTPUTS[self.actor_output](**actor_kwargs)
        init_final_layer(actor.mu, self.final_layer_init)  # type: ignore[arg-type]
        return actor.to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> EncoderCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        critic = EncoderCritic(
            **critic_kwargs, state_encoder_dim=self.state_encoder_dim, action_encoder_dim=self.action_encoder_dim
        )
        for q_net in critic.q_networks:
            init_final_layer(q_net.q_estimator, self.final_layer_init)  # type: ignore[union-attr,arg-type]
        return critic.to(self.device)


class CourseDDPGCnnPolicy(CourseDDPGPolicy):
    """
    :class:`CourseDDPGPolicy` for image observations: the clamped actor and the critic's state encoder read SB3's
    ``NatureCNN`` features (as SB3's DDPG ``CnnPolicy`` is ``TD3Policy`` on it).

    :param args: positional arguments of :class:`CourseDDPGPolicy`
    :param features_extractor_class: features extractor of the actor and the critic (default: ``NatureCNN``)
    :param kwargs: keyword arguments of :class:`CourseDDPGPolicy`
    """

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN, **kwargs: Any) -> None:
        kwargs["features_extractor_class"] = features_extractor_class
        super().__init__(*args, **kwargs)


class CourseDDPGMultiInputPolicy(CourseDDPGPolicy):
    """
    :class:`CourseDDPGPolicy` for ``Dict`` observations: the clamped actor and the critic's state encoder read
    SB3's ``CombinedExtractor`` features (as SB3's DDPG ``MultiInputPolicy`` is ``TD3Policy`` on it).

    :param args: positional arguments of :class:`CourseDDPGPolicy`
    :param features_extractor_class: features extractor of the actor and the critic (default: ``CombinedExtractor``)
    :param kwargs: keyword arguments of :class:`CourseDDPGPolicy`
    """

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs: Any
    ) -> None:
        kwargs["features_extractor_class"] = features_extractor_class
        super().__init__(*args, **kwargs)


MlpPolicy = CourseDDPGPolicy
CnnPolicy = CourseDDPGCnnPolicy
MultiInputPolicy = CourseDDPGMultiInputPolicy

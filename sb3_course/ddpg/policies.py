import math
from typing import Any, ClassVar, Literal

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN, create_mlp
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.td3.policies import Actor, TD3Policy
from torch import nn

from sb3_course.common.fast_path import FastPolicyMixin
from sb3_course.common.fused_mlp import (
    ReluMLP,
    relu_mlp_backward,
    relu_mlp_forward,
    with_sparse_grad_rows,
)
from sb3_course.common.validation import check_float

# The course networks (000, ``Actor`` / ``Critic``): actor obs -> 128 -> 64 -> action, critic q_estimator 128 -> 32 -> 1
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
        # The same MLP as SB3's actor without its final tanh. No gradient on the rows the clamp cuts (often most
        # of a batch): the fused MLP's backward pass skips them
        mlp = create_mlp(features_dim, get_action_dim(self.action_space), net_arch, activation_fn)
        self.mu = with_sparse_grad_rows(nn.Sequential(*mlp))

    def forward(self, obs: th.Tensor) -> th.Tensor:
        # mu(s) = clamp(MLP(s), -1, 1): zero gradient outside the bounds, as in the notes
        return super().forward(obs).clamp(-1.0, 1.0)


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


def encode(
    features: th.Tensor,
    actions: th.Tensor,
    state_weight: th.Tensor,
    state_bias: th.Tensor,
    action_weight: th.Tensor,
    action_bias: th.Tensor,
) -> th.Tensor:
    """
    ``[relu(state_encoder(s)), relu(action_encoder(a))]``: each encoder's product written straight into its
    columns of the concatenation (``addmm`` into a strided view), the ReLU in place; bit for bit the same as
    ``th.cat`` of the two ReLU outputs without their two buffers and the copy.
    """
    split = state_weight.shape[0]
    encoded = features.new_empty(features.shape[0], split + action_weight.shape[0])
    th.addmm(state_bias, features, state_weight.t(), out=encoded[:, :split])
    th.addmm(action_bias, actions, action_weight.t(), out=encoded[:, split:])
    return encoded.relu_()


class _EncoderQFunction(th.autograd.Function):
    """
    :class:`EncoderQNetwork` with ReLU (its encoders and ``q_estimator`` made :class:`ReluMLP` by
    :func:`fuse_relu_mlps`) as one autograd node: the forward pass with the operations of the three ReLU MLPs and
    the concatenation (:func:`relu_mlp_forward`), the backward pass with theirs (:func:`relu_mlp_backward`), where
    autograd would run three nodes and a concatenation's backward node between them. Same values and gradients
    bit for bit.
    """

    @staticmethod
    def forward(ctx: Any, features: th.Tensor, actions: th.Tensor, *params: th.Tensor) -> th.Tensor:
        state_weight, state_bias, action_weight, action_bias, *head = params
        encoded = encode(features, actions, state_weight, state_bias, action_weight, action_bias)
        hidden, inputs = relu_mlp_forward(encoded, head, relu_after_last=False)
        weights = head[0::2]
        ctx.n_layers = len(weights)
        ctx.save_for_backward(features, actions, state_weight, action_weight, *inputs, *weights)
        return hidden

    @staticmethod
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor | None, ...]:
        features, actions, state_weight, action_weight, *saved = ctx.saved_tensors
        n, needs = ctx.n_layers, ctx.needs_input_grad
        split = state_weight.shape[0]
        encoded_state, encoded_action = saved[0][:, :split], saved[0][:, split:]  # the estimator's input
        state_path, action_path = needs[0] or any(needs[2:4]), needs[1] or any(needs[4:6])
        # Only the action encoder's part of the concatenation's gradient when the state path is frozen (an actor
        # loss through the critic): half of the first estimator layer's input-gradient product
        columns = slice(split, None) if action_path and not state_path else None
        grad_hidden, head_grads = relu_mlp_backward(grad, saved[:n], saved[n:], needs[6:], state_path or action_path, columns)
        if grad_hidden is None:
            return (None,) * 6 + tuple(head_grads)
        # the concatenation's backward: a slice per encoder, then through its ReLU and its layer
        grad_features, grad_actions = None, None
        state_grads: list[th.Tensor | None] = [None, None]
        if columns is None:
            grad_state = th.ops.aten.threshold_backward(grad_hidden[:, :split], encoded_state, 0)
            grad_features, state_grads = relu_mlp_backward(grad_state, [features], [state_weight], needs[2:4], needs[0])
            grad_hidden = grad_hidden[:, split:]
        grad_action = th.ops.aten.threshold_backward(grad_hidden, encoded_action, 0)
        grad_actions, action_grads = relu_mlp_backward(grad_action, [actions], [action_weight], needs[4:6], needs[1])
        return (grad_features, grad_actions, *state_grads, *action_grads, *head_grads)


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
        encoders, head = (self.state_encoder, self.action_encoder), self.q_estimator
        if (
            features.dim() == actions.dim() == 2
            and all(type(encoder) is ReluMLP and len(encoder) == 2 for encoder in encoders)
            and type(head) is ReluMLP
            and not head.relu_after_last
        ):
            state, action = encoders[0][0], encoders[1][0]
            encoder_params = [state.weight, state.bias, action.weight, action.bias]
            if not th.is_grad_enabled():
                return head(encode(features, actions, *encoder_params))  # type: ignore[arg-type]
            # One autograd node (_EncoderQFunction) when autograd records and the networks are ReLU MLPs
            head_params = [param for layer in list(head)[0::2] for param in (layer.weight, layer.bias)]
            return _EncoderQFunction.apply(features, actions, *encoder_params, *head_params)
        return head(th.cat([self.state_encoder(features), self.action_encoder(actions)], dim=1))


class EncoderCritic(ContinuousCritic):
    """
    SB3's ``ContinuousCritic`` whose Q-networks encode state and action separately (000, ``Critic``).

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


class CourseDDPGPolicy(FastPolicyMixin, TD3Policy):
    """
    Actor-critic policy of the course DDPG: SB3's ``TD3Policy`` with a clamped actor and an encoder critic (and the
    short ``predict`` and mode-switching paths of :class:`sb3_course.common.fast_path.FastPolicyMixin`).

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

    # the modules SB3's set_training_mode switches (its targets stay in evaluation mode)
    trained_modules: ClassVar[tuple[str, ...]] = ("actor", "critic")

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
        return self.fuse(actor.to(self.device))

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> EncoderCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        critic = EncoderCritic(
            **critic_kwargs, state_encoder_dim=self.state_encoder_dim, action_encoder_dim=self.action_encoder_dim
        )
        for q_net in critic.q_networks:
            init_final_layer(q_net.q_estimator, self.final_layer_init)  # type: ignore[union-attr,arg-type]
        return self.fuse(critic.to(self.device))


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

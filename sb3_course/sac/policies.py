import math
from typing import Any, ClassVar

import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    SquashedDiagGaussianDistribution,
    StateDependentNoiseDistribution,
    TanhBijector,
)
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.sac.policies import Actor, SACPolicy
from torch import nn

from sb3_course.common.fast_path import FastPolicyMixin

# log(1 - tanh(u)^2 + eps) in the squash correction (003, ``SAC.sample_action``); SB3 uses 1e-6
COURSE_SQUASH_EPSILON = 1e-7
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class _SquashedGaussianSample(th.autograd.Function):
    """
    The head of :class:`TanhLogStdActor` as one autograd node: from the trunk's features ``h`` and the noise
    ``eps``, ``mu = W_mu h + b_mu``, ``log sigma = tanh(W_s h + b_s)``, ``a = tanh(mu + sigma * eps)`` and
    ``log pi(a|s) = sum_i [-eps_i^2 / 2 - log sigma_i - log sqrt(2 pi) - log(1 - a_i^2 + 1e-7)]``, with the
    operations of :meth:`TanhLogStdActor.get_action_dist_params` and SB3's sampling (same values bit for bit).
    The backward pass is the chain rule written out: one product for both heads' weight gradients and one for the
    features' gradient (autograd: two each and a sum), and for the element-wise part 9 operations instead of the
    backward nodes of the 15 recorded ones (gradients equal to float rounding: some terms are summed in another
    order).
    """

    @staticmethod
    def forward(
        ctx: Any, latent: th.Tensor, mu_weight: th.Tensor, mu_bias: th.Tensor, log_std_weight: th.Tensor,
        log_std_bias: th.Tensor, noise: th.Tensor,
    ) -> tuple[th.Tensor, th.Tensor]:  # fmt: skip
        mean_actions = F.linear(latent, mu_weight, mu_bias)
        log_std = th.tanh(F.linear(latent, log_std_weight, log_std_bias))
        std = log_std.exp()
        actions = th.tanh(mean_actions + noise * std)
        log_prob = -0.5 * noise.square() - log_std - LOG_SQRT_2PI - th.log(1 - actions.square() + COURSE_SQUASH_EPSILON)
        ctx.save_for_backward(latent, mu_weight, log_std_weight, noise, log_std, std, actions)
        return actions, log_prob.sum(dim=1)

    @staticmethod
    def backward(ctx: Any, grad_actions: th.Tensor, grad_log_prob: th.Tensor) -> tuple[th.Tensor | None, ...]:
        latent, mu_weight, log_std_weight, noise, log_std, std, actions = ctx.saved_tensors
        grad_log_prob = grad_log_prob.unsqueeze(-1)
        one_minus_a2 = 1 - actions.square()
        # d log pi / d a = 2a / (1 - a^2 + eps); then through a = tanh(u), u = mu + sigma * eps
        grad_u = (grad_actions + grad_log_prob * 2 * actions / (one_minus_a2 + COURSE_SQUASH_EPSILON)) * one_minus_a2
        # d/d log sigma: through sigma = exp(log sigma) and the -log sigma term; then through log sigma = tanh(z)
        grad_z = (grad_u * noise * std - grad_log_prob) * (1 - log_std.square())
        # both heads in one product each way: [g_mu, g_z] [W_mu; W_s] and [g_mu, g_z]^T h
        grad_heads = th.cat([grad_u, grad_z], dim=1)
        needs = ctx.needs_input_grad
        grad_latent = grad_heads @ th.cat([mu_weight, log_std_weight]) if needs[0] else None
        grad_weights = (grad_heads.t() @ latent).split(mu_weight.shape[0]) if needs[1] or needs[3] else (None, None)
        grad_biases = grad_heads.sum(0).split(mu_weight.shape[0]) if needs[2] or needs[4] else (None, None)
        return grad_latent, grad_weights[0], grad_biases[0], grad_weights[1], grad_biases[1], None


class TanhLogStdActor(Actor):
    """
    Gaussian policy of the course SAC: SB3's SAC actor whose log-std head is ``tanh(Linear(h))``.

    The standard deviation therefore lies in [e^-1, e] (003, ``MLPGaussianPolicy``) instead of SB3's
    ``exp(clamp(Linear(h), -20, 2))``. Actions are ``tanh(u)``, ``u ~ N(mu, sigma)`` (reparameterised), with
    ``log pi(a|s) = sum_i [log N(u_i; mu_i, sigma_i) - log(1 - tanh(u_i)^2 + 1e-7)]``; the deterministic
    action is ``tanh(mu)``.

    With ``use_sde=True`` it is SB3's gSDE actor (``StateDependentNoiseDistribution``: a learned log-std
    parameter, noise ``eps(s) = h(s) W`` with ``W`` resampled every ``sde_sample_freq`` steps) with the same
    squash correction ``log(1 - a^2 + 1e-7)``; the course has no gSDE, so there is no course head to keep.

    :param observation_space: Observation space
    :param action_space: Action space
    :param net_arch: hidden layer sizes
    :param features_extractor: network to extract features
    :param features_dim: number of features
    :param activation_fn: activation function
    :param kwargs: other keyword arguments of SB3's SAC ``Actor`` (``use_sde``, ``log_std_init``, ...)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: nn.Module,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        **kwargs: Any,
    ) -> None:
        super().__init__(observation_space, action_space, net_arch, features_extractor, features_dim, activation_fn, **kwargs)
        if self.use_sde:
            assert isinstance(self.action_dist, StateDependentNoiseDistribution)
            self.action_dist.bijector = TanhBijector(COURSE_SQUASH_EPSILON)
        else:
            self.action_dist = SquashedDiagGaussianDistribution(  # type: ignore[assignment]
                get_action_dim(self.action_space), epsilon=COURSE_SQUASH_EPSILON
            )

    def get_action_dist_params(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        if self.use_sde:
            return super().get_action_dist_params(obs)
        latent_pi = self.latent_pi(self.extract_features(obs, self.features_extractor))
        # log sigma = tanh(W h + b)  ->  sigma in [1/e, e]
        return self.mu(latent_pi), th.tanh(self.log_std(latent_pi)), {}  # type: ignore[operator]

    def action_log_prob(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """
        A reparameterised action and its log-probability, as SB3's ``SquashedDiagGaussianDistribution`` gives them
        (the same random draw, the same actions bit for bit, the log-probability to float rounding) in a third of
        its tensor operations: with ``u = mu + sigma * eps``, ``log N(u; mu, sigma) = -eps^2 / 2 - log sigma -
        log sqrt(2 pi)``, so the density needs no ``(u - mu)^2 / (2 sigma^2)``. The heads and the sampling run as
        one autograd node (:class:`_SquashedGaussianSample`). With gSDE: SB3's.
        """
        if self.use_sde:
            return super().action_log_prob(obs)
        latent_pi = self.latent_pi(self.extract_features(obs, self.features_extractor))
        mu, log_std = self.mu, self.log_std
        assert isinstance(mu, nn.Linear) and isinstance(log_std, nn.Linear)
        # the draw of th.distributions.Normal.rsample (randn_like of the mean)
        noise = th.randn((*latent_pi.shape[:-1], mu.out_features), dtype=latent_pi.dtype, device=latent_pi.device)
        return _SquashedGaussianSample.apply(latent_pi, mu.weight, mu.bias, log_std.weight, log_std.bias, noise)


class CourseSACPolicy(FastPolicyMixin, SACPolicy):
    """
    Policy of the course SAC: SB3's ``SACPolicy`` (twin concat-MLP critics, default hidden sizes (256, 256))
    with the tanh log-std actor (and the short ``predict`` and mode-switching paths of
    :class:`sb3_course.common.fast_path.FastPolicyMixin`).

    :param args: positional arguments of ``SACPolicy``
    :param kwargs: keyword arguments of ``SACPolicy``
    """

    # the modules SB3's set_training_mode switches (its targets stay in evaluation mode)
    trained_modules: ClassVar[tuple[str, ...]] = ("actor", "critic")

    actor: TanhLogStdActor

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> TanhLogStdActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return self.fuse(TanhLogStdActor(**actor_kwargs).to(self.device))

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        return self.fuse(super().make_critic(features_extractor))


class CourseSACCnnPolicy(CourseSACPolicy):
    """
    Policy of the course SAC for image observations: :class:`CourseSACPolicy` (tanh log-std actor, twin
    critics) on SB3's ``NatureCNN`` features extractor, as SB3's SAC ``CnnPolicy`` is ``SACPolicy`` on it.

    :param args: positional arguments of ``SACPolicy``
    :param features_extractor_class: features extractor of the actor and the critics (default: ``NatureCNN``)
    :param kwargs: keyword arguments of ``SACPolicy``
    """

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN, **kwargs: Any) -> None:
        kwargs["features_extractor_class"] = features_extractor_class
        super().__init__(*args, **kwargs)


class CourseSACMultiInputPolicy(CourseSACPolicy):
    """
    Policy of the course SAC for ``Dict`` observations: :class:`CourseSACPolicy` on SB3's ``CombinedExtractor``
    (an MLP input of the flattened vectors and the ``NatureCNN`` features of each image), as SB3's SAC
    ``MultiInputPolicy`` is ``SACPolicy`` on it.

    :param args: positional arguments of ``SACPolicy``
    :param features_extractor_class: features extractor of the actor and the critics (default: ``CombinedExtractor``)
    :param kwargs: keyword arguments of ``SACPolicy``
    """

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs: Any
    ) -> None:
        kwargs["features_extractor_class"] = features_extractor_class
        super().__init__(*args, **kwargs)


MlpPolicy = CourseSACPolicy
CnnPolicy = CourseSACCnnPolicy
MultiInputPolicy = CourseSACMultiInputPolicy

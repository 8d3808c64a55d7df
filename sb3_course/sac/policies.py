from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    SquashedDiagGaussianDistribution,
    StateDependentNoiseDistribution,
    TanhBijector,
)
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.sac.policies import Actor, SACPolicy
from torch import nn

# log(1 - tanh(u)^2 + eps) in the squash correction (the notes' ``SAC.sample_action``); SB3 uses 1e-6
COURSE_SQUASH_EPSILON = 1e-7


class TanhLogStdActor(Actor):
    """
    Gaussian policy of the course SAC: SB3's SAC actor whose log-std head is ``tanh(Linear(h))``.

    The standard deviation therefore lies in [e^-1, e] (the notes' ``MLPGaussianPolicy``) instead of SB3's
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


class CourseSACPolicy(SACPolicy):
    """
    Policy of the course SAC: SB3's ``SACPolicy`` (twin concat-MLP critics, default hidden sizes (256, 256))
    with the tanh log-std actor.

    :param args: positional arguments of ``SACPolicy``
    :param kwargs: keyword arguments of ``SACPolicy``
    """

    actor: TanhLogStdActor

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> TanhLogStdActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return TanhLogStdActor(**actor_kwargs).to(self.device)


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

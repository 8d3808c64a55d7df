from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import DDPG
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule, polyak_update, update_learning_rate
from stable_baselines3.td3.policies import TD3Policy
from torch.nn import functional as F

from sb3_course.common.checkpoint import OffPolicySafeFilesMixin
from sb3_course.common.fast_path import FastOffPolicyMixin
from sb3_course.common.validation import check_arguments, check_env_spaces, check_policy_class
from sb3_course.ddpg.policies import ClampedActor, CnnPolicy, CourseDDPGPolicy, MlpPolicy, MultiInputPolicy

SelfCourseDDPG = TypeVar("SelfCourseDDPG", bound="CourseDDPG")

CRITIC_LOSSES = {"smooth_l1": F.smooth_l1_loss, "mse": F.mse_loss}

# Ornstein-Uhlenbeck exploration of the notes (the notes' ``OUProcess``), in the normalised action space
COURSE_OU_THETA = 0.1
COURSE_OU_SIGMA = 0.1
COURSE_OU_DT = 0.01
# The intended learning rates of the notes' experiment (the notes' ``lr_actor``, ``lr_critic``)
COURSE_ACTOR_LR = 5e-3
COURSE_CRITIC_LR = 1e-3


def learning_rates(
    learning_rate: float | Schedule | None,
    actor_learning_rate: float | Schedule | None,
    critic_learning_rate: float | Schedule | None,
) -> tuple[float | Schedule, float | Schedule]:
    """
    The actor's and the critic's learning rates from CourseDDPG's three arguments: each its own when given, else
    SB3's ``learning_rate`` (the rate of both optimizers) when given, else the course's.

    :return: actor rate, critic rate
    """
    actor_default, critic_default = (COURSE_ACTOR_LR, COURSE_CRITIC_LR) if learning_rate is None else (learning_rate,) * 2
    return (
        actor_default if actor_learning_rate is None else actor_learning_rate,
        critic_default if critic_learning_rate is None else critic_learning_rate,
    )


class CourseDDPG(OffPolicySafeFilesMixin, FastOffPolicyMixin, DDPG):
    """
    Course DDPG: clamped actor, critic with separate state and action encoders, SmoothL1 critic loss, OU noise.

    Course notes: lecture "38. (paper 3) DDPG code review" (Pendulum; ``DDPG.update`` / ``Actor`` / ``Critic``).
    Paper: Lillicrap et al. (2016), https://arxiv.org/abs/1509.02971

    Each gradient step fits the critic to ``y = r + gamma * (1 - terminated) * Q'(s', mu'(s'))`` with the
    SmoothL1 (or MSE) loss, then the actor to ``-Q(s, mu(s)).mean()``, then moves both targets by ``tau``.
    SB3's DDPG is the same algorithm with MSE, a tanh actor, a concat-MLP critic and one learning rate.
    The clamp passes no gradient outside the bounds: if the actor pushes every output past a bound it stays
    there, which the course's actor learning rate does on Pendulum (hence the smaller one in the recipe).

    Differences from the course notes:

    - Actions are stored and learned in SB3's normalised space [-1, 1] (the actor clamps there; ``predict``
      rescales to the env's bounds); the notes clamp to Pendulum's [-2, 2] directly, the same for that env.
    - The OU noise is added *before* clipping to the bounds (SB3's ``_sample_action``), so actions never leave
      them; the notes add it after the clamp. Its sigma is relative to the normalised range. The noise is reset
      at every episode end, per env when ``n_envs > 1``.
    - A time-limit truncation bootstraps from ``Q'(s', mu'(s'))``; the notes' old gym API treats it as terminal.
    - The first ``learning_starts`` steps act uniformly at random (SB3's warm-up); the notes act with the
      (untrained) actor plus noise and only delay the updates.
    - The notes' experiment defines ``lr_actor = 0.005`` and ``lr_critic = 0.001`` but never passes them, so
      their run used the ``DDPG`` class defaults (0.001 and 0.0005); the defaults here are the intended 0.005
      and 0.001. ``learning_rate`` has SB3's meaning (the rate of both optimizers) when it is given.
    - ``CnnPolicy`` and ``MultiInputPolicy`` (images and ``Dict`` observations; the notes have neither) put SB3's
      ``NatureCNN`` / ``CombinedExtractor`` before the actor and the critic's state encoder, which then encodes
      the extracted features instead of the raw state.
    - Adam runs PyTorch's fused kernel (same update up to float rounding; ``optimizer_kwargs=dict(fused=False)``
      in ``policy_kwargs`` restores SB3's; :mod:`sb3_course.common.fast_path`).

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str); needs a Box action space
    :param learning_rate: learning rate of both optimizers, as SB3's, unless ``actor_learning_rate`` /
        ``critic_learning_rate`` are given; constant or a schedule of the remaining progress
        (``None``: the course's 0.005 for the actor and 0.001 for the critic)
    :param buffer_size: size of the replay buffer (course: 50 000)
    :param learning_starts: how many steps to collect before learning starts (course: 2000)
    :param batch_size: minibatch size of each gradient step (course: 256)
    :param tau: soft update coefficient of both target networks (course: 0.001)
    :param gamma: discount factor (course: 0.99)
    :param train_freq: update the model every ``train_freq`` steps, or ``(n, "episode")``
    :param gradient_steps: gradient steps after each rollout (-1: as many as environment steps)
    :param action_noise: exploration noise; ``None`` gives the course's Ornstein-Uhlenbeck noise
        (theta 0.1, sigma 0.1, dt 0.01)
    :param replay_buffer_class: replay buffer class to use (``None``: SB3's ``ReplayBuffer``)
    :param replay_buffer_kwargs: keyword arguments of the replay buffer
    :param optimize_memory_usage: SB3's memory-efficient replay buffer variant
    :param n_steps: n-step returns (SB3's ``NStepReplayBuffer``) when > 1
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments of the policy (``net_arch``, ``state_encoder_dim``,
        ``action_encoder_dim``, ...)
    :param verbose: verbosity level: 0 none, 1 info, 2 debug
    :param seed: seed of the pseudo random generators
    :param device: device (cpu, cuda, auto)
    :param _init_setup_model: whether to build the network at the creation of the instance
    :param actor_learning_rate: learning rate of the actor's Adam (``None``: ``learning_rate``)
    :param critic_learning_rate: learning rate of the critic's Adam (``None``: ``learning_rate``)
    :param critic_loss: ``"smooth_l1"`` (course) or ``"mse"`` (SB3's DDPG)
    :param actor_bound_penalty: weight ``c`` of a term ``c * sum_i max(|u_i(s)| - 1, 0)^2`` added to the actor loss,
        ``u`` the clamped actor's output before the clamp (course: 0, no term). The clamp passes no gradient past a
        bound, so an actor pushed past it by the critic stays there for good; the term pulls it back to where the
        critic's gradient reaches it. Like the penalty on the actor's pre-activations of Andrychowicz et al. (2017,
        HER), which keeps a tanh actor out of saturation, but zero inside the bounds. No effect on a tanh actor.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    # the action spaces the class takes (checked at construction, as SB3's supported_action_spaces argument)
    supported_action_spaces: ClassVar[tuple[type[spaces.Space], ...]] = (spaces.Box,)
    policy: CourseDDPGPolicy

    def __init__(
        self,
        policy: str | type[CourseDDPGPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule | None = None,
        buffer_size: int = 50_000,
        learning_starts: int = 2000,
        batch_size: int = 256,
        tau: float = 0.001,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        *,
        actor_learning_rate: float | Schedule | None = None,
        critic_learning_rate: float | Schedule | None = None,
        critic_loss: Literal["smooth_l1", "mse"] = "smooth_l1",
        actor_bound_penalty: float = 0.0,
    ) -> None:
        if critic_loss not in CRITIC_LOSSES:
            raise ValueError(f"critic_loss must be one of {tuple(CRITIC_LOSSES)}, got {critic_loss!r}")
        check_policy_class(policy, TD3Policy, "CourseDDPG")
        checked = check_arguments(type(self), locals())
        for name in ("learning_rate", "actor_learning_rate", "critic_learning_rate"):
            del checked[name]
        self.actor_bound_penalty = checked.pop("actor_bound_penalty")
        hint = "Use CourseDQN for discrete actions."
        checked_env = check_env_spaces(env, "CourseDDPG", self.supported_action_spaces, hint, checked["verbose"])
        self.actor_learning_rate, self.critic_learning_rate = learning_rates(
            learning_rate, actor_learning_rate, critic_learning_rate
        )
        self.critic_loss = critic_loss
        super().__init__(
            policy,
            checked_env,  # type: ignore[arg-type]
            # SB3's single rate builds the optimizers; train() sets each one's own (_update_learning_rate)
            learning_rate=self.critic_learning_rate,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            device=device,
            _init_setup_model=_init_setup_model,
            **checked,
        )

    def _setup_model(self) -> None:
        super()._setup_model()
        self.actor_lr_schedule = FloatSchedule(self.actor_learning_rate)
        self.critic_lr_schedule = FloatSchedule(self.critic_learning_rate)
        if self.action_noise is None:
            # OffPolicyAlgorithm._setup_learn vectorises it per env; collect_rollouts resets it on episode end.
            action_dim = self.action_space.shape[0]  # type: ignore[index]
            self.action_noise = OrnsteinUhlenbeckActionNoise(
                mean=np.zeros(action_dim),
                sigma=COURSE_OU_SIGMA * np.ones(action_dim),
                theta=COURSE_OU_THETA,
                dt=COURSE_OU_DT,
            )

    def _update_learning_rate(self, optimizers: list[th.optim.Optimizer] | th.optim.Optimizer) -> None:
        # Called by train() with [actor optimizer, critic optimizer]: each gets its own schedule.
        assert isinstance(optimizers, list)
        progress = self._current_progress_remaining
        for name, optimizer, schedule in zip(
            ("actor", "critic"), optimizers, (self.actor_lr_schedule, self.critic_lr_schedule), strict=True
        ):
            self.logger.record(f"train/{name}_learning_rate", schedule(progress))
            update_learning_rate(optimizer, schedule(progress))

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        loss_fn = CRITIC_LOSSES[self.critic_loss]

        actor_losses, critic_losses = [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                # y = r + gamma * (1 - terminated) * Q'(s', mu'(s'))  (min over critics when n_critics > 1)
                next_actions = self.actor_target(replay_data.next_observations)
                next_q_values = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
                next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            # L_Q = SmoothL1(Q(s, a), y) (or MSE)
            current_q_values = self.critic(replay_data.observations, replay_data.actions)
            critic_loss = sum(loss_fn(current_q, target_q_values) for current_q in current_q_values)
            assert isinstance(critic_loss, th.Tensor)
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            # deterministic policy gradient through the (just updated) critic
            actor_loss = self._actor_loss(replay_data.observations)
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            # theta' <- tau * theta + (1 - tau) * theta', for critic and actor
            polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
            polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
            # Copy running stats, see SB3 GH issue #996
            polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
            polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))

    def _actor_loss(self, observations: th.Tensor) -> th.Tensor:
        if not self.actor_bound_penalty or not isinstance(self.actor, ClampedActor):
            # L_mu = -Q(s, mu(s)).mean()
            return -self.critic.q1_forward(observations, self.actor(observations)).mean()
        # L_mu = -Q(s, clamp(u(s))).mean() + c * mean_s sum_i max(|u_i(s)| - 1, 0)^2: the clamp passes no gradient
        # past a bound, the penalty pulls an output that left it back to where Q's gradient reaches it again
        unclamped = self.actor.unclamped(observations)
        past_bound = F.relu(unclamped.abs() - 1.0).square().sum(dim=1).mean()
        return -self.critic.q1_forward(observations, unclamped.clamp(-1.0, 1.0)).mean() + self.actor_bound_penalty * past_bound

    def learn(
        self: SelfCourseDDPG,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "CourseDDPG",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfCourseDDPG:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

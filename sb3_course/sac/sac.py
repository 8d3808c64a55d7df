from typing import Any, ClassVar, TypeVar

import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.sac.policies import SACPolicy

from sb3_course.common.checkpoint import OffPolicySafeFilesMixin
from sb3_course.common.validation import (
    check_in_range,
    check_off_policy_arguments,
    check_policy_class,
)
from sb3_course.sac.policies import CnnPolicy, CourseSACPolicy, MlpPolicy

SelfCourseSAC = TypeVar("SelfCourseSAC", bound="CourseSAC")


class CourseSAC(OffPolicySafeFilesMixin, SAC):
    """
    Course SAC: twin Q critics, tanh log-std Gaussian policy, fixed entropy weight alpha = 0.2.

    Course notes: ``003_d3a1e1ed7310a303.txt`` (HalfCheetah SAC, ``SAC.learn`` / ``MLPGaussianPolicy``).
    Paper: Haarnoja et al. (2018), https://arxiv.org/abs/1801.01290

    SB3's SAC update is the course's: ``y = r + gamma * (1 - terminated) * (min(Q1', Q2')(s', a') - alpha *
    log pi(a'|s'))`` with ``a' ~ pi(.|s')``, both critics regressed on ``y``, policy loss
    ``(alpha * log pi(a|s) - min(Q1, Q2)(s, a)).mean()`` and a soft target update with ``tau`` every step.
    The course part is the policy (:class:`sb3_course.sac.policies.TanhLogStdActor`) and the defaults.

    Differences from the course notes:

    - The critic loss is SB3's ``0.5 * (mse(Q1, y) + mse(Q2, y))``, half the notes' sum. Adam's step does not
      depend on a constant scale of the loss (up to its epsilon), so training is the same; the logged
      ``train/critic_loss`` is half the notes' ``value_loss``.
    - The warm-up actions of the first ``learning_starts`` steps are uniform over the whole action space
      (SB3's ``action_space.sample()``), not ``np.random.rand`` in [0, 1).
    - A time-limit truncation bootstraps (SB3's replay buffer keeps ``terminated`` and ``truncated`` apart).
    - ``ent_coef="auto"`` (SB3's automatic entropy tuning towards ``target_entropy``) is available; the
      course and the default keep alpha fixed at 0.2.
    - The notes' ``SAC`` class defaults to hidden sizes (1024, 1024); their experiment, and the default here,
      use (256, 256). HalfCheetah-v4 is HalfCheetah-v5 in current Gymnasium.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str); needs a Box action space
    :param learning_rate: learning rate of the policy and critic Adam optimizers (and of ``ent_coef`` when
        ``"auto"``), constant or a schedule of the remaining progress (course: 1e-4)
    :param buffer_size: size of the replay buffer (course: 1e6)
    :param learning_starts: how many uniformly random steps to collect before learning starts (course: 5000)
    :param batch_size: minibatch size of each gradient step (course: 256)
    :param tau: soft update coefficient of the target critics (course: 0.005)
    :param gamma: discount factor (course: 0.99)
    :param train_freq: update the model every ``train_freq`` steps, or ``(n, "episode")``
    :param gradient_steps: gradient steps after each rollout (-1: as many as environment steps)
    :param action_noise: optional extra exploration noise (none in the course)
    :param replay_buffer_class: replay buffer class to use (``None``: SB3's ``ReplayBuffer``)
    :param replay_buffer_kwargs: keyword arguments of the replay buffer
    :param optimize_memory_usage: SB3's memory-efficient replay buffer variant
    :param n_steps: n-step returns (SB3's ``NStepReplayBuffer``) when > 1
    :param ent_coef: entropy weight alpha: a float (course: 0.2) or ``"auto"`` / ``"auto_<init>"`` to learn it
    :param target_update_interval: update the target critics every ``target_update_interval`` gradient steps
    :param target_entropy: target entropy of the ``"auto"`` tuning (``"auto"``: ``-dim(A)``)
    :param stats_window_size: window size of the rollout statistics (episodes)
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments of the policy (``net_arch``, ``activation_fn``, ...)
    :param verbose: verbosity level: 0 none, 1 info, 2 debug
    :param seed: seed of the pseudo random generators
    :param device: device (cpu, cuda, auto)
    :param _init_setup_model: whether to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy, "CnnPolicy": CnnPolicy}
    policy: CourseSACPolicy

    def __init__(
        self,
        policy: str | type[CourseSACPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 5000,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        ent_coef: str | float = 0.2,
        target_update_interval: int = 1,
        target_entropy: str | float = "auto",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        check_policy_class(policy, SACPolicy, "CourseSAC")
        if not isinstance(ent_coef, str):
            check_in_range("ent_coef", ent_coef, 0.0, float("inf"))
        checked_env = check_off_policy_arguments(
            "CourseSAC", env, (spaces.Box,), "Use CourseDQN for discrete actions.",
            learning_rate, batch_size, buffer_size, gamma, tau, verbose,
        )  # fmt: skip
        super().__init__(
            policy,
            checked_env,  # type: ignore[arg-type]
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            ent_coef=ent_coef,
            target_update_interval=target_update_interval,
            target_entropy=target_entropy,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=_init_setup_model,
        )

    def learn(
        self: SelfCourseSAC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "CourseSAC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfCourseSAC:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

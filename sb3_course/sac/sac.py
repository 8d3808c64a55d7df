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
from sb3_course.common.fast_path import FastOffPolicyMixin
from sb3_course.common.validation import check_arguments, check_ent_coef, check_env_spaces, check_policy_class
from sb3_course.sac.policies import CnnPolicy, CourseSACPolicy, MlpPolicy, MultiInputPolicy

SelfCourseSAC = TypeVar("SelfCourseSAC", bound="CourseSAC")


class CourseSAC(OffPolicySafeFilesMixin, FastOffPolicyMixin, SAC):
    """
    Course SAC: twin Q critics, tanh log-std Gaussian policy, fixed entropy weight alpha = 0.2.

    Course notes: lecture "19. SAC implementation" (HalfCheetah-v4; ``SAC.learn`` / ``MLPGaussianPolicy``).
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
    - ``use_sde=True`` (SB3's generalized state-dependent exploration, gSDE; not in the notes) replaces the
      tanh log-std head by SB3's gSDE actor: a learned log-std parameter per feature and action (``log_std_init``,
      ``use_expln``, ``full_std`` and ``clip_mean`` in ``policy_kwargs``), with the course's squash correction
      ``log(1 - a^2 + 1e-7)``. Without it the actor is the course's.
    - Adam runs PyTorch's fused kernel (same update up to float rounding; ``optimizer_kwargs=dict(fused=False)``
      in ``policy_kwargs`` restores SB3's; :mod:`sb3_course.common.fast_path`).

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy)
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
    :param use_sde: explore with SB3's gSDE actor instead of the course's tanh log-std actor
    :param sde_sample_freq: with gSDE, sample a new noise matrix every ``sde_sample_freq`` steps (-1: only at the
        start of each rollout)
    :param use_sde_at_warmup: with gSDE, act with it during the first ``learning_starts`` steps instead of
        uniformly at random
    :param stats_window_size: window size of the rollout statistics (episodes)
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments of the policy (``net_arch``, ``activation_fn``, ...)
    :param verbose: verbosity level: 0 none, 1 info, 2 debug
    :param seed: seed of the pseudo random generators
    :param device: device (cpu, cuda, auto)
    :param _init_setup_model: whether to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    # the action spaces the class takes (checked at construction, as SB3's supported_action_spaces argument)
    supported_action_spaces: ClassVar[tuple[type[spaces.Space], ...]] = (spaces.Box,)
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
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        use_sde_at_warmup: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        check_policy_class(policy, SACPolicy, "CourseSAC")
        checked = check_arguments(type(self), locals(), ent_coef=check_ent_coef)
        hint = "Use CourseDQN for discrete actions."
        checked_env = check_env_spaces(env, "CourseSAC", self.supported_action_spaces, hint, checked["verbose"])
        super().__init__(
            policy,
            checked_env,  # type: ignore[arg-type]
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            device=device,
            _init_setup_model=_init_setup_model,
            **checked,
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

import inspect
import warnings
from typing import Any, ClassVar, Literal, TypeVar

import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.dqn.policies import DQNPolicy

from sb3_course.common.checkpoint import OffPolicySafeFilesMixin
from sb3_course.common.fast_path import FastOffPolicyMixin
from sb3_course.common.validation import check_arguments, check_env_spaces, check_policy_class
from sb3_course.dqn.policies import CnnPolicy, CourseDQNPolicy, MlpPolicy, MultiInputPolicy

SelfCourseDQN = TypeVar("SelfCourseDQN", bound="CourseDQN")

EXPLORATION_DECAYS = ("harmonic", "linear")


def warn_unused(setting: str, active: bool, **values: Any) -> None:
    """
    Warn when hyperparameters that only ``setting`` uses are given (differ from CourseDQN's defaults) without it: an
    SB3 recipe for DQN sets them and expects them to act (and a harmonic floor does nothing to a linear schedule).

    :param setting: the setting that uses them, as the user would write it
    :param active: whether it is on
    :param values: hyperparameter name -> value given
    """
    defaults = inspect.signature(CourseDQN.__init__).parameters
    given = [name for name, value in values.items() if value != defaults[name].default]
    if given and not active:
        warnings.warn(
            f"CourseDQN uses {', '.join(given)} only with {setting}; without it they have no effect",
            stacklevel=3,
        )


class CourseDQN(OffPolicySafeFilesMixin, FastOffPolicyMixin, DQN):
    """
    Course DQN: replay memory, Huber loss and, by default, no target network.

    Course notes: lecture "Notes on implementing DQN in PyTorch" (CartPole; ``Brain.replay`` / ``Brain.decide_action``).
    Paper: Mnih et al. (2015), https://www.nature.com/articles/nature14236

    The TD target ``r + gamma * (1 - terminated) * max_a' Q(s', a')`` is computed under ``no_grad`` by the
    online network itself unless ``use_target_network=True``, which restores SB3's target network
    (hard copy every ``target_update_interval`` steps with ``tau=1``, or a soft update with ``tau < 1``).
    Exploration is epsilon-greedy with the course's harmonic schedule ``eps0 / (k + 1)``, k the number of
    finished episodes (optionally kept at or above ``exploration_min_eps``), or SB3's linear schedule.

    Differences from the course notes:

    - A time-limit truncation bootstraps from ``Q(s', .)`` (SB3's replay buffer keeps ``terminated`` and
      ``truncated`` apart); the notes store every episode end as terminal.
    - The notes re-shape CartPole's reward to -1 / 0 / +1 inside the training loop; here that shaping is the
      optional wrapper :class:`sb3_course.common.wrappers.CourseCartPoleReward`, placed outside ``Monitor`` by
      rl-zoo3 and ``make_vec_env`` so logged returns stay the environment's own.
    - The first ``learning_starts`` steps (default: one batch, 32) act uniformly at random, as in SB3; the notes
      act epsilon-greedily from the start and train once a batch is stored, which is the same starting point.
    - Gradients are clipped at ``max_grad_norm`` (default ``inf``: no clipping, as in the notes).
    - SB3's ``target_update_interval`` and ``tau`` act with ``use_target_network=True``, its
      ``exploration_fraction`` and ``exploration_final_eps`` with ``exploration_decay="linear"``; given without
      them (an rl-zoo3 ``dqn.yml`` recipe), they have no effect and a warning says so.
    - Adam runs PyTorch's fused kernel (same update up to float rounding; ``optimizer_kwargs=dict(fused=False)``
      in ``policy_kwargs`` restores SB3's; :mod:`sb3_course.common.fast_path`). The update is SB3's ``DQN.train``.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate of Adam, constant or a schedule of the remaining progress (course: 1e-4)
    :param buffer_size: size of the replay buffer (course: 10 000)
    :param learning_starts: how many steps to collect before learning starts (course: one batch)
    :param batch_size: minibatch size of each gradient step (course: 32)
    :param tau: soft update coefficient of the target network; only used with ``use_target_network``
    :param gamma: discount factor (course: 0.99)
    :param train_freq: update the model every ``train_freq`` steps, or ``(n, "episode")``
    :param gradient_steps: gradient steps after each rollout (-1: as many as environment steps)
    :param replay_buffer_class: replay buffer class to use (``None``: SB3's ``ReplayBuffer``)
    :param replay_buffer_kwargs: keyword arguments of the replay buffer
    :param optimize_memory_usage: SB3's memory-efficient replay buffer variant
    :param n_steps: n-step returns (SB3's ``NStepReplayBuffer``) when > 1
    :param target_update_interval: update the target network every ``target_update_interval`` environment steps;
        only used with ``use_target_network``
    :param exploration_fraction: fraction of training over which the linear schedule decays
    :param exploration_initial_eps: initial probability of a random action (course: 0.5)
    :param exploration_final_eps: final probability of a random action of the linear schedule
    :param max_grad_norm: maximum gradient norm (``inf``: no clipping)
    :param stats_window_size: window size of the rollout statistics (episodes)
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments of the policy
    :param verbose: verbosity level: 0 none, 1 info, 2 debug
    :param seed: seed of the pseudo random generators
    :param device: device (cpu, cuda, auto)
    :param _init_setup_model: whether to build the network at the creation of the instance
    :param use_target_network: compute TD targets with a target network (SB3's DQN) instead of the online network
    :param exploration_decay: ``"harmonic"`` (course: ``exploration_initial_eps / (episodes + 1)``) or
        ``"linear"`` (SB3: from ``exploration_initial_eps`` to ``exploration_final_eps`` over
        ``exploration_fraction`` of training)
    :param exploration_min_eps: floor of the harmonic schedule, ``max(eps0 / (k + 1), exploration_min_eps)``
        (course: 0, the schedule decays towards 0). A floor keeps some non-greedy actions in the replay buffer
        once the policy is good, so the Q values of both actions keep being learned (docs/results.md)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    # the action spaces the class takes (checked at construction, as SB3's supported_action_spaces argument)
    supported_action_spaces: ClassVar[tuple[type[spaces.Space], ...]] = (spaces.Discrete,)
    policy: CourseDQNPolicy

    def __init__(
        self,
        policy: str | type[CourseDQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 10_000,
        learning_starts: int = 32,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10_000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 0.5,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = float("inf"),
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        *,
        use_target_network: bool = False,
        exploration_decay: Literal["harmonic", "linear"] = "harmonic",
        exploration_min_eps: float = 0.0,
    ) -> None:
        if exploration_decay not in EXPLORATION_DECAYS:
            raise ValueError(f"exploration_decay must be one of {EXPLORATION_DECAYS}, got {exploration_decay!r}")
        check_policy_class(policy, DQNPolicy, "CourseDQN")
        checked = check_arguments(type(self), locals())
        hint = "Use CourseDDPG or CourseSAC for continuous (Box) actions."
        checked_env = check_env_spaces(env, "CourseDQN", self.supported_action_spaces, hint, checked["verbose"])
        warn_unused("use_target_network=True", use_target_network, target_update_interval=target_update_interval, tau=tau)
        warn_unused(
            "exploration_decay='linear'",
            exploration_decay == "linear",
            exploration_fraction=exploration_fraction,
            exploration_final_eps=exploration_final_eps,
        )
        warn_unused("exploration_decay='harmonic'", exploration_decay == "harmonic", exploration_min_eps=exploration_min_eps)
        self.use_target_network = checked.pop("use_target_network")
        self.exploration_decay = exploration_decay
        self.exploration_min_eps = checked.pop("exploration_min_eps")
        super().__init__(
            policy,
            checked_env,  # type: ignore[arg-type]
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            device=device,
            _init_setup_model=_init_setup_model,
            **checked,
        )

    def _create_aliases(self) -> None:
        super()._create_aliases()
        if not self.use_target_network:
            # train() takes its TD targets from ``q_net_target`` under no_grad: pointing it at the
            # online network gives the course target r + gamma * (1 - terminated) * max_a' Q_online(s', a').
            self.q_net_target = self.q_net

    def _exploration_rate(self) -> float:
        if self.exploration_decay == "harmonic":
            # epsilon = eps0 / (k + 1), k = finished episodes (the notes: ``0.5 * (1 / (episode + 1))``)
            return max(self.exploration_initial_eps / (self._episode_num + 1), self.exploration_min_eps)
        return self.exploration_schedule(self._current_progress_remaining)

    def _sample_action(
        self, learning_starts: int, action_noise: ActionNoise | None = None, n_envs: int = 1
    ) -> tuple[Any, Any]:
        # Refresh epsilon right before acting, so that an episode's first action already sees the new k.
        self.exploration_rate = self._exploration_rate()
        return super()._sample_action(learning_starts, action_noise, n_envs)

    def _on_step(self) -> None:
        self._n_calls += 1
        if self.use_target_network and self._n_calls % max(self.target_update_interval // self.n_envs, 1) == 0:
            polyak_update(self.q_net.parameters(), self.q_net_target.parameters(), self.tau)
            # Copy running stats, see SB3 GH issue #996
            polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        self.exploration_rate = self._exploration_rate()
        self.logger.record("rollout/exploration_rate", self.exploration_rate)

    def learn(
        self: SelfCourseDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "CourseDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfCourseDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

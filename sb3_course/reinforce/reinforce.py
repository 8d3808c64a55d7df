import math
import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import obs_as_tensor
from torch.nn import functional as F

from sb3_course.common.checkpoint import SafeFilesMixin
from sb3_course.common.logging import record_rollout_and_time
from sb3_course.common.returns import discounted_returns
from sb3_course.common.validation import check_arguments, check_observation_space, check_policy_class
from sb3_course.reinforce.episodes import Episode, stack_observations
from sb3_course.reinforce.policies import CnnPolicy, MlpPolicy, MultiInputPolicy
from sb3_course.reinforce.rollouts import EpisodicAlgorithm

SelfREINFORCE = TypeVar("SelfREINFORCE", bound="REINFORCE")

# A2C's arguments that only fixed-size rollouts have (REINFORCE refuses them)
A2C_ONLY = ("n_steps", "gae_lambda", "rollout_buffer_class", "rollout_buffer_kwargs")


class REINFORCE(SafeFilesMixin, EpisodicAlgorithm):
    """
    Batch episodic REINFORCE: Monte-Carlo policy gradient, one update per batch of ``n_episodes`` whole episodes.

    Course notes: lecture "29. Policy Gradient practice 2" (Batch episodic update REINFORCE, ``EpisodicMemory``).
    Paper: Williams (1992), https://link.springer.com/article/10.1007/BF00992696

    The loss of a batch is ``-(1 / sum_i T_i) * sum_i sum_t log pi(a_t|s_t) * G_t`` with
    ``G_t = sum_k gamma^k r_{t+k}`` of each episode (a truncation ends an episode like a termination: no bootstrap).
    With ``n_envs > 1`` each env contributes its share of the ``n_episodes``; every batch starts at an episode start.
    ``learn(total_timesteps)`` drops the batch the budget cuts (its unfinished episodes have no return) and warns
    when a call made no update. A2C's arguments that need fixed-size rollouts (``n_steps``, ``gae_lambda``,
    ``rollout_buffer_class``, ``rollout_buffer_kwargs``) are refused: that is ``stable_baselines3.A2C``.

    Differences from the course notes:

    - The notes' ``EpisodicMemory`` does not run (undefined ``done`` and ``A``, ``compute_return`` iterates an
      empty list); the returns here are the intended ``G_t`` of each episode.
    - The notes update after the first episode and then every second one (``ep % 2 == 0``); here every update
      uses exactly ``n_episodes`` new episodes.
    - Optional learned baseline (``use_baseline``: advantage ``G_t - V(s_t)``, value loss weighted by ``vf_coef``),
      entropy bonus (``ent_coef``) and gradient clipping (``max_grad_norm``), all off by default.
    - SB3's ``ActorCriticPolicy`` initialisation (orthogonal) and Adam ``eps=1e-5`` instead of PyTorch defaults;
      A2C's RMSprop (``use_rms_prop``) and gSDE (``use_sde``) are available.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate, constant or a schedule of the remaining progress (course: 2e-4)
    :param n_episodes: number of whole episodes per update, over all environments (course: 2); at least ``n_envs``
    :param gamma: discount factor (course: 1.0)
    :param ent_coef: weight of the entropy bonus (0: none, as in the course)
    :param vf_coef: weight of the value loss; only used with ``use_baseline``
    :param max_grad_norm: maximum gradient norm (``inf``: no clipping, as in the course)
    :param rms_prop_eps: RMSprop's epsilon (with ``use_rms_prop``)
    :param use_rms_prop: whether to use RMSprop (A2C's default) instead of the course's Adam
    :param use_sde: whether to use generalized State Dependent Exploration (gSDE) instead of action noise
        exploration (``Box`` actions only)
    :param sde_sample_freq: sample a new gSDE noise matrix every ``sde_sample_freq`` steps (-1: only at the
        beginning of each batch)
    :param normalize_advantage: standardise the advantages over the batch; without a baseline the advantages are
        the returns, so this is the course's return normalisation (course: on)
    :param use_baseline: subtract the learned value ``V(s_t)`` from ``G_t`` and train it by regression on ``G_t``
    :param stats_window_size: window size of the rollout statistics (episodes)
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments of the policy
    :param verbose: verbosity level: 0 none, 1 info, 2 debug
    :param seed: seed of the pseudo random generators
    :param device: device (cpu, cuda, auto)
    :param _init_setup_model: whether to build the network at the creation of the instance
    :param a2c_only: A2C's fixed-size rollout arguments, refused with a ``TypeError`` that points to A2C
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    # the action spaces the class takes (checked at construction, as SB3's supported_action_spaces argument)
    supported_action_spaces: ClassVar[tuple[type[spaces.Space], ...]] = (
        spaces.Box,
        spaces.Discrete,
        spaces.MultiDiscrete,
        spaces.MultiBinary,
    )
    policy: ActorCriticPolicy

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 2e-4,
        n_episodes: int = 2,
        gamma: float = 1.0,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = math.inf,
        rms_prop_eps: float = 1e-5,
        use_rms_prop: bool = False,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        normalize_advantage: bool = True,
        use_baseline: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
        **a2c_only: Any,
    ) -> None:
        for name in a2c_only:
            if name not in A2C_ONLY:
                raise TypeError(f"REINFORCE.__init__() got an unexpected keyword argument {name!r}")
            raise TypeError(f"REINFORCE updates on whole episodes; {name} is A2C's: use stable_baselines3.A2C")
        check_policy_class(policy, ActorCriticPolicy, "REINFORCE")
        checked = check_arguments(type(self), locals())
        env = maybe_make_env(env, verbose)  # type: ignore[assignment]
        check_observation_space(getattr(env, "observation_space", None), "REINFORCE")
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=checked["stats_window_size"],
            tensorboard_log=tensorboard_log,
            verbose=checked["verbose"],
            device=device,
            support_multi_env=True,
            seed=checked["seed"],
            use_sde=checked["use_sde"],
            sde_sample_freq=checked["sde_sample_freq"],
            supported_action_spaces=self.supported_action_spaces,
        )
        self.n_episodes = checked["n_episodes"]
        self.gamma = checked["gamma"]
        self.normalize_advantage = checked["normalize_advantage"]
        self.use_baseline = checked["use_baseline"]
        self.vf_coef = checked["vf_coef"]
        self.ent_coef = checked["ent_coef"]
        self.max_grad_norm = checked["max_grad_norm"]
        if checked["use_rms_prop"] and "optimizer_class" not in self.policy_kwargs:
            # A2C's RMSprop, in a new dict: the caller's policy_kwargs stay as given (A2C adds to them)
            rms_prop = dict(alpha=0.99, eps=checked["rms_prop_eps"], weight_decay=0)
            self.policy_kwargs = {**self.policy_kwargs, "optimizer_class": th.optim.RMSprop, "optimizer_kwargs": rms_prop}
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        if self.env is not None and self.n_episodes < self.n_envs:
            raise ValueError(f"n_episodes ({self.n_episodes}) must be at least n_envs ({self.n_envs}): each env runs a share")
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, use_sde=self.use_sde, **self.policy_kwargs
        )
        self.policy = self.policy.to(self.device)
        # A2C's warning for an MLP policy on a GPU (SB3 issue 1245); the method reads only the policy class and device
        OnPolicyAlgorithm._maybe_recommend_cpu(self, mlp_class_name=MlpPolicy.__name__)  # type: ignore[arg-type]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        # Adam's moments too (as OnPolicyAlgorithm): a loaded model trains on as the saved one would have
        return ["policy", "policy.optimizer"], []

    def _episodes_batch(self, episodes: list[Episode]) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Observations, actions and returns ``G_t`` of whole episodes, no bootstrap (truncations end them too)."""
        observations = obs_as_tensor(stack_observations([obs for e in episodes for obs in e.observations]), self.device)
        actions = th.as_tensor(np.stack([action for e in episodes for action in e.actions]), device=self.device)
        returns = np.concatenate([discounted_returns(np.array(e.rewards), self.gamma) for e in episodes])
        return observations, actions, th.as_tensor(returns, device=self.device)  # type: ignore[return-value]

    def train(self, episodes: list[Episode]) -> None:
        """One gradient step on a batch of whole ``episodes``."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        observations, actions, returns = self._episodes_batch(episodes)
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()

        values, log_prob, entropy = self.policy.evaluate_actions(observations, actions)
        values = values.flatten()
        advantages = returns - values.detach() if self.use_baseline else returns
        if self.normalize_advantage and len(advantages) > 1:
            # Unbiased standard deviation, as the course notes' torch.std and A2C
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        # -(1 / sum_i T_i) * sum_i sum_t log pi(a_t|s_t) * A_t: the mean over every step of the batch
        policy_loss = -(log_prob * advantages).mean()
        loss = policy_loss
        if self.use_baseline:
            value_loss = F.mse_loss(values, returns)
            loss = loss + self.vf_coef * value_loss
            self.logger.record("train/value_loss", value_loss.item())
        # Gaussian distributions without a closed-form entropy: -E[log pi] as entropy estimate (as A2C)
        entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
        if self.ent_coef > 0:
            loss = loss + self.ent_coef * entropy_loss

        self.policy.optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self._n_updates += 1

        self.logger.record("train/policy_loss", policy_loss.item())
        self.logger.record("train/entropy_loss", entropy_loss.item())
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/batch_episodes", len(episodes))
        self.logger.record("train/batch_steps", len(returns))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())

    def dump_logs(self) -> None:
        """Write the rollout statistics, timings and the last update's losses to the logger."""
        record_rollout_and_time(self)
        self.logger.dump(step=self.num_timesteps)

    def learn(
        self: SelfREINFORCE,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 10,
        tb_log_name: str = "REINFORCE",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfREINFORCE:
        """
        Train until ``total_timesteps`` environment steps (at most ``n_envs - 1`` more: a ``VecEnv`` steps all its
        envs at once); the batch the budget cuts is dropped (class docstring).

        :param total_timesteps: number of environment steps to train on
        :param callback: callback(s) called after every environment step
        :param log_interval: dump the logs every ``log_interval`` updates
        :param tb_log_name: the name of the run for TensorBoard logging
        :param reset_num_timesteps: whether to reset the step counter (used in logging)
        :param progress_bar: display a progress bar using tqdm and rich
        :return: the trained model
        """
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        n_updates_at_start = self._n_updates
        while self.num_timesteps < total_timesteps:
            episodes = self.collect_episodes(callback, total_timesteps)
            if episodes is None:
                break
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            self.train(episodes)
            if log_interval is not None and self._n_updates % log_interval == 0:
                self.dump_logs()
        callback.on_training_end()
        n_steps_done = self.num_timesteps - self._num_timesteps_at_start
        if self._n_updates == n_updates_at_start and self.num_timesteps >= total_timesteps and n_steps_done > 0:
            warnings.warn(
                f"REINFORCE made no update in {n_steps_done} steps: no batch of {self.n_episodes} whole episodes ended "
                "within the budget, and a batch the budget cuts is dropped (episodes without an end have no "
                "Monte-Carlo return). Raise total_timesteps, lower n_episodes, add a time limit to the env "
                "(gymnasium.wrappers.TimeLimit) or use A2C (stable_baselines3.A2C) for fixed-size rollouts.",
                UserWarning,
                stacklevel=2,
            )
        return self

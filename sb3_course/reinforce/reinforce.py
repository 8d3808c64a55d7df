import math
import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import obs_as_tensor
from torch.nn import functional as F

from sb3_course.common.checkpoint import SafeFilesMixin
from sb3_course.common.logging import record_rollout_and_time
from sb3_course.common.returns import discounted_returns
from sb3_course.common.validation import check_learning_rate, check_observation_space, check_policy_class
from sb3_course.reinforce.arguments import check_arguments, check_batch_mode
from sb3_course.reinforce.episodes import Episode, stack_observations
from sb3_course.reinforce.policies import CnnPolicy, MlpPolicy, MultiInputPolicy
from sb3_course.reinforce.rollouts import EpisodicAlgorithm

SelfREINFORCE = TypeVar("SelfREINFORCE", bound="REINFORCE")


class REINFORCE(SafeFilesMixin, EpisodicAlgorithm):
    """
    Batch episodic REINFORCE: Monte-Carlo policy gradient on whole episodes, one update per batch of episodes.

    Course notes: lecture "29. Policy Gradient practice 2" (Batch episodic update REINFORCE, ``EpisodicMemory``).
    Paper: Williams (1992), https://link.springer.com/article/10.1007/BF00992696

    Each update collects ``n_episodes`` whole episodes with the current policy, computes
    ``G_t = sum_k gamma^k r_{t+k}`` backwards in each episode, optionally standardises them over the batch and
    takes one gradient step on ``-(1 / sum_i T_i) * sum_i sum_t log pi(a_t|s_t) * G_t``.

    Why ``BaseAlgorithm`` with its own ``learn()`` loop (as sb3-contrib's ARS) and not ``OnPolicyAlgorithm``:
    SB3's rollout buffer holds a fixed ``n_steps`` per environment and cuts episodes at its border, so returns
    would need bootstrapping, which REINFORCE does not have. Here a batch is a list of whole episodes of
    variable length (``Dict`` observations stored per key, as SB3's ``DictRolloutBuffer``). With ``n_envs > 1``
    every environment contributes a fixed share of the ``n_episodes``; all environments start the batch at an
    episode start (they are reset if needed), an environment that has finished its share keeps stepping
    (``VecEnv`` steps all environments) but those steps are discarded, so no episode is cut or used twice and
    every episode comes from the policy being updated. A time-limit truncation ends an episode like a termination
    (Monte-Carlo returns, no bootstrap).

    Differences from the course notes:

    - The notes' ``EpisodicMemory`` does not run (undefined ``done`` and ``A``, ``compute_return`` iterates an
      empty list); the returns here are the intended ``G_t`` of each episode.
    - The notes update after the first episode and then every second one (``ep % 2 == 0``); here every update
      uses exactly ``n_episodes`` new episodes.
    - Optional learned baseline (``use_baseline``, advantage ``G_t - V(s_t)``, value loss weighted by ``vf_coef``)
      and entropy bonus (``ent_coef``), both off by default; gradient clipping at ``max_grad_norm`` (default: off).
    - SB3's ``ActorCriticPolicy`` initialisation (orthogonal) and Adam ``eps=1e-5`` instead of PyTorch defaults.
    - A2C's optional RMSprop (``use_rms_prop``, off: the course's Adam) and gSDE (``use_sde``) are available.
    - Optional fixed-size batches (``n_steps``, off by default; RLlib's ``batch_mode="truncate_episodes"``):
      ``n_steps`` steps per environment, episodes cut at the batch border and bootstrapped from the learned
      baseline, truncations too. That is A2C (``gae_lambda=1`` unless set), and it is collected and computed as
      A2C does (SB3's ``RolloutBuffer``, its float32 returns and its shuffled batch), so the two compute the same
      runs (the parity suite's implementation check compares them); it is not the course's whole-episode
      REINFORCE. ``gae_lambda``, ``rollout_buffer_class`` and ``rollout_buffer_kwargs`` only apply to this mode.

    Step budget: ``learn(total_timesteps)`` stops stepping once ``total_timesteps`` steps are done (at most
    ``n_envs - 1`` more, since a ``VecEnv`` steps all its envs at once), whatever the episode lengths: on an env whose
    episodes never end it returns after the budget, as A2C does. The batch the budget cuts is not trained on: its
    unfinished episodes have no Monte-Carlo return, and an update on its finished episodes alone would favour short
    episodes. Its steps are counted (callbacks, logger, progress bar). Memory holds one batch, so never more than the
    budget's steps (measured: about 0.3 kB per env step with a 4-float observation, plus the bytes of larger
    observations). A ``learn()`` call that ends without any update (no batch of whole episodes fitted into its
    budget) warns. With ``n_steps`` the batches are A2C's, and as A2C ``learn()`` finishes its last batch: up to
    ``n_steps * n_envs - 1`` steps past the budget.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy, MultiInputPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate, constant or a schedule of the remaining progress (course: 2e-4)
    :param n_episodes: number of whole episodes per update, over all environments (course: 2); at least ``n_envs``
    :param n_steps: ``None``: batches of ``n_episodes`` whole episodes (course); an int: batches of ``n_steps``
        steps per environment across episode ends, cut episodes bootstrapped from ``V`` (needs ``use_baseline``)
    :param gamma: discount factor (course: 1.0)
    :param gae_lambda: GAE's bias-variance trade-off of the ``n_steps`` batches (A2C's); whole episodes are
        Monte-Carlo, 1.0
    :param ent_coef: weight of the entropy bonus (0: none, as in the course)
    :param vf_coef: weight of the value loss; only used with ``use_baseline``
    :param max_grad_norm: maximum gradient norm (``inf``: no clipping, as in the course)
    :param rms_prop_eps: RMSprop's epsilon (with ``use_rms_prop``)
    :param use_rms_prop: whether to use RMSprop (A2C's default) instead of the course's Adam
    :param use_sde: whether to use generalized State Dependent Exploration (gSDE) instead of action noise
        exploration (``Box`` actions only)
    :param sde_sample_freq: sample a new gSDE noise matrix every ``sde_sample_freq`` steps (-1: only at the
        beginning of each batch)
    :param rollout_buffer_class: rollout buffer class of the ``n_steps`` batches (default: SB3's ``RolloutBuffer``,
        ``DictRolloutBuffer`` for ``Dict`` observations)
    :param rollout_buffer_kwargs: keyword arguments of the rollout buffer of the ``n_steps`` batches
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
    rollout_buffer: RolloutBuffer

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 2e-4,
        n_episodes: int = 2,
        n_steps: int | None = None,
        gamma: float = 1.0,
        gae_lambda: float = 1.0,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = math.inf,
        rms_prop_eps: float = 1e-5,
        use_rms_prop: bool = False,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type[RolloutBuffer] | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        normalize_advantage: bool = True,
        use_baseline: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        check_policy_class(policy, ActorCriticPolicy, "REINFORCE")
        check_learning_rate(learning_rate)
        checked = check_arguments(locals())  # every number and flag, by name; ints and floats as Python's
        check_batch_mode(n_steps, use_baseline, gae_lambda, rollout_buffer_class, rollout_buffer_kwargs)
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
            use_sde=use_sde,
            sde_sample_freq=checked["sde_sample_freq"],
            supported_action_spaces=self.supported_action_spaces,
        )
        self.n_episodes = checked["n_episodes"]
        self.n_steps = checked["n_steps"]
        self.gamma = checked["gamma"]
        self.gae_lambda = checked["gae_lambda"]
        self.normalize_advantage = normalize_advantage
        self.use_baseline = use_baseline
        self.vf_coef = checked["vf_coef"]
        self.ent_coef = checked["ent_coef"]
        self.max_grad_norm = checked["max_grad_norm"]
        self.rollout_buffer_class = rollout_buffer_class
        self.rollout_buffer_kwargs = rollout_buffer_kwargs or {}
        if use_rms_prop and "optimizer_class" not in self.policy_kwargs:
            # A2C's RMSprop, in a new dict: the caller's policy_kwargs stay as given (A2C adds to them)
            rms_prop = dict(alpha=0.99, eps=checked["rms_prop_eps"], weight_decay=0)
            self.policy_kwargs = {**self.policy_kwargs, "optimizer_class": th.optim.RMSprop, "optimizer_kwargs": rms_prop}
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        if self.env is not None and self.n_steps is None and self.n_episodes < self.n_envs:
            raise ValueError(f"n_episodes ({self.n_episodes}) must be at least n_envs ({self.n_envs}): each env runs a share")
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, use_sde=self.use_sde, **self.policy_kwargs
        )
        self.policy = self.policy.to(self.device)
        # A2C's warning for an MLP policy on a GPU (SB3 issue 1245); the method reads only the policy class and device
        OnPolicyAlgorithm._maybe_recommend_cpu(self, mlp_class_name=MlpPolicy.__name__)  # type: ignore[arg-type]
        if self.n_steps is not None:
            if self.rollout_buffer_class is None:
                dict_obs = isinstance(self.observation_space, spaces.Dict)
                self.rollout_buffer_class = DictRolloutBuffer if dict_obs else RolloutBuffer
            self.rollout_buffer = self.rollout_buffer_class(
                self.n_steps,
                self.observation_space,  # type: ignore[arg-type]
                self.action_space,
                device=self.device,
                gamma=self.gamma,
                gae_lambda=self.gae_lambda,  # 1: Monte-Carlo returns inside the batch, bootstrapped at its border
                n_envs=self.n_envs,
                **self.rollout_buffer_kwargs,
            )

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        # Adam's moments too (as OnPolicyAlgorithm): a loaded model trains on as the saved one would have
        return ["policy", "policy.optimizer"], []

    def _episodes_batch(self, episodes: list[Episode]) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Observations, actions and returns ``G_t`` of whole episodes, no bootstrap (truncations end them too)."""
        observations = obs_as_tensor(stack_observations([obs for e in episodes for obs in e.observations]), self.device)
        actions = th.as_tensor(np.stack([action for e in episodes for action in e.actions]), device=self.device)
        returns = np.concatenate([discounted_returns(np.array(e.rewards), self.gamma) for e in episodes])
        return observations, actions, th.as_tensor(returns, device=self.device)  # type: ignore[return-value]

    def train(self, episodes: list[Episode] | None = None) -> None:
        """
        One gradient step on a batch: whole ``episodes``, or (``n_steps`` mode, ``None``) the rollout buffer.
        """
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        advantages: th.Tensor | None = None
        if episodes is not None:
            observations, actions, returns = self._episodes_batch(episodes)
        else:
            # One batch of the whole buffer, shuffled as A2C's (the order only changes float rounding of the means)
            (batch,) = self.rollout_buffer.get(batch_size=None)
            observations, actions, returns = batch.observations, batch.actions, batch.returns  # type: ignore[assignment]
            advantages = batch.advantages  # G_t - V(s_t), from the rollout's values (the same weights)
        if isinstance(self.action_space, spaces.Discrete):
            actions = actions.long().flatten()

        values, log_prob, entropy = self.policy.evaluate_actions(observations, actions)
        values = values.flatten()
        if advantages is None:
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
        if episodes is not None:
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
        Train until ``total_timesteps`` environment steps: a batch of whole episodes that the budget cuts is dropped,
        an ``n_steps`` batch is finished (class docstring).

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
            if self.n_steps is None:
                episodes = self.collect_episodes(callback, total_timesteps)
                if episodes is None:
                    break
            elif not self.collect_steps(callback):
                break
            else:
                episodes = None
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
                "(gymnasium.wrappers.TimeLimit) or set n_steps and use_baseline=True for fixed-size batches.",
                UserWarning,
                stacklevel=2,
            )
        return self

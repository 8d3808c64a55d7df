from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm, maybe_make_env
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import obs_as_tensor
from torch.nn import functional as F

from sb3_course.common.checkpoint import SafeFilesMixin
from sb3_course.common.logging import record_rollout_and_time
from sb3_course.common.returns import discounted_returns
from sb3_course.common.validation import (
    check_in_range,
    check_learning_rate,
    check_observation_space,
    check_policy_class,
)
from sb3_course.reinforce.policies import CnnPolicy, MlpPolicy

SelfREINFORCE = TypeVar("SelfREINFORCE", bound="REINFORCE")


@dataclass
class Episode:
    """One whole episode of one environment: observations, actions taken (unclipped) and rewards."""

    observations: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rewards)


class _Step(NamedTuple):
    """One ``VecEnv`` step: actions taken (unclipped), the policy's values and log-probabilities, the results."""

    actions: np.ndarray
    values: th.Tensor
    log_probs: th.Tensor
    new_obs: Any
    rewards: np.ndarray
    dones: np.ndarray
    infos: list[dict]


class REINFORCE(SafeFilesMixin, BaseAlgorithm):
    """
    Batch episodic REINFORCE: Monte-Carlo policy gradient on whole episodes, one update per batch of episodes.

    Course notes: ``004_d577300d9cd560e1.txt`` (Batch episodic update REINFORCE, ``EpisodicMemory``).
    Paper: Williams (1992), https://link.springer.com/article/10.1007/BF00992696

    Each update collects ``n_episodes`` whole episodes with the current policy, computes
    ``G_t = sum_k gamma^k r_{t+k}`` backwards in each episode, optionally standardises them over the batch and
    takes one gradient step on ``-(1 / sum_i T_i) * sum_i sum_t log pi(a_t|s_t) * G_t``.

    Why ``BaseAlgorithm`` with its own ``learn()`` loop (as sb3-contrib's ARS) and not ``OnPolicyAlgorithm``:
    SB3's rollout buffer holds a fixed ``n_steps`` per environment and cuts episodes at its border, so returns
    would need bootstrapping, which REINFORCE does not have. Here a batch is a list of whole episodes of
    variable length. With ``n_envs > 1`` every environment contributes a fixed share of the ``n_episodes``;
    all environments start the batch at an episode start (they are reset if needed), an environment that
    has finished its share keeps stepping (``VecEnv`` steps all environments) but those steps are discarded,
    so no episode is cut or used twice and every episode comes from the policy being updated. A time-limit
    truncation ends an episode like a termination (Monte-Carlo returns, no bootstrap).

    Differences from the course notes:

    - The notes' ``EpisodicMemory`` does not run (undefined ``done`` and ``A``, ``compute_return`` iterates an
      empty list); the returns here are the intended ``G_t`` of each episode.
    - The notes update after the first episode and then every second one (``ep % 2 == 0``); here every update
      uses exactly ``n_episodes`` new episodes.
    - Optional learned baseline (``use_baseline``, advantage ``G_t - V(s_t)``, value loss weighted by ``vf_coef``)
      and entropy bonus (``ent_coef``), both off by default; gradient clipping at ``max_grad_norm`` (default: off).
    - SB3's ``ActorCriticPolicy`` initialisation (orthogonal) and Adam ``eps=1e-5`` instead of PyTorch defaults.
    - Optional fixed-size batches (``n_steps``, off by default; RLlib's ``batch_mode="truncate_episodes"``):
      ``n_steps`` steps per environment, episodes cut at the batch border and bootstrapped from the learned
      baseline, truncations too. That is A2C with ``gae_lambda=1``, and it is collected and computed as A2C does
      (SB3's ``RolloutBuffer``, its float32 returns and its shuffled batch), so the two compute the same runs (the
      parity suite's implementation check compares them); it is not the course's whole-episode REINFORCE.

    :param policy: The policy model to use (MlpPolicy, CnnPolicy)
    :param env: The environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate of Adam, constant or a schedule of the remaining progress (course: 2e-4)
    :param n_episodes: number of whole episodes per update, over all environments (course: 2)
    :param n_steps: ``None``: batches of ``n_episodes`` whole episodes (course); an int: batches of ``n_steps``
        steps per environment across episode ends, cut episodes bootstrapped from ``V`` (needs ``use_baseline``)
    :param gamma: discount factor (course: 1.0)
    :param normalize_advantage: standardise the advantages over the batch; without a baseline the advantages are
        the returns, so this is the course's return normalisation (course: on)
    :param use_baseline: subtract the learned value ``V(s_t)`` from ``G_t`` and train it by regression on ``G_t``
    :param vf_coef: weight of the value loss; only used with ``use_baseline``
    :param ent_coef: weight of the entropy bonus (0: none, as in the course)
    :param max_grad_norm: maximum gradient norm (``inf``: no clipping, as in the course)
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
    }
    policy: ActorCriticPolicy

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 2e-4,
        n_episodes: int = 2,
        n_steps: int | None = None,
        gamma: float = 1.0,
        normalize_advantage: bool = True,
        use_baseline: bool = False,
        vf_coef: float = 0.5,
        ent_coef: float = 0.0,
        max_grad_norm: float = float("inf"),
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
        check_in_range("gamma", gamma, 0.0, 1.0)
        check_in_range("n_episodes", n_episodes, 1, float("inf"))
        if n_steps is not None:
            check_in_range("n_steps", n_steps, 1, float("inf"))
            if not use_baseline:
                raise ValueError("n_steps bootstraps the episodes it cuts from the learned value: set use_baseline=True")
        check_in_range("vf_coef", vf_coef, 0.0, float("inf"))
        check_in_range("ent_coef", ent_coef, 0.0, float("inf"))
        check_in_range("max_grad_norm", max_grad_norm, 0.0, float("inf"), low_inclusive=False)
        env = maybe_make_env(env, verbose)  # type: ignore[assignment]
        check_observation_space(getattr(env, "observation_space", None), "REINFORCE")
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            seed=seed,
            supported_action_spaces=(spaces.Discrete, spaces.Box),
        )
        if self.env is not None and n_steps is None and n_episodes < self.n_envs:
            raise ValueError(f"n_episodes ({n_episodes}) must be at least n_envs ({self.n_envs}): each env runs a share")
        self.n_episodes = n_episodes
        self.n_steps = n_steps
        self.gamma = gamma
        self.normalize_advantage = normalize_advantage
        self.use_baseline = use_baseline
        self.vf_coef = vf_coef
        self.ent_coef = ent_coef
        self.max_grad_norm = max_grad_norm
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(self.observation_space, self.action_space, self.lr_schedule, **self.policy_kwargs)  # type: ignore[assignment]
        self.policy = self.policy.to(self.device)
        if self.n_steps is not None:
            self.rollout_buffer = RolloutBuffer(
                self.n_steps,
                self.observation_space,
                self.action_space,
                device=self.device,
                gamma=self.gamma,
                gae_lambda=1.0,  # Monte-Carlo returns inside the batch, bootstrapped at its border
                n_envs=self.n_envs,
            )

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        # Adam's moments too (as OnPolicyAlgorithm): a loaded model trains on as the saved one would have
        return ["policy", "policy.optimizer"], []

    def _episode_shares(self) -> np.ndarray:
        """How many episodes each environment contributes to a batch (they sum to ``n_episodes``)."""
        shares = np.full(self.n_envs, self.n_episodes // self.n_envs)
        shares[: self.n_episodes % self.n_envs] += 1
        return shares

    def _clip_actions(self, actions: np.ndarray) -> np.ndarray:
        if not isinstance(self.action_space, spaces.Box):
            return actions
        if self.policy.squash_output:
            return self.policy.unscale_action(actions)
        return np.clip(actions, self.action_space.low, self.action_space.high)

    def _step(self, callback: BaseCallback) -> _Step | None:
        """
        One ``VecEnv`` step with the current policy, counted and shown to the callback.

        :return: the step, or ``None`` if the callback stopped training
        """
        assert self.env is not None
        with th.no_grad():
            actions, values, log_probs = self.policy(obs_as_tensor(self._last_obs, self.device))  # type: ignore[arg-type]
        actions = actions.cpu().numpy()
        new_obs, rewards, dones, infos = self.env.step(self._clip_actions(actions))
        self.num_timesteps += self.n_envs
        callback.update_locals(locals())
        if not callback.on_step():
            return None
        self._update_info_buffer(infos, dones)
        return _Step(actions, values, log_probs, new_obs, rewards, dones, infos)

    def collect_episodes(self, callback: BaseCallback) -> list[Episode] | None:
        """
        Run the current policy until every environment has finished its share of the batch.

        :param callback: called after every ``VecEnv`` step
        :return: the finished episodes, or ``None`` if the callback stopped training
        """
        assert self.env is not None and self._last_episode_starts is not None
        if not self._last_episode_starts.all():
            # A batch starts at an episode start in every env: no episode is shared by two batches.
            self._last_obs = self.env.reset()  # type: ignore[assignment]
            self._last_episode_starts = np.ones(self.n_envs, dtype=bool)
        shares = self._episode_shares()
        running = [Episode() for _ in range(self.n_envs)]
        finished: list[Episode] = []
        self.policy.set_training_mode(False)
        callback.on_rollout_start()
        while shares.any():
            step = self._step(callback)
            if step is None:
                return None
            for i in np.flatnonzero(shares):
                running[i].observations.append(self._last_obs[i])  # type: ignore[index]
                running[i].actions.append(step.actions[i])
                running[i].rewards.append(float(step.rewards[i]))
                if step.dones[i]:
                    finished.append(running[i])
                    running[i] = Episode()
                    shares[i] -= 1
                    self._episode_num += 1
            self._last_obs = step.new_obs
            self._last_episode_starts = step.dones
        callback.on_rollout_end()
        return finished

    def collect_steps(self, callback: BaseCallback) -> bool:
        """
        ``n_steps`` steps of every environment with the current policy, across episode ends, into the rollout
        buffer with their returns (``n_steps`` mode): the steps of SB3's ``OnPolicyAlgorithm.collect_rollouts``.

        :param callback: called after every ``VecEnv`` step
        :return: whether the batch is complete (``False`` if the callback stopped training)
        """
        assert self.n_steps is not None
        self.rollout_buffer.reset()
        self.policy.set_training_mode(False)
        callback.on_rollout_start()
        for _ in range(self.n_steps):
            step = self._step(callback)
            if step is None:
                return False
            actions, rewards = step.actions, step.rewards
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)
            for i in np.flatnonzero(step.dones):
                info = step.infos[i]
                if info.get("terminal_observation") is not None and info.get("TimeLimit.truncated", False):
                    # A truncation bootstraps from V(s_T) inside the reward (as SB3's on-policy algorithms)
                    terminal_obs = self.policy.obs_to_tensor(info["terminal_observation"])[0]
                    with th.no_grad():
                        terminal_value = self.policy.predict_values(terminal_obs)[0]  # type: ignore[arg-type]
                    rewards[i] += self.gamma * terminal_value
            self.rollout_buffer.add(
                self._last_obs,  # type: ignore[arg-type]
                actions,
                rewards,
                self._last_episode_starts,  # type: ignore[arg-type]
                step.values,
                step.log_probs,
            )
            self._episode_num += int(step.dones.sum())
            self._last_obs = step.new_obs
            self._last_episode_starts = step.dones
        with th.no_grad():
            last_values = self.policy.predict_values(obs_as_tensor(self._last_obs, self.device))  # type: ignore[arg-type]
        assert self._last_episode_starts is not None
        self.rollout_buffer.compute_returns_and_advantage(last_values=last_values, dones=self._last_episode_starts)
        callback.on_rollout_end()
        return True

    def _episodes_batch(self, episodes: list[Episode]) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Observations, actions and returns ``G_t`` of whole episodes, no bootstrap (truncations end them too)."""
        observations = obs_as_tensor(np.concatenate([np.stack(e.observations) for e in episodes]), self.device)
        actions = th.as_tensor(np.concatenate([np.stack(e.actions) for e in episodes]), device=self.device)
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
        Train until ``total_timesteps`` environment steps (the last batch is always finished).

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
        while self.num_timesteps < total_timesteps:
            if self.n_steps is None:
                episodes = self.collect_episodes(callback)
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
        return self

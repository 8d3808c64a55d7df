"""
A3C's asynchronous workers: the loop each worker process runs on the shared policy (rollouts, returns or GAE
advantages, one Hogwild gradient step per rollout) and the process entry point that reports failures.
"""

import ctypes
import dataclasses
import multiprocessing as mp
import os
import signal
import sys
import threading
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import obs_as_tensor, update_learning_rate
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper

from sb3_course.common.returns import discounted_returns, l2_normalize

# Message kinds of the worker -> main queue
EPISODE, ERROR = "episode", "error"
# Name of the worker processes (the main module re-imported in one must not start workers itself)
WORKER_NAME = "A3C-worker"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class A3CWorkerError(RuntimeError):
    """Raised in the main process when an A3C worker failed; the message holds the worker's traceback."""


@dataclass
class WorkerConfig:
    """What every worker needs besides the shared policy; sent with cloudpickle (factories may be lambdas)."""

    env_fn: Callable[[], gym.Env]
    lr_schedule: Schedule
    gamma: float
    n_steps: int | None
    vf_coef: float
    ent_coef: float
    max_grad_norm: float
    normalize_returns: bool
    total_timesteps: int
    seed: int | None
    gae_lambda: float = 1.0
    normalize_advantage: bool = False
    use_sde: bool = False
    sde_sample_freq: int = -1


@dataclass
class Rollout:
    """
    Consecutive steps of one worker and the value ``G_T`` its returns start from (``V`` of the state after the last
    step; 0 if an episode ended there). ``episode_ends[t]``: an episode ended with step ``t``; a truncation's
    bootstrap ``gamma * V(s_T)`` is in that step's reward, as SB3's on-policy algorithms add it.
    """

    observations: list[Any] = dataclasses.field(default_factory=list)
    actions: list[np.ndarray] = dataclasses.field(default_factory=list)
    rewards: list[float] = dataclasses.field(default_factory=list)
    episode_ends: list[bool] = dataclasses.field(default_factory=list)
    last_value: float = 0.0
    episode_infos: list[dict[str, float]] = dataclasses.field(default_factory=list)


def gae_advantages(
    rewards: np.ndarray, values: np.ndarray, last_value: float, episode_ends: list[bool], gamma: float, gae_lambda: float
) -> np.ndarray:
    """
    Generalised advantage estimates of one rollout (as SB3's ``RolloutBuffer``):
    ``delta_t = r_t + gamma V(s_{t+1}) (1 - end_t) - V(s_t)``, ``A_t = delta_t + gamma lambda (1 - end_t) A_{t+1}``.
    """
    advantages = np.empty(len(rewards), dtype=np.float32)
    advantage, next_value = 0.0, float(last_value)
    for t in reversed(range(len(rewards))):
        not_end = 0.0 if episode_ends[t] else 1.0
        delta = rewards[t] + gamma * next_value * not_end - values[t]
        advantage = delta + gamma * gae_lambda * not_end * advantage
        advantages[t], next_value = advantage, values[t]
    return advantages


def _stack(observations: list[Any]) -> np.ndarray | dict[str, np.ndarray]:
    if isinstance(observations[0], dict):
        return {key: np.stack([obs[key] for obs in observations]) for key in observations[0]}
    return np.stack(observations)


class Worker:
    """
    One Hogwild worker: its own environment and optimizer, gradient steps straight into the shared parameters.

    :param rank: index of the worker
    :param config: the shared hyperparameters
    :param policy: the policy whose parameters live in shared memory
    :param counter: shared count of environment steps (all workers)
    :param stop_event: set by the main process to stop the worker
    :param messages: worker -> main queue (episode statistics with losses, errors)
    """

    # The paper's rollouts: up to n_steps steps, ended by the end of their episode
    rollout_ends_with_episode: ClassVar[bool] = True

    def __init__(
        self, rank: int, config: WorkerConfig, policy: ActorCriticPolicy, counter: Any, stop_event: Any, messages: Any
    ) -> None:
        self.rank, self.config, self.policy = rank, config, policy
        self.counter, self.stop_event, self.messages = counter, stop_event, messages
        self.env = config.env_fn()
        if not is_wrapped(self.env, Monitor):
            self.env = Monitor(self.env)
        seed = None if config.seed is None else config.seed + rank
        if seed is not None:
            th.manual_seed(seed)
            self.env.action_space.seed(seed)
        self.obs, _ = self.env.reset(seed=seed)
        # One optimizer per worker (the notes: ``worker_opt = optim.Adam(...)`` inside ``worker``)
        self.optimizer = policy.optimizer_class(policy.parameters(), lr=config.lr_schedule(1.0), **policy.optimizer_kwargs)  # type: ignore[call-arg]
        self.losses: dict[str, list[float]] = defaultdict(list)

    def reserve_step(self) -> bool:
        """Claim one environment step of the shared budget; ``False`` once ``total_timesteps`` are used up."""
        with self.counter.get_lock():
            if self.counter.value >= self.config.total_timesteps:
                return False
            self.counter.value += 1
            return True

    def _act(self, obs: Any) -> tuple[np.ndarray, Any]:
        with th.no_grad():
            action = self.policy.get_distribution(self.policy.obs_to_tensor(obs)[0]).get_actions()[0].cpu().numpy()
        # Box actions are clipped (or unsquashed) for the env and stored as sampled, as A2C's rollouts do; the
        # other spaces' samples (Discrete, MultiDiscrete, MultiBinary) are valid actions as they are.
        env_action = action
        if isinstance(self.policy.action_space, spaces.Box):
            space = self.policy.action_space
            env_action = (
                self.policy.unscale_action(action) if self.policy.squash_output else np.clip(action, space.low, space.high)
            )
        return action, env_action

    def _value(self, obs: Any) -> float:
        with th.no_grad():
            return float(self.policy.predict_values(self.policy.obs_to_tensor(obs)[0]).item())

    def collect_rollout(self) -> Rollout | None:
        """
        Step until the episode ends (with ``rollout_ends_with_episode``), ``n_steps`` are taken or the step budget is
        spent (``None``: no step).
        """
        config, rollout = self.config, Rollout()
        while config.n_steps is None or len(rollout.rewards) < config.n_steps:
            if self.stop_event.is_set() or not self.reserve_step():
                break
            steps = len(rollout.rewards)
            if config.use_sde and (steps == 0 or (config.sde_sample_freq > 0 and steps % config.sde_sample_freq == 0)):
                with th.no_grad():  # a new gSDE exploration matrix (as OnPolicyAlgorithm.collect_rollouts)
                    self.policy.reset_noise()
            action, env_action = self._act(self.obs)
            next_obs, reward, terminated, truncated, info = self.env.step(env_action)
            rollout.observations.append(self.obs)
            rollout.actions.append(action)
            rollout.rewards.append(float(reward))
            rollout.episode_ends.append(bool(terminated or truncated))
            self.obs = next_obs
            if terminated or truncated:
                if not terminated:  # a truncation bootstraps from V(s_T); a termination has G_T = 0
                    rollout.rewards[-1] += config.gamma * self._value(next_obs)
                if "episode" in info:
                    rollout.episode_infos.append(info["episode"])
                self.obs, _ = self.env.reset()
                if self.rollout_ends_with_episode:
                    return rollout
        if not rollout.rewards:
            return None
        rollout.last_value = 0.0 if rollout.episode_ends[-1] else self._value(self.obs)
        return rollout

    def _targets(self, rollout: Rollout, values: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """The critic's targets and the actor's advantages (``G_t - V(s_t)``, or GAE with ``gae_lambda < 1``)."""
        config, rewards = self.config, np.array(rollout.rewards)
        if config.gae_lambda == 1.0:
            returns = discounted_returns(rewards, config.gamma, rollout.last_value, rollout.episode_ends)
            if config.normalize_returns:
                returns = l2_normalize(returns)
            returns_t = th.as_tensor(returns, device=values.device)
            advantages = returns_t - values
        else:
            gae = gae_advantages(
                rewards, values.cpu().numpy(), rollout.last_value, rollout.episode_ends, config.gamma, config.gae_lambda
            )
            advantages = th.as_tensor(gae, device=values.device)
            returns_t = advantages + values
        if config.normalize_advantage and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        return returns_t, advantages

    def update(self, rollout: Rollout) -> None:
        """One asynchronous gradient step on the shared parameters (the notes' ``update_params``)."""
        config = self.config
        observations = obs_as_tensor(_stack(rollout.observations), self.policy.device)
        # float32 as A2C's rollout samples (MultiBinary's int8 actions would break Bernoulli's log-probability);
        # Discrete indices as long, as A2C.train()
        actions = th.as_tensor(np.stack(rollout.actions), dtype=th.float32, device=self.policy.device)
        if isinstance(self.policy.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        values, log_prob, entropy = self.policy.evaluate_actions(observations, actions)
        values = values.flatten()
        returns, advantages = self._targets(rollout, values.detach())
        # actor = -log pi(a|s) * A, critic = (V - G)^2, loss = sum(actor) + vf_coef * sum(critic)
        policy_loss = -self.reduce(log_prob * advantages)
        value_loss = self.reduce((values - returns).pow(2))
        entropy_loss = self.reduce(log_prob) if entropy is None else -self.reduce(entropy)
        loss = policy_loss + config.vf_coef * value_loss + config.ent_coef * entropy_loss

        progress_remaining = 1.0 - self.counter.value / config.total_timesteps
        update_learning_rate(self.optimizer, config.lr_schedule(progress_remaining))
        self.optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(self.policy.parameters(), config.max_grad_norm)
        # Hogwild: no lock, the step writes the shared tensors in place.
        self.optimizer.step()
        for name, value in (("policy_loss", policy_loss), ("value_loss", value_loss), ("entropy_loss", entropy_loss)):
            self.losses[name].append(value.item())

    def reduce(self, terms: th.Tensor) -> th.Tensor:
        """A loss term of the rollout from its values per step: their sum (the notes' ``update_params``)."""
        return terms.sum()

    def run(self) -> None:
        while not self.stop_event.is_set():
            rollout = self.collect_rollout()
            if rollout is None:
                return
            self.update(rollout)
            for i, episode_info in enumerate(rollout.episode_infos):
                # The losses since the last message travel with the rollout's last episode
                losses: dict[str, float] = {}
                if i == len(rollout.episode_infos) - 1:
                    losses = {name: float(np.mean(values)) for name, values in self.losses.items()}
                    self.losses.clear()
                self.messages.put((EPISODE, self.rank, episode_info, losses))


def die_with_main_process() -> None:
    """
    End this worker as soon as the main process dies, whatever it is doing (a rollout of any length, a long
    ``env.step``): a daemon thread waits on the main process's sentinel (a pipe closed by its death, on every
    platform) and exits the process. On Linux the kernel also kills it when its parent process dies
    (``prctl(PR_SET_PDEATHSIG)``), which reaches a worker stuck in C code that holds the GIL; with ``forkserver`` that
    parent is the fork server, which lives as long as its children, so the thread is what ends them there.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    main_process = mp.parent_process()
    if main_process is not None:
        threading.Thread(target=_exit_after, args=(main_process,), name="A3C-main-watch", daemon=True).start()


def _exit_after(process: mp.process.BaseProcess) -> None:
    process.join()
    # os._exit: nobody reads the message queue any more, so do not wait for it to be flushed into the pipe
    os._exit(1)


def run_worker(
    worker_class: type[Worker],
    rank: int,
    config: CloudpickleWrapper,
    policy: ActorCriticPolicy,
    counter: Any,
    stop_event: Any,
    messages: Any,
) -> None:
    """Target of a worker process: run the worker, report any exception with its traceback to the main process."""
    try:
        die_with_main_process()
        # Ctrl-C is handled by the main process, which stops the workers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        th.set_num_threads(1)
        worker_class(rank, config.var, policy, counter, stop_event, messages).run()
    except BaseException:
        messages.put((ERROR, rank, traceback.format_exc()))
        raise SystemExit(1) from None

"""
A3C's asynchronous workers: the loop each worker process runs on the shared policy, the pool that starts,
watches and stops them from the main process, and the environment factory the workers build their copies with.
"""

import dataclasses
import multiprocessing as mp
import queue
import signal
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec, WrapperSpec, load_env_creator
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import obs_as_tensor, update_learning_rate
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper

from sb3_course.common.returns import discounted_returns, l2_normalize

# Message kinds of the worker -> main queue
EPISODE, ERROR = "episode", "error"


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
    cross_episodes: bool = False
    loss_reduction: str = "sum"


@dataclass
class Rollout:
    """
    Consecutive steps of one worker and the value ``G_T`` its returns start from (``V`` of the state after the last
    step; 0 if an episode ended there). ``episode_ends[t]``: an episode ended with step ``t``; a truncation's
    bootstrap ``gamma * V(s_T)`` is in that step's reward, as SB3's on-policy algorithms add it.
    """

    observations: list[np.ndarray] = dataclasses.field(default_factory=list)
    actions: list[np.ndarray] = dataclasses.field(default_factory=list)
    rewards: list[float] = dataclasses.field(default_factory=list)
    episode_ends: list[bool] = dataclasses.field(default_factory=list)
    last_value: float = 0.0
    episode_infos: list[dict[str, float]] = dataclasses.field(default_factory=list)


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
        # One optimizer per worker (001: ``worker_opt = optim.Adam(...)`` inside ``worker``)
        self.optimizer = policy.optimizer_class(policy.parameters(), lr=config.lr_schedule(1.0), **policy.optimizer_kwargs)  # type: ignore[call-arg]
        self.losses: dict[str, list[float]] = defaultdict(list)

    def reserve_step(self) -> bool:
        """Claim one environment step of the shared budget; ``False`` once ``total_timesteps`` are used up."""
        with self.counter.get_lock():
            if self.counter.value >= self.config.total_timesteps:
                return False
            self.counter.value += 1
            return True

    def _act(self, obs: np.ndarray) -> tuple[np.ndarray, Any]:
        with th.no_grad():
            action = self.policy.get_distribution(self.policy.obs_to_tensor(obs)[0]).get_actions()[0].cpu().numpy()
        env_action = action
        if isinstance(self.policy.action_space, spaces.Box):
            space = self.policy.action_space
            env_action = (
                self.policy.unscale_action(action) if self.policy.squash_output else np.clip(action, space.low, space.high)
            )
        return action, env_action

    def _value(self, obs: np.ndarray) -> float:
        with th.no_grad():
            return float(self.policy.predict_values(self.policy.obs_to_tensor(obs)[0]).item())

    def collect_rollout(self) -> Rollout | None:
        """
        Step until the episode ends (unless ``cross_episodes``), ``n_steps`` are taken or the step budget is
        spent (``None``: no step).
        """
        rollout = Rollout()
        while self.config.n_steps is None or len(rollout.rewards) < self.config.n_steps:
            if self.stop_event.is_set() or not self.reserve_step():
                break
            action, env_action = self._act(self.obs)
            next_obs, reward, terminated, truncated, info = self.env.step(env_action)
            rollout.observations.append(self.obs)
            rollout.actions.append(action)
            rollout.rewards.append(float(reward))
            rollout.episode_ends.append(bool(terminated or truncated))
            self.obs = next_obs
            if terminated or truncated:
                if not terminated:  # a truncation bootstraps from V(s_T); a termination has G_T = 0
                    rollout.rewards[-1] += self.config.gamma * self._value(next_obs)
                if "episode" in info:
                    rollout.episode_infos.append(info["episode"])
                self.obs, _ = self.env.reset()
                if not self.config.cross_episodes:
                    return rollout
        if not rollout.rewards:
            return None
        rollout.last_value = 0.0 if rollout.episode_ends[-1] else self._value(self.obs)
        return rollout

    def update(self, rollout: Rollout) -> None:
        """One asynchronous gradient step on the shared parameters (001: ``update_params``)."""
        config = self.config
        returns = discounted_returns(np.array(rollout.rewards), config.gamma, rollout.last_value, rollout.episode_ends)
        if config.normalize_returns:
            returns = l2_normalize(returns)
        observations = obs_as_tensor(np.stack(rollout.observations), self.policy.device)
        actions = th.as_tensor(np.stack(rollout.actions), device=self.policy.device)
        if isinstance(self.policy.action_space, spaces.Discrete):
            actions = actions.long().flatten()
        values, log_prob, entropy = self.policy.evaluate_actions(observations, actions)
        values, returns_t = values.flatten(), th.as_tensor(returns, device=self.policy.device)
        # actor = -log pi(a|s) * (G - V.detach()), critic = (V - G)^2, loss = sum(actor) + vf_coef * sum(critic)
        # (loss_reduction "mean": means over the rollout, as A2C's loss)
        reduce = th.sum if config.loss_reduction == "sum" else th.mean
        policy_loss = -reduce(log_prob * (returns_t - values.detach()))
        value_loss = reduce((values - returns_t).pow(2))
        entropy_loss = reduce(log_prob) if entropy is None else -reduce(entropy)
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

    def run(self) -> None:
        parent = mp.parent_process()
        while not self.stop_event.is_set() and (parent is None or parent.is_alive()):
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


def run_worker(
    rank: int, config: CloudpickleWrapper, policy: ActorCriticPolicy, counter: Any, stop_event: Any, messages: Any
) -> None:
    """Target of a worker process: run the worker, report any exception with its traceback to the main process."""
    try:
        # Ctrl-C is handled by the main process, which stops the workers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        th.set_num_threads(1)
        Worker(rank, config.var, policy, counter, stop_event, messages).run()
    except BaseException:
        messages.put((ERROR, rank, traceback.format_exc()))
        raise SystemExit(1) from None


class WorkerPool:
    """
    The worker processes seen from the main process: start, watch (messages, failures) and stop them.

    :param config: the shared hyperparameters
    :param policy: the policy, already in shared memory
    :param n_workers: number of worker processes
    :param start_timesteps: initial value of the shared step counter
    :param start_method: multiprocessing start method (``forkserver`` or ``spawn``: safe with torch threads)
    """

    def __init__(
        self, config: WorkerConfig, policy: ActorCriticPolicy, n_workers: int, start_timesteps: int, start_method: str
    ) -> None:
        self.context = mp.get_context(start_method)
        if start_method == "forkserver":
            # Import torch and SB3 once in the fork server instead of once per worker; torch._dynamo is what
            # the first optimizer construction imports (seconds).
            self.context.set_forkserver_preload([__name__, "torch._dynamo"])
        self.counter = self.context.Value("q", start_timesteps)
        self.stop_event = self.context.Event()
        self.messages = self.context.Queue()
        payload = CloudpickleWrapper(config)
        self.processes = [
            self.context.Process(  # type: ignore[attr-defined]
                target=run_worker,
                args=(rank, payload, policy, self.counter, self.stop_event, self.messages),
                daemon=True,
                name=f"A3C-worker-{rank}",
            )
            for rank in range(n_workers)
        ]

    @property
    def steps(self) -> int:
        """Environment steps taken by all workers (shared counter)."""
        return int(self.counter.value)

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def all_exited(self) -> bool:
        return all(process.exitcode is not None for process in self.processes)

    def _drain(self, timeout: float) -> list[tuple]:
        received = []
        try:
            received.append(self.messages.get(timeout=timeout))
            while True:
                received.append(self.messages.get_nowait())
        except queue.Empty:
            return received

    def poll(self, timeout: float) -> list[tuple]:
        """Messages received within ``timeout`` seconds; raises ``A3CWorkerError`` if a worker failed."""
        received = self._drain(timeout)
        self._raise_errors(received)
        for rank, process in enumerate(self.processes):
            if process.exitcode not in (None, 0):
                # Its error message may still be in the pipe.
                self._raise_errors(self._drain(1.0))
                raise A3CWorkerError(f"A3C worker {rank} died with exit code {process.exitcode}")
        return received

    @staticmethod
    def _raise_errors(received: list[tuple]) -> None:
        for message in received:
            if message[0] == ERROR:
                raise A3CWorkerError(f"A3C worker {message[1]} failed:\n{message[2]}")

    def close(self, timeout: float = 5.0) -> list[tuple]:
        """Stop every worker (terminate or kill stragglers) and return the messages still queued."""
        self.stop_event.set()
        received: list[tuple] = []
        deadline = time.monotonic() + timeout
        # Keep reading: a process does not exit while its queued messages are not flushed into the pipe.
        while any(process.is_alive() for process in self.processes) and time.monotonic() < deadline:
            received += self._drain(0.05)
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join(1.0)
            if process.is_alive():
                process.kill()
            process.join()
        received += self._drain(0.0)
        self.messages.close()
        self.messages.join_thread()
        return received


def _make_from_spec(spec: EnvSpec, wrappers: tuple[WrapperSpec, ...]) -> gym.Env:
    # Monitor inside the extra wrappers: the logged returns stay the environment's own (as make_vec_env).
    env: gym.Env = Monitor(gym.make(spec))
    for wrapper in wrappers:
        env = load_env_creator(wrapper.entry_point)(env=env, **(wrapper.kwargs or {}))  # type: ignore[assignment]
    return env


def env_factory_from_vec_env(vec_env: VecEnv) -> Callable[[], gym.Env]:
    """
    A picklable factory of copies of ``vec_env``'s first environment, rebuilt from its ``EnvSpec``: ``gym.make``
    of the id with its ``make`` kwargs, a ``Monitor``, then the wrappers recorded in the spec (those inheriting
    ``gymnasium.utils.RecordConstructorArgs``, with their arguments). Pass an env factory to A3C otherwise.

    :param vec_env: the environment A3C was given (e.g. rl-zoo3's ``DummyVecEnv``)
    """
    if isinstance(vec_env, VecEnvWrapper):
        raise ValueError(
            f"A3C workers step plain gym environments and cannot copy {type(vec_env).__name__}; "
            "pass an env id or an env factory (and normalize: false in rl-zoo3)"
        )
    spec = vec_env.get_attr("spec", indices=[0])[0]
    if spec is None:
        raise ValueError("A3C cannot copy an environment without an EnvSpec for its workers; pass an env id or an env factory")
    wrappers = tuple(wrapper for wrapper in spec.additional_wrappers if wrapper.name != Monitor.__name__)
    lost = [wrapper.name for wrapper in wrappers if wrapper.kwargs is None]
    if lost:
        raise ValueError(
            f"A3C cannot rebuild the wrappers {lost} for its workers (they do not inherit "
            "gymnasium.utils.RecordConstructorArgs); pass an env factory instead"
        )
    return partial(_make_from_spec, dataclasses.replace(spec, additional_wrappers=()), wrappers)

import math
import multiprocessing as mp
from collections import defaultdict
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm, maybe_make_env
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor, ResultsWriter
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_course.a3c.envs import worker_env_factory
from sb3_course.a3c.policies import A3CCnnPolicy, A3CMultiInputPolicy, ActorCriticMlpPolicy, MlpPolicy
from sb3_course.a3c.pool import START_METHODS, WorkerPool, check_device, exit_if_importing_main_in_worker
from sb3_course.a3c.worker import EPISODE, Worker, WorkerConfig
from sb3_course.common.checkpoint import SafeFilesMixin
from sb3_course.common.logging import record_rollout_and_time
from sb3_course.common.validation import (
    UnsupportedSpaceError,
    check_arguments,
    check_int,
    check_observation_space,
    check_policy_class,
)

SelfA3C = TypeVar("SelfA3C", bound="A3C")


class A3C(SafeFilesMixin, BaseAlgorithm):
    """
    Asynchronous Advantage Actor-Critic: ``n_workers`` processes update one shared-memory policy without locks.

    Course notes: lecture "Actor-Critic" (CartPole-v1; ``ActorCritic``, ``worker``, ``update_params``, ``MasterNode``).
    Paper: Mnih et al. (2016), https://arxiv.org/abs/1602.01783

    ``learn()`` puts the policy in shared memory (``share_memory()``) and starts ``n_workers`` processes
    (``torch.multiprocessing`` semantics, ``forkserver`` or ``spawn``). Each worker owns a copy of the environment
    and its own optimizer; it collects a rollout (a whole episode, or ``n_steps`` steps bootstrapped from ``V``),
    computes ``G_t`` backwards and takes a gradient step on
    ``sum_t -log pi(a_t|s_t) (G_t - V(s_t).detach()) + vf_coef * sum_t (V(s_t) - G_t)^2`` directly on the shared
    parameters (Hogwild). The workers count their environment steps in a shared counter and stop when it
    reaches ``total_timesteps``. The main process only watches: it reads the worker messages (episode statistics,
    losses, errors) into the logger and advances ``num_timesteps`` to the counter, calling the callbacks once per
    environment step, so ``EvalCallback`` and ``CheckpointCallback`` run in the main process on the shared policy.
    A failed worker makes ``learn()`` raise ``A3CWorkerError`` with its traceback, and so does a worker that ends
    before the budget is spent, whatever its exit status (unless training was asked to stop); every worker is
    stopped when ``learn()`` returns or raises (Ctrl-C included), and stops by itself within a fraction of a second
    when the main process dies.

    The environment given is only used for its spaces: workers build their own copies in their processes, from
    the env factory given (a callable returning a ``gym.Env``) or else from the first environment of the ``VecEnv``
    (rebuilt from its ``EnvSpec``, or pickled with cloudpickle when it has none); see :mod:`sb3_course.a3c.envs`.

    Differences from the course notes:

    - Environment rewards by default; the notes' shaping (+1 per step, -10 on failure) is the optional wrapper
      :class:`sb3_course.common.wrappers.CourseA3CReward`. Workers read observations from ``reset()``/``step()``
      (the notes read ``env.env.state``) and render nothing.
    - Log-probabilities and values of a rollout are recomputed in one batch at the update (the notes keep the
      graph of every step, built while other workers were changing the shared weights).
    - The step counter is shared and locked (the notes count episodes with a racy ``counter.value + 1``), so
      ``total_timesteps`` is exact.
    - Time-limit truncations and ``n_steps`` rollouts bootstrap from ``V``; terminations do not. The notes'
      return normalisation (``G / ||G||``) is ``normalize_returns``; optional entropy bonus and gradient clipping.
    - A2C's arguments keep their meaning (``gae_lambda``, ``normalize_advantage``, ``use_rms_prop``: each worker's
      RMSprop, ``use_sde``).

    :param policy: The policy model to use (MlpPolicy: the course network; CnnPolicy, MultiInputPolicy: the same on
        SB3's NatureCNN / CombinedExtractor features; ActorCriticMlpPolicy: SB3's MLP)
    :param env: The environment (env id, env factory, ``gym.Env`` or ``VecEnv``); only its spaces are used here
    :param learning_rate: learning rate of each worker's optimizer, constant or a schedule of the remaining
        progress (course: 1e-4)
    :param n_steps: rollout length of a worker before each update; ``None``: whole episodes (course)
    :param gamma: discount factor (course: 0.95)
    :param gae_lambda: GAE's lambda; 1 (default): Monte-Carlo returns bootstrapped from ``V`` (course); below 1
        needs ``normalize_returns=False`` (GAE mixes the rewards with ``V``, which the normalised returns rescale)
    :param ent_coef: weight of the entropy bonus (0: none, as in the course)
    :param vf_coef: weight of the critic loss (course: 0.1)
    :param max_grad_norm: maximum gradient norm of each worker step (``inf``: no clipping, as in the course)
    :param rms_prop_eps: RMSprop's epsilon (with ``use_rms_prop``)
    :param use_rms_prop: each worker uses RMSprop (A2C's default) instead of Adam (course)
    :param use_sde: generalised state-dependent exploration (``Box`` actions); each worker samples its own noise
    :param sde_sample_freq: with gSDE, a new noise matrix every ``sde_sample_freq`` steps (-1: once per rollout)
    :param rollout_buffer_class: only ``None``: the workers keep their rollouts themselves
    :param rollout_buffer_kwargs: only ``None``, as ``rollout_buffer_class``
    :param normalize_advantage: standardise the advantages of each rollout (as A2C)
    :param stats_window_size: window size of the rollout statistics (episodes)
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments of the policy
    :param verbose: verbosity level: 0 none, 1 info, 2 debug
    :param seed: seed of the pseudo random generators (worker ``i`` uses ``seed + i``)
    :param device: only ``"cpu"`` (or ``"auto"``, the CPU): the shared memory of Hogwild training is CPU memory
    :param n_workers: number of worker processes (course: 7; at most 256)
    :param normalize_returns: divide the returns of each rollout by their L2 norm (course: on)
    :param start_method: ``"forkserver"`` (default where available) or ``"spawn"``
    :param _init_setup_model: whether to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": A3CCnnPolicy,
        "MultiInputPolicy": A3CMultiInputPolicy,
        "ActorCriticMlpPolicy": ActorCriticMlpPolicy,
    }
    # the action spaces the class takes (checked at construction, as SB3's supported_action_spaces argument)
    supported_action_spaces: ClassVar[tuple[type[spaces.Space], ...]] = (
        spaces.Box,
        spaces.Discrete,
        spaces.MultiDiscrete,
        spaces.MultiBinary,
    )
    # the class each worker process runs (a subclass may change its rollouts or loss reduction)
    worker_class: ClassVar[type[Worker]] = Worker
    policy: ActorCriticPolicy

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str | Callable[[], gym.Env] | None,
        learning_rate: float | Schedule = 1e-4,
        n_steps: int | None = None,
        gamma: float = 0.95,
        gae_lambda: float = 1.0,
        ent_coef: float = 0.0,
        vf_coef: float = 0.1,
        max_grad_norm: float = math.inf,
        rms_prop_eps: float = 1e-5,
        use_rms_prop: bool = False,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        rollout_buffer_class: type | None = None,
        rollout_buffer_kwargs: dict[str, Any] | None = None,
        normalize_advantage: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "cpu",
        n_workers: int = 7,
        normalize_returns: bool = True,
        start_method: str | None = None,
        _init_setup_model: bool = True,
    ) -> None:
        check_policy_class(policy, ActorCriticPolicy, "A3C")
        args = check_arguments(type(self), locals())
        if rollout_buffer_class is not None or rollout_buffer_kwargs:
            raise ValueError(
                "rollout_buffer_class / rollout_buffer_kwargs: A3C's workers keep their own rollouts (whole episodes "
                "or n_steps) and use no RolloutBuffer; remove these arguments"
            )
        if args["gae_lambda"] < 1.0 and args["normalize_returns"]:
            raise ValueError(
                "gae_lambda < 1 needs normalize_returns=False: GAE adds rewards to V, which the course's normalised "
                "returns (G / ||G||) put on another scale"
            )
        if start_method is None:
            start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        elif start_method not in START_METHODS:
            raise ValueError(f"start_method must be one of {START_METHODS} (fork is unsafe with torch threads)")
        check_device(device)
        # Workers build their own copies (sb3_course.a3c.envs): from the factory given or the wrapped env.
        self.env_fn: Callable[[], gym.Env] | None = None
        if callable(env) and not isinstance(env, gym.Env | VecEnv):
            self.env_fn = env
            env = env()
        env = maybe_make_env(env, verbose)  # type: ignore[arg-type]
        check_observation_space(getattr(env, "observation_space", None), "A3C")
        if args["use_sde"] and env is not None and not isinstance(env.action_space, spaces.Box):
            raise UnsupportedSpaceError(f"use_sde needs a Box action space, but the env has {env.action_space}")
        super().__init__(
            policy,
            env,  # type: ignore[arg-type]
            learning_rate=learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=args["stats_window_size"],
            tensorboard_log=tensorboard_log,
            verbose=args["verbose"],
            device="cpu",
            support_multi_env=True,
            seed=args["seed"],
            use_sde=args["use_sde"],
            sde_sample_freq=args["sde_sample_freq"],
            supported_action_spaces=self.supported_action_spaces,
        )
        if self.env is not None:
            self.env_fn = worker_env_factory(self.env, self.env_fn)
        if args["use_rms_prop"] and "optimizer_class" not in self.policy_kwargs:
            # As A2C (each worker builds its own optimizer from these)
            self.policy_kwargs["optimizer_class"] = th.optim.RMSprop
            self.policy_kwargs["optimizer_kwargs"] = dict(alpha=0.99, eps=args["rms_prop_eps"], weight_decay=0)
        self.n_workers: int = args["n_workers"]
        self.n_steps: int | None = args["n_steps"]
        self.gamma: float = args["gamma"]
        self.gae_lambda: float = args["gae_lambda"]
        self.normalize_returns: bool = args["normalize_returns"]
        self.normalize_advantage: bool = args["normalize_advantage"]
        self.vf_coef: float = args["vf_coef"]
        self.ent_coef: float = args["ent_coef"]
        self.max_grad_norm: float = args["max_grad_norm"]
        self.start_method: str = start_method
        self._losses: dict[str, list[float]] = defaultdict(list)
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, use_sde=self.use_sde, **self.policy_kwargs
        )

    def _excluded_save_params(self) -> list[str]:
        # The env factory may be a lambda of the caller; load(env=...) rebuilds it.
        return [*super()._excluded_save_params(), "env_fn", "_losses"]

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        assert self.env is not None
        self.env_fn = worker_env_factory(self.env)

    def _worker_config(self, total_timesteps: int) -> WorkerConfig:
        if self.env_fn is None:
            raise ValueError("A3C needs an environment to learn: pass env= or call set_env()")
        # Worker i of a learn() call starting at step t uses seed + t + i.
        seed = None if self.seed is None else self.seed + self.num_timesteps
        return WorkerConfig(
            env_fn=self.env_fn,
            lr_schedule=self.lr_schedule,
            gamma=self.gamma,
            n_steps=self.n_steps,
            vf_coef=self.vf_coef,
            ent_coef=self.ent_coef,
            max_grad_norm=self.max_grad_norm,
            normalize_returns=self.normalize_returns,
            total_timesteps=total_timesteps,
            seed=seed,
            gae_lambda=self.gae_lambda,
            normalize_advantage=self.normalize_advantage,
            use_sde=self.use_sde,
            sde_sample_freq=self.sde_sample_freq,
        )

    def _monitor_file(self) -> ResultsWriter | None:
        """
        The results writer of the ``Monitor`` around the env A3C was given, if it writes a file (rl-zoo3's
        layout). The workers step copies of the env, so their episodes are written there: the main env itself
        never steps, and rl-zoo3's plots read the Monitor files.
        """
        vec_env = None if self.env is None else self.env.unwrapped  # under SB3's VecTransposeImage, for images
        if not isinstance(vec_env, DummyVecEnv):
            return None
        env: Any = vec_env.envs[0]
        while env is not None and not isinstance(env, Monitor):
            env = getattr(env, "env", None)
        return None if env is None else env.results_writer

    def _record(self, messages: list[tuple], log_interval: int | None, monitor_file: ResultsWriter | None) -> None:
        """Episode statistics and losses from the workers into the info buffer, the Monitor file and the logger."""
        for message in messages:
            if message[0] != EPISODE:
                continue
            _, _, episode_info, losses = message
            if monitor_file is not None:
                monitor_file.write_row(episode_info)
            self._update_info_buffer([{"episode": episode_info}])
            self._episode_num += 1
            for name, value in losses.items():
                self._losses[name].append(value)
            if log_interval is not None and self._episode_num % log_interval == 0:
                self.dump_logs()

    def _advance(self, steps: int, total_timesteps: int, callback: BaseCallback) -> bool:
        """Move ``num_timesteps`` up to the workers' count, one callback call per step; ``False`` stops training."""
        while self.num_timesteps < min(steps, total_timesteps):
            self.num_timesteps += 1
            if not callback.on_step():
                return False
        self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
        return True

    def dump_logs(self) -> None:
        """Write the rollout statistics, the workers' mean losses since the last dump and timings."""
        record_rollout_and_time(self)
        for name, values in self._losses.items():
            self.logger.record(f"train/{name}", float(np.mean(values)))
        self._losses.clear()
        self.logger.record("train/n_workers", self.n_workers)
        self.logger.record("train/learning_rate", self.lr_schedule(self._current_progress_remaining))
        self.logger.dump(step=self.num_timesteps)

    def learn(
        self: SelfA3C,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 20,
        tb_log_name: str = "A3C",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfA3C:
        """
        Train with ``n_workers`` asynchronous workers until they have taken ``total_timesteps`` steps in all
        (none: returns at once, as SB3).

        :param total_timesteps: number of environment steps, summed over the workers
        :param callback: callback(s) called in the main process once per worker environment step
        :param log_interval: dump the logs every ``log_interval`` finished episodes (all workers)
        :param tb_log_name: the name of the run for TensorBoard logging
        :param reset_num_timesteps: whether to reset the step counter (used in logging)
        :param progress_bar: display a progress bar using tqdm and rich
        :return: the trained model
        """
        exit_if_importing_main_in_worker()
        check_int("total_timesteps", total_timesteps, -(2**63))
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        callback.on_training_start(locals(), globals())
        if self.num_timesteps < total_timesteps:
            self._learn_with_workers(total_timesteps, callback, log_interval)
        callback.on_training_end()
        return self

    def _learn_with_workers(self, total_timesteps: int, callback: BaseCallback, log_interval: int) -> None:
        self.policy.set_training_mode(False)
        if self.use_sde:
            # gSDE's noise matrix, sampled without a graph: the policy is pickled to the workers (each samples its own)
            with th.no_grad():
                self.policy.reset_noise()
        self.policy.share_memory()
        monitor_file = self._monitor_file()
        pool = WorkerPool(
            self._worker_config(total_timesteps),
            self.policy,
            self.n_workers,
            self.num_timesteps,
            self.start_method,
            self.worker_class,
        )
        try:
            pool.start()
            callback.on_rollout_start()
            while self._advance(pool.steps, total_timesteps, callback):
                # Read before polling: a worker that exits after the poll must be polled (its exit code, its
                # error) before the loop may end on it
                all_exited = pool.all_exited()
                self._record(pool.poll(timeout=0.02), log_interval, monitor_file)
                if self.num_timesteps >= total_timesteps or (all_exited and pool.steps == self.num_timesteps):
                    break
            callback.on_rollout_end()
        finally:
            remaining = pool.close()
        self._record(remaining, log_interval, monitor_file)
        pool.raise_errors(remaining)  # a worker that failed while the pool was stopping

"""Batch collection of REINFORCE: whole episodes, each environment its share of the batch."""

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import obs_as_tensor

from sb3_course.reinforce.episodes import Episode, env_observation, episode_shares


class _Step(NamedTuple):
    """One ``VecEnv`` step: the actions taken (unclipped) and the results."""

    actions: np.ndarray
    new_obs: Any
    rewards: np.ndarray
    dones: np.ndarray


class EpisodicAlgorithm(BaseAlgorithm):
    """
    ``BaseAlgorithm`` that collects on-policy batches of whole episodes (``collect_episodes``). The algorithm sets
    the attributes below and runs ``learn()`` (REINFORCE).
    """

    policy: ActorCriticPolicy
    n_episodes: int

    def _clip_actions(self, actions: np.ndarray) -> np.ndarray:
        if not isinstance(self.action_space, spaces.Box):
            return actions
        if self.policy.squash_output:
            return self.policy.unscale_action(actions)
        return np.clip(actions, self.action_space.low, self.action_space.high)

    def _start_rollout(self, callback: BaseCallback) -> None:
        assert self.env is not None
        self.policy.set_training_mode(False)
        if self.use_sde:
            self.policy.reset_noise(self.env.num_envs)
        callback.on_rollout_start()

    def _step(self, callback: BaseCallback, n_collected: int) -> _Step | None:
        """
        One ``VecEnv`` step with the current policy, counted and shown to the callback.

        :param callback: called after the step
        :param n_collected: steps already taken in this batch (for gSDE's ``sde_sample_freq``)
        :return: the step, or ``None`` if the callback stopped training
        """
        assert self.env is not None
        if self.use_sde and self.sde_sample_freq > 0 and n_collected % self.sde_sample_freq == 0:
            self.policy.reset_noise(self.env.num_envs)
        with th.no_grad():
            actions = self.policy(obs_as_tensor(self._last_obs, self.device))[0]  # type: ignore[arg-type]
        actions = actions.cpu().numpy()
        new_obs, rewards, dones, infos = self.env.step(self._clip_actions(actions))
        self.num_timesteps += self.n_envs
        callback.update_locals(locals())
        if not callback.on_step():
            return None
        self._update_info_buffer(infos, dones)
        return _Step(actions, new_obs, rewards, dones)

    def collect_episodes(self, callback: BaseCallback, total_timesteps: int) -> list[Episode] | None:
        """
        Run the current policy until every environment has finished its share of the batch, or until
        ``total_timesteps`` steps are done.

        :param callback: called after every ``VecEnv`` step
        :param total_timesteps: the step budget of ``learn()``
        :return: the batch's episodes, or ``None`` if the callback stopped training or the budget cut the batch
        """
        assert self.env is not None and self._last_episode_starts is not None
        if not self._last_episode_starts.all():
            # A batch starts at an episode start in every env: no episode is shared by two batches.
            self._last_obs = self.env.reset()  # type: ignore[assignment]
            self._last_episode_starts = np.ones(self.n_envs, dtype=bool)
        shares = episode_shares(self.n_episodes, self.n_envs)
        running = [Episode() for _ in range(self.n_envs)]
        finished: list[Episode] = []
        self._start_rollout(callback)
        n_collected = 0
        while shares.any():
            if self.num_timesteps >= total_timesteps:
                # The budget cut the batch; it is dropped (class docstring), so memory stays within the budget
                callback.on_rollout_end()
                return None
            step = self._step(callback, n_collected)
            if step is None:
                return None
            n_collected += 1
            for i in np.flatnonzero(shares):
                running[i].observations.append(env_observation(self._last_obs, i))  # type: ignore[arg-type]
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

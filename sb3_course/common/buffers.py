"""
Replay buffers for image observations: :class:`FrameStackReplayBuffer` keeps each frame of ``VecFrameStack``
observations once instead of ``2 * n_stack`` times per transition.
"""

import warnings
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_course.common.validation import UnsupportedSpaceError, check_int

CHANNELS_ORDERS = ("first", "last")


class FrameStackReplayBuffer(ReplayBuffer):
    """
    Replay buffer for frame-stacked observations (``VecFrameStack``) that stores each frame once.

    SB3's ``ReplayBuffer`` keeps ``obs`` and ``next_obs`` of every transition, ``2 * n_stack`` frames
    (``n_stack`` with ``optimize_memory_usage``). An episode of ``T`` steps has only ``T + 1`` distinct frames
    ``f_0 .. f_T`` (``f_T`` from ``infos["terminal_observation"]``): step ``t`` sees ``(f_{t-n+1}, .., f_t)``,
    zero-filled before ``f_0``, and its next observation ends with ``f_{t+1}``. So each env keeps a stream of
    frames, and a transition holds, for ``obs`` and for ``next_obs``, the stream index of the newest frame and
    how many real frames precede it in the stack (older ones are zeros).

    The layout follows the data, not an assumption about the wrappers: ``obs`` reuses the previous
    ``next_obs`` of its env only when the two arrays are equal, and ``next_obs`` costs one frame only when it
    is ``obs`` shifted by one frame; anything else (a reset, another wrapper) is stored as a new stack. So
    ``sample()`` returns exactly what SB3's ``ReplayBuffer`` returns for the same transitions and draws the same
    random numbers: with the same seed an algorithm trains identically with either buffer.

    Ring wrap: transitions live in SB3's ring (``buffer_size // n_envs`` slots per env, the oldest overwritten
    first); frames live in pages of about ``page_bytes``, allocated as a stream grows and freed once the oldest
    transition in the ring no longer reaches them. No frame a stored transition needs is ever overwritten, so
    no transition is lost for sampling; memory follows the data (one frame per transition plus one per episode)
    instead of being allocated up front.

    :param buffer_size: Max number of transitions in the buffer (over all envs, as SB3's)
    :param observation_space: Observation space: a ``Box`` of ``n_stack`` frames concatenated on one axis
    :param action_space: Action space
    :param device: PyTorch device of the sampled tensors
    :param n_envs: Number of parallel environments
    :param optimize_memory_usage: must be False: frames are already stored once
    :param handle_timeout_termination: Handle timeout termination (due to timelimit) separately and treat
        the task as infinite horizon task (SB3's meaning)
    :param n_stack: number of stacked frames, the ``n_stack`` of ``VecFrameStack`` (rl-zoo3's ``frame_stack``)
    :param channels_order: axis the frames are stacked on, ``"first"`` or ``"last"``; ``None`` detects it as
        ``VecFrameStack`` does (the channel axis of an image, else the last axis). SB3 moves the channels of
        images first (``VecTransposeImage``) before the buffer sees them.
    """

    # Frames are allocated and freed in pages of about this size (small against the buffer, large against a frame)
    page_bytes: ClassVar[int] = 4 * 2**20

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_stack: int | None = None,
        channels_order: str | None = None,
    ):
        if optimize_memory_usage:
            raise ValueError("FrameStackReplayBuffer already stores each frame once: leave optimize_memory_usage=False")
        if n_stack is None:
            raise ValueError(
                "FrameStackReplayBuffer needs n_stack, the number of frames VecFrameStack stacks, "
                "e.g. replay_buffer_kwargs=dict(n_stack=4)"
            )
        # Skip ReplayBuffer.__init__, which allocates the full observation arrays (as SB3's DictReplayBuffer does)
        super(ReplayBuffer, self).__init__(buffer_size, observation_space, action_space, device, n_envs=n_envs)
        self.n_stack = n_stack
        self.channels_first = self._check_stacking(observation_space, n_stack, channels_order)
        self.buffer_size = max(buffer_size // n_envs, 1)
        self.frame_shape = self._split(np.zeros(self.obs_shape, observation_space.dtype)).shape[1:]
        frame_bytes = int(np.prod(self.frame_shape)) * np.dtype(observation_space.dtype).itemsize
        # Pages of ~page_bytes, but no larger than 1/16 of the ring, so that small buffers stay small
        self.frames_per_page = max(1, min(self.page_bytes // frame_bytes, self.buffer_size // 16))
        self.optimize_memory_usage = False
        self.handle_timeout_termination = handle_timeout_termination
        shape = (self.buffer_size, self.n_envs)
        self.actions = np.zeros((*shape, self.action_dim), dtype=self._maybe_cast_dtype(action_space.dtype))
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.dones = np.zeros(shape, dtype=np.float32)
        self.timeouts = np.zeros(shape, dtype=np.float32)
        # Stream index of the newest frame of obs / next_obs, and how many real frames precede it in the stack
        self.obs_frame = np.zeros(shape, dtype=np.int64)
        self.obs_history = np.zeros(shape, dtype=np.int8)
        self.next_obs_frame = np.zeros(shape, dtype=np.int64)
        self.next_obs_history = np.zeros(shape, dtype=np.int8)
        self._reset_frames()

    @staticmethod
    def _check_stacking(observation_space: spaces.Space, n_stack: int, channels_order: str | None) -> bool:
        """Raise a ``ValueError`` naming the problem when the space cannot hold ``n_stack`` frames; return channels_first."""
        if not isinstance(observation_space, spaces.Box):
            raise UnsupportedSpaceError(
                f"FrameStackReplayBuffer stores Box observations of stacked frames, got {observation_space}; "
                "use SB3's ReplayBuffer (or DictReplayBuffer for Dict spaces)"
            )
        if not isinstance(n_stack, (int, np.integer)) or isinstance(n_stack, bool):
            raise ValueError(f"n_stack must be an int, got {n_stack!r}")
        check_int("n_stack", n_stack, 1, 127)  # obs_history is int8
        if channels_order is None:
            channels_first = is_image_space(observation_space) and is_image_space_channels_first(observation_space)
        elif channels_order in CHANNELS_ORDERS:
            channels_first = channels_order == "first"
        else:
            raise ValueError(f"channels_order must be one of {CHANNELS_ORDERS} or None, got {channels_order!r}")
        axis = 0 if channels_first else len(observation_space.shape) - 1
        if not observation_space.shape or observation_space.shape[axis] % n_stack != 0:
            order = "first" if channels_first else "last"
            raise ValueError(
                f"FrameStackReplayBuffer cannot split observations of shape {observation_space.shape} into "
                f"n_stack={n_stack} frames on the {order} axis: its size is not a multiple of {n_stack}. "
                "Pass the n_stack of VecFrameStack and, if the axis is wrong, channels_order='first' or 'last'."
            )
        return channels_first

    def _reset_frames(self) -> None:
        """Forget every frame: empty streams and no previous ``next_obs`` to continue from."""
        self.frames_written = np.zeros(self.n_envs, dtype=np.int64)
        self._pages: list[dict[int, np.ndarray]] = [{} for _ in range(self.n_envs)]
        self._first_page = np.zeros(self.n_envs, dtype=np.int64)
        self._last_next_obs = np.zeros((self.n_envs, *self.obs_shape), dtype=self.observation_space.dtype)
        self._has_last_next_obs = np.zeros(self.n_envs, dtype=bool)
        self._transitions_added = 0
        self._warned = False

    def reset(self) -> None:
        super().reset()
        self._reset_frames()

    @property
    def nbytes(self) -> int:
        """Bytes held by the frames and the per-transition arrays (numpy's ``nbytes``; Python objects not counted)."""
        frames = sum(page.nbytes for pages in self._pages for page in pages.values())
        arrays = (self.actions, self.rewards, self.dones, self.timeouts)
        pointers = (self.obs_frame, self.obs_history, self.next_obs_frame, self.next_obs_history)
        return frames + sum(array.nbytes for array in (*arrays, *pointers))

    def _split(self, stacked: np.ndarray) -> np.ndarray:
        """One stacked observation -> its ``n_stack`` frames, oldest first (a view)."""
        if self.channels_first:
            return stacked.reshape(self.n_stack, -1, *stacked.shape[1:])
        frames = stacked.reshape(*stacked.shape[:-1], self.n_stack, -1)
        return np.moveaxis(frames, -2, 0)

    def _join(self, frames: np.ndarray) -> np.ndarray:
        """A batch of frames ``(batch, n_stack, *frame_shape)`` -> stacked observations ``(batch, *obs_shape)``."""
        if not self.channels_first:
            frames = np.moveaxis(frames, 1, -2)
        return frames.reshape(len(frames), *self.obs_shape)

    def _append(self, env_idx: int, frames: np.ndarray) -> None:
        """Write ``frames`` at the end of the stream of env ``env_idx``, allocating pages as needed."""
        pages = self._pages[env_idx]
        for frame in frames:
            page, offset = divmod(int(self.frames_written[env_idx]), self.frames_per_page)
            if page not in pages:
                pages[page] = np.empty((self.frames_per_page, *self.frame_shape), dtype=self.observation_space.dtype)
            pages[page][offset] = frame
            self.frames_written[env_idx] += 1

    def _append_stack(self, env_idx: int, stacked: np.ndarray) -> tuple[int, int]:
        """
        Store a stacked observation that continues nothing: its frames after the leading all-zero ones
        (``VecFrameStack``'s fill before the episode's first frame; the newest frame is always kept).

        :return: stream index of the newest frame, number of real frames before it
        """
        frames = self._split(stacked)
        nonzero = frames[:-1].any(axis=tuple(range(1, frames.ndim)))
        zeros = int(np.argmax(nonzero)) if nonzero.any() else self.n_stack - 1
        self._append(env_idx, frames[zeros:])
        return int(self.frames_written[env_idx]) - 1, self.n_stack - 1 - zeros

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        obs = np.asarray(obs).reshape(self.n_envs, *self.obs_shape)
        next_obs = np.asarray(next_obs).reshape(self.n_envs, *self.obs_shape)
        previous = (self.pos - 1) % self.buffer_size
        for env_idx in range(self.n_envs):
            if self._has_last_next_obs[env_idx] and np.array_equal(obs[env_idx], self._last_next_obs[env_idx]):
                frame, history = int(self.next_obs_frame[previous, env_idx]), int(self.next_obs_history[previous, env_idx])
            else:
                frame, history = self._append_stack(env_idx, obs[env_idx])
            self.obs_frame[self.pos, env_idx], self.obs_history[self.pos, env_idx] = frame, history
            next_frames = self._split(next_obs[env_idx])
            # frame is the newest of the stream here, so next_obs's newest frame lands at frame + 1
            if np.array_equal(next_frames[:-1], self._split(obs[env_idx])[1:]):
                self._append(env_idx, next_frames[-1:])
                frame, history = frame + 1, min(history + 1, self.n_stack - 1)
            else:
                frame, history = self._append_stack(env_idx, next_obs[env_idx])
            self.next_obs_frame[self.pos, env_idx], self.next_obs_history[self.pos, env_idx] = frame, history
            self._last_next_obs[env_idx] = next_obs[env_idx]
        self._has_last_next_obs[:] = True

        self.actions[self.pos] = np.array(action).reshape((self.n_envs, self.action_dim))
        self.rewards[self.pos] = np.array(reward)
        self.dones[self.pos] = np.array(done)
        if self.handle_timeout_termination:
            self.timeouts[self.pos] = np.array([info.get("TimeLimit.truncated", False) for info in infos])

        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0
        if self.full:
            self._free_pages()
        self._transitions_added += self.n_envs
        self._warn_if_not_frame_stacked()

    def _free_pages(self) -> None:
        """Free the pages below the oldest frame the oldest transition (at ``pos`` once full) still reaches."""
        oldest_needed = self.obs_frame[self.pos] - self.obs_history[self.pos]
        for env_idx in range(self.n_envs):
            first_needed_page = oldest_needed[env_idx] // self.frames_per_page
            while self._first_page[env_idx] < first_needed_page:
                del self._pages[env_idx][int(self._first_page[env_idx])]
                self._first_page[env_idx] += 1

    def _warn_if_not_frame_stacked(self) -> None:
        """VecFrameStack output costs at most 2 frames per transition (an episode of one step); say when it is more."""
        frames = int(self.frames_written.sum())
        if not self._warned and frames > 2 * self._transitions_added + self.n_stack * self.n_envs:
            self._warned = True
            order = "first" if self.channels_first else "last"
            warnings.warn(
                f"FrameStackReplayBuffer stored {frames} frames for {self._transitions_added} transitions: the "
                f"observations are not VecFrameStack(n_stack={self.n_stack}) output stacked on the {order} axis. "
                "Sampling stays exact, but memory is not saved: check n_stack and channels_order."
            )

    def _stacks(self, newest: np.ndarray, history: np.ndarray, env_indices: np.ndarray) -> np.ndarray:
        """Rebuild stacked observations from their newest frame and real-frame count; older frames are zeros."""
        back = np.arange(self.n_stack - 1, -1, -1)  # frames back from the newest, oldest first
        frames = np.zeros((len(newest), self.n_stack, *self.frame_shape), dtype=self.observation_space.dtype)
        rows, cols = np.nonzero(back <= history[:, None])
        indices = newest[rows] - back[cols]
        for row, col, env_idx, index in zip(
            rows.tolist(), cols.tolist(), env_indices[rows].tolist(), indices.tolist(), strict=True
        ):
            page, offset = divmod(index, self.frames_per_page)
            frames[row, col] = self._pages[env_idx][page][offset]
        return self._join(frames)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        # Drawn first and alike, as in ReplayBuffer._get_samples, so a seed gives both buffers the same batch
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        obs = self._stacks(self.obs_frame[batch_inds, env_indices], self.obs_history[batch_inds, env_indices], env_indices)
        next_obs = self._stacks(
            self.next_obs_frame[batch_inds, env_indices], self.next_obs_history[batch_inds, env_indices], env_indices
        )
        data = (
            self._normalize_obs(obs, env),
            self.actions[batch_inds, env_indices, :],
            self._normalize_obs(next_obs, env),
            # Only dones that are not due to timeouts (timeouts stay 0 without handle_timeout_termination)
            (self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env),
        )
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))

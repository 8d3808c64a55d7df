"""
Videos of ``sb3-course``: GIF output for ``record_video --gif`` (SB3's ``VecVideoRecorder`` writing with Pillow, not
moviepy) and the replay video of ``push_to_hub``.
"""

import contextlib
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecVideoRecorder

INSTALL_VIDEO = 'pip install "sb3-course[video]"'


def has_moviepy() -> bool:
    try:
        import moviepy  # noqa: F401
    except ImportError:
        return False
    return True


def headless_rendering() -> None:
    """
    Render ``rgb_array`` frames without a display: pygame (classic-control, Box2D) drawing off screen, so that SDL
    does not probe a display server and print ``error: XDG_RUNTIME_DIR ...`` (a driver the user set is kept).
    """
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def video_problem(env_id: str, gif: bool) -> str | None:
    """
    What ``record_video`` lacks to record ``env_id`` (the writer: moviepy for an MP4, Pillow for a GIF; the env's
    ``rgb_array`` renderer, pygame for classic control), with the ``pip install`` that brings it, or ``None``.
    """
    if not gif and not has_moviepy():
        return f"writing the MP4 needs moviepy: {INSTALL_VIDEO}; --gif writes a GIF without it"
    try:
        import PIL  # noqa: F401
    except ImportError:
        if gif:
            return f"writing the GIF needs Pillow: {INSTALL_VIDEO}"
    headless_rendering()
    try:
        env = gym.make(env_id, render_mode="rgb_array")
        try:
            env.reset(seed=0)
            env.render()
        finally:
            env.close()
    except gym.error.DependencyNotInstalled as error:
        return f"cannot render {env_id} ({str(error).splitlines()[0]}): {INSTALL_VIDEO}"
    return None


@contextlib.contextmanager
def _moviepy_not_required() -> Iterator[None]:
    """``VecVideoRecorder.__init__`` only checks that moviepy imports; let it pass when moviepy is absent."""
    if has_moviepy():
        yield
        return
    previous = sys.modules.get("moviepy")
    sys.modules["moviepy"] = types.ModuleType("moviepy")
    try:
        yield
    finally:
        sys.modules.pop("moviepy")
        if previous is not None:
            sys.modules["moviepy"] = previous


class VecGifRecorder(VecVideoRecorder):
    """
    SB3's ``VecVideoRecorder`` that saves an animated GIF through Pillow (a matplotlib dependency), as the
    course's DQN notes save ``movie_DQN.gif``; same arguments, same triggers, ``.gif`` in place of ``.mp4``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with _moviepy_not_required():
            super().__init__(*args, **kwargs)

    def _start_video_recorder(self) -> None:
        super()._start_video_recorder()
        self.video_path = self.video_path.removesuffix(".mp4") + ".gif"

    def _stop_recording(self) -> None:
        from PIL import Image

        if self.recorded_frames:
            first, *rest = (Image.fromarray(frame) for frame in self.recorded_frames)
            duration = 1000 / cast(float, self.frames_per_sec)
            first.save(self.video_path, save_all=True, append_images=rest, duration=duration, loop=0)
        self.recorded_frames = []
        self.recording = False


def record_replay(model: BaseAlgorithm, eval_env: VecEnv, video_length: int, is_deterministic: bool, local_path: Path) -> Path:
    """
    The replay of huggingface_sb3's ``_generate_replay`` (what rl-zoo3's ``push_to_hub`` records): the first
    ``video_length`` steps from a reset, as ``replay.mp4`` (H.264, moviepy's default for MP4) or, where moviepy is
    absent, ``replay.gif``. huggingface_sb3 re-encodes its MP4 with an ``ffmpeg`` binary on PATH and, without one,
    uploads no video; moviepy writes H.264 itself through imageio-ffmpeg's binary.

    :param model: the agent
    :param eval_env: its environment (``render_mode="rgb_array"``); closed at the end, as huggingface_sb3 does
    :param video_length: steps to record
    :param is_deterministic: whether the agent acts deterministically
    :param local_path: the Hub repository folder
    :return: the path of the video
    """
    headless_rendering()
    recorder, suffix = (VecVideoRecorder, ".mp4") if has_moviepy() else (VecGifRecorder, ".gif")
    with tempfile.TemporaryDirectory() as folder:
        env = recorder(eval_env, folder, record_video_trigger=lambda step: step == 0, video_length=video_length)
        obs = env.reset()
        for _ in range(video_length):
            action, _ = model.predict(obs, deterministic=is_deterministic)  # type: ignore[arg-type]
            obs, _, _, _ = env.step(action)
        env.close()
        return Path(shutil.copy(env.video_path, local_path / f"replay{suffix}"))

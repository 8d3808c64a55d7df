"""GIF output for ``sb3-course record_video --gif``: SB3's ``VecVideoRecorder`` writing with Pillow, not moviepy."""

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any, cast

from stable_baselines3.common.vec_env import VecVideoRecorder


def has_moviepy() -> bool:
    try:
        import moviepy  # noqa: F401
    except ImportError:
        return False
    return True


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

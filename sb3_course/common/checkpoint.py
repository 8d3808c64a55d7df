"""
Model files that lose nothing: atomic ``save`` / ``save_replay_buffer`` (``sb3_course.common.files.atomic_path``:
a temporary file renamed over the target, never written through a link planted there),
``load`` that names a truncated or corrupted file, and a callback that checkpoints model and replay buffer when
training is interrupted by SIGINT or SIGTERM.
"""

import io
import pathlib
import pickle
import signal
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import Any, TypeVar

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import GymEnv

from sb3_course.common.files import atomic_path

SelfBaseAlgorithm = TypeVar("SelfBaseAlgorithm", bound=BaseAlgorithm)
SelfSafeFiles = TypeVar("SelfSafeFiles", bound="SafeFilesMixin")

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Zip member naming the class that saved the model (SB3 stores only the policy class); SB3 ignores it
ALGORITHM_MEMBER = "sb3_course_algorithm.txt"


def with_suffix(path: str | pathlib.Path, suffix: str) -> pathlib.Path:
    """The file SB3's ``open_path`` writes for ``path``: ``.<suffix>`` is added when the name has no suffix."""
    path = pathlib.Path(path)
    return path if path.suffix else pathlib.Path(f"{path}.{suffix}")


def check_model_file(path: str | pathlib.Path | io.BufferedIOBase, cls: type | None) -> None:
    """
    Raise a ``ValueError`` naming the file when it is not a complete SB3 model zip (truncated, corrupted, or no
    model at all; SB3's own ``load`` fails on some of these with ``AssertionError: No data found``), or when a
    course algorithm other than ``cls`` (or its parents) saved it. A missing file passes (``load`` raises
    ``FileNotFoundError``); file objects are not checked.

    :param path: the path given to ``load``
    :param cls: the class whose ``load`` was called (``None``: check that the file is whole, not who saved it)
    """
    if isinstance(path, io.BufferedIOBase):
        return
    path = pathlib.Path(path)
    if not path.exists() and not path.suffix:
        path = with_suffix(path, "zip")
    if not path.is_file():
        return
    try:
        with zipfile.ZipFile(path) as archive:
            missing = {"data", "policy.pth"} - set(archive.namelist())
            damaged = archive.testzip()  # CRC of every member
            saved_by = archive.read(ALGORITHM_MEMBER).decode() if ALGORITHM_MEMBER in archive.namelist() else None
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise ValueError(f"{path} is not a complete model file ({error}): truncated or corrupted?") from error
    if missing or damaged is not None:
        reason = f"missing {sorted(missing)}" if missing else f"member {damaged} is corrupted"
        raise ValueError(f"{path} is not a complete model file ({reason}): truncated or corrupted?")
    if cls is not None and saved_by is not None and _another_algorithm(saved_by, cls):
        raise ValueError(f"{path} holds a {saved_by} model: load it with {saved_by}.load, not {cls.__name__}.load")


def _another_algorithm(saved_by: str, cls: type) -> bool:
    """
    Whether the class named ``saved_by`` is a course algorithm known here that is neither a parent nor a subclass of
    ``cls``. A file saved by a subclass loads with its parent's ``load``, as in SB3; a name not known here (a class
    not imported, or of another version) is left to the saved policy class's check.
    """
    named = [known for known in _subclasses(SafeFilesMixin) if known.__name__ == saved_by]
    return bool(named) and not any(issubclass(known, cls) or issubclass(cls, known) for known in named)


def _subclasses(base: type) -> Iterator[type]:
    subclass: type
    for subclass in base.__subclasses__():
        yield subclass
        yield from _subclasses(subclass)


class SafeFilesMixin:
    """
    ``save()`` that never leaves a truncated zip (a crash or a full disk keeps the previous file intact) and
    ``load()`` that names a damaged file. Put it before the SB3 base class.
    """

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        if isinstance(path, io.BufferedIOBase):
            super().save(path, exclude, include)  # type: ignore[misc]
            return
        with atomic_path(with_suffix(path, "zip")) as tmp:
            super().save(tmp, exclude, include)  # type: ignore[misc]
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(ALGORITHM_MEMBER, type(self).__name__)

    @classmethod
    def load(
        cls: type[SelfSafeFiles], path: str | pathlib.Path | io.BufferedIOBase, *args: Any, **kwargs: Any
    ) -> SelfSafeFiles:
        check_model_file(path, cls)
        return super().load(path, *args, **kwargs)  # type: ignore[misc]


class OffPolicySafeFilesMixin(SafeFilesMixin):
    """:class:`SafeFilesMixin` plus an atomic ``save_replay_buffer()`` and a ``load_replay_buffer()`` that names a
    truncated or corrupted file."""

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase, truncate_last_traj: bool = True) -> None:
        try:
            super().load_replay_buffer(path, truncate_last_traj)  # type: ignore[misc]
        except (EOFError, pickle.UnpicklingError) as error:
            # SB3 leaves the replay buffer as it was; pickle's message names no file
            raise ValueError(
                f"{path} is not a complete replay buffer file ({type(error).__name__}: {error}): truncated or corrupted?"
            ) from error

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        if isinstance(path, io.BufferedIOBase):
            super().save_replay_buffer(path)  # type: ignore[misc]
            return
        with atomic_path(with_suffix(path, "pkl")) as tmp:
            super().save_replay_buffer(tmp)  # type: ignore[misc]


class CheckpointOnSignal(BaseCallback):
    """
    Stop training cleanly on SIGINT / SIGTERM and save the model (and replay buffer of an off-policy algorithm)
    to ``<save_path>/<name_prefix>.zip`` (``_replay_buffer.pkl``), atomically. Resume with
    :func:`load_checkpoint` and ``learn(total_timesteps - model.num_timesteps, reset_num_timesteps=False)``.

    The handlers are installed in ``on_training_start`` (main thread only) and the previous ones restored when
    training ends; use it as a context manager (``with CheckpointOnSignal(path) as on_signal:
    model.learn(..., callback=on_signal)``) to restore them also when ``learn()`` raises. The signal only sets a
    flag; the checkpoint is written at the next environment step, so the model is never saved half-updated. A
    second signal before that step runs the previous handler (a second Ctrl-C still raises
    ``KeyboardInterrupt``). After ``learn()`` returns, ``received`` holds the signal number (or ``None``), e.g.
    to ``sys.exit(128 + received)``.

    :param save_path: folder of the checkpoint
    :param name_prefix: file name of the checkpoint, without suffix
    :param save_replay_buffer: also save the replay buffer of an off-policy algorithm
    :param verbose: 1: print where the checkpoint went
    """

    def __init__(
        self,
        save_path: str | pathlib.Path,
        name_prefix: str = "interrupted",
        save_replay_buffer: bool = True,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.save_path = pathlib.Path(save_path)
        self.name_prefix = name_prefix
        self.save_replay_buffer = save_replay_buffer
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def model_path(self) -> pathlib.Path:
        return self.save_path / f"{self.name_prefix}.zip"

    @property
    def replay_buffer_path(self) -> pathlib.Path:
        return self.save_path / f"{self.name_prefix}_replay_buffer.pkl"

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            self._restore()
            signal.raise_signal(signum)
            return
        self.received = signum

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> "CheckpointOnSignal":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()

    def _on_training_start(self) -> None:
        self._restore()  # handlers left by a learn() that raised
        self.received = None
        try:
            self._previous = {signum: signal.signal(signum, self._handle) for signum in INTERRUPT_SIGNALS}
        except ValueError:
            warnings.warn("CheckpointOnSignal: not in the main thread, no signal handler installed", stacklevel=2)

    def _on_step(self) -> bool:
        if self.received is None:
            return True
        self.model.save(self.model_path)
        if self.save_replay_buffer and isinstance(self.model, OffPolicyAlgorithm) and self.model.replay_buffer is not None:
            self.model.save_replay_buffer(self.replay_buffer_path)
        if self.verbose >= 1:
            print(f"Signal {signal.Signals(self.received).name}: checkpoint at step {self.num_timesteps} in {self.model_path}")
        return False

    def _on_training_end(self) -> None:
        self._restore()


def load_checkpoint(
    cls: type[SelfBaseAlgorithm],
    save_path: str | pathlib.Path,
    env: GymEnv | None = None,
    name_prefix: str = "interrupted",
    **kwargs: Any,
) -> SelfBaseAlgorithm:
    """
    Load a checkpoint of :class:`CheckpointOnSignal` with its replay buffer, if one was saved.

    :param cls: the algorithm class
    :param save_path: folder of the checkpoint
    :param env: environment to continue training on
    :param name_prefix: file name of the checkpoint, without suffix
    :param kwargs: passed to ``cls.load``
    :return: the model, with ``num_timesteps`` where training stopped
    """
    save_path = pathlib.Path(save_path)
    model = cls.load(save_path / f"{name_prefix}.zip", env=env, **kwargs)
    buffer_path = save_path / f"{name_prefix}_replay_buffer.pkl"
    if isinstance(model, OffPolicyAlgorithm) and buffer_path.exists():
        model.load_replay_buffer(buffer_path)
    return model

"""
Checks of what ``enjoy``, ``record_video`` and ``train`` read from a user's files and flags before rl-zoo3 does: the
model to play (or to continue training from) and the env keyword arguments, each mistake one :class:`RecipeError` line.
"""

import argparse
import contextlib
import io
from typing import Any

import gymnasium as gym

from sb3_course.common.checkpoint import check_model_file
from sb3_course.zoo import COURSE_ALGOS
from sb3_course.zoo.values import RecipeError


def check_whole_model(path: str, algo: str, where: str) -> None:
    """The model file ``path`` is a whole zip that ``algo``'s class may load (saved by it, for a course key)."""
    try:
        check_model_file(path, COURSE_ALGOS.get(algo))
    except ValueError as error:
        raise RecipeError(f"{where}: {error}") from error


def check_played_model(argv: list[str], algo: str, env_id: str) -> None:
    """
    The model ``enjoy`` / ``record_video`` will load (found as rl-zoo3 finds it, ``get_model_path``): one that exists,
    a whole model file of the algorithm, a downloaded one included. A folder named ``rl-trained-agents`` is left to
    rl-zoo3, which downloads a missing model from the Hub.
    """
    from huggingface_sb3 import EnvironmentName
    from rl_zoo3.utils import get_model_path

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-f", "--folder", default="rl-trained-agents")
    parser.add_argument("--exp-id", type=int, default=0)
    parser.add_argument("--load-best", action="store_true")
    parser.add_argument("--load-checkpoint", default=None)
    parser.add_argument("--load-last-checkpoint", action="store_true")
    known, _ = parser.parse_known_args(argv)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its "Loading latest experiment" line, printed again later
            _, model_path, _ = get_model_path(
                known.exp_id, known.folder, algo, EnvironmentName(env_id), known.load_best, known.load_checkpoint,
                known.load_last_checkpoint,
            )  # fmt: skip
    except (AssertionError, ValueError) as error:
        if "rl-trained-agents" in known.folder:
            return
        raise RecipeError(f"{error} (train with: sb3-course train --algo {algo} --env {env_id} -f {known.folder})") from error
    except OSError:
        return
    check_whole_model(model_path, algo, "model")


def check_env_kwargs(env_id: str, kwargs: dict[str, Any], flag: str) -> None:
    """``env_id`` can be made with the keyword arguments of ``flag`` (rl-zoo3 fails on them after making its folders)."""
    try:
        gym.make(env_id, **kwargs).close()
    except Exception as error:
        raise RecipeError(f"{flag}: {env_id} cannot be made with {kwargs} ({type(error).__name__}: {error})") from error

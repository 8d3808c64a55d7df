"""Checks of an ``sb3-course`` command line before rl-zoo3 runs it: one clear line per mistake, not a traceback."""

import argparse
import difflib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import gymnasium as gym
import yaml

from sb3_course.common.validation import MAX_SEED
from sb3_course.zoo import COURSE_ALGOS, default_config, register
from sb3_course.zoo.played import check_env_kwargs, check_played_model, check_whole_model
from sb3_course.zoo.values import RecipeError, check_block, parse_params

# Recipe keys that rl-zoo3 consumes itself instead of passing them to the constructor
ZOO_KEYS = frozenset(
    {
        "n_timesteps",
        "policy",
        "n_envs",
        "normalize",
        "env_wrapper",
        "vec_env_wrapper",
        "frame_stack",
        "callback",
        "noise_type",
        "noise_std",
        "env_kwargs",
        "monitor_kwargs",
    }
)


@dataclass(frozen=True)
class IntFlag:
    """An integer flag of an rl-zoo3 script with the values that script handles (``valid``) and what to give."""

    names: tuple[str, ...]
    valid: Callable[[int], bool]
    expected: str


# rl-zoo3's train falls back to the recipe's budget for -n <= 0 and skips evaluations / checkpoints for a frequency
# <= 0 silently; the others fail inside rl-zoo3, SB3 or optuna, after the log folder exists
TRAIN_FLAGS = (
    IntFlag(("-n", "--n-timesteps"), lambda n: n >= 1, "a positive number of steps (leave -n out for the recipe's)"),
    IntFlag(("--eval-freq",), lambda n: n != 0, "steps between evaluations, or -1 for none"),
    IntFlag(("--eval-episodes",), lambda n: n >= 1, "a positive number of episodes"),
    IntFlag(("--n-eval-envs",), lambda n: n >= 1, "a positive number of envs"),
    IntFlag(("--save-freq",), lambda n: n != 0, "steps between checkpoints, or -1 for none"),
    IntFlag(("--seed",), lambda n: n <= MAX_SEED, "an integer below 2**32 (negative: a random seed)"),
    IntFlag(("--n-trials",), lambda n: n >= 1, "a positive number of trials"),
    IntFlag(("--max-total-trials",), lambda n: n >= 1, "a positive number of trials"),
    IntFlag(("--n-jobs",), lambda n: n != 0, "a positive number of parallel jobs (-1: one per CPU)"),
    IntFlag(("--n-evaluations",), lambda n: n >= 1, "a positive number of evaluations"),
    IntFlag(("--n-startup-trials",), lambda n: n >= 0, "a number of trials >= 0"),
    IntFlag(("--num-threads",), lambda n: True, "an integer (-1: torch's default)"),
    IntFlag(("--log-interval",), lambda n: True, "an integer (-1: the algorithm's default)"),
)
# enjoy / record_video: -n is the number of steps to play
PLAY_FLAGS = (
    IntFlag(("-n", "--n-timesteps"), lambda n: n >= 1, "a positive number of steps"),
    IntFlag(("--n-envs",), lambda n: n >= 1, "a positive number of envs"),
    IntFlag(("--seed",), lambda n: 0 <= n <= MAX_SEED, "an integer in [0, 2**32)"),
    IntFlag(("--exp-id",), lambda n: n >= -1, "a run id (0: the latest, -1: no run folder)"),
)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``prog: error: message``) without the usage text."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def check_int_flags(given: dict[str, str | None], flags: tuple[IntFlag, ...]) -> None:
    for flag in flags:
        text = given[flag.names[-1]]
        if text is None:
            continue
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not flag.valid(value):
            raise RecipeError(f"{'/'.join(flag.names)} {text}: expected {flag.expected}")


def check_config_file(config: str) -> None:
    """An rl-zoo3 ``-conf``: a YAML file (checked when read), a ``.py`` file, or an importable module."""
    if config.endswith((".yml", ".yaml")):
        return
    if config.endswith(".py"):
        if not Path(config).is_file():
            raise RecipeError(f"-conf/--conf-file {config}: no such file")
        return
    try:
        found = importlib.util.find_spec(config) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise RecipeError(
            f"-conf/--conf-file {config}: not a .yml/.yaml/.py file nor an importable Python module (rl-zoo3 imports"
            " other names as modules)"
        )


def check_trained_agent(path: str, algo: str) -> None:
    if path and not (path.endswith(".zip") and Path(path).is_file()):
        raise RecipeError(f"-i/--trained-agent {path}: expected an existing .zip model file")
    if path:
        check_whole_model(path, algo, "-i/--trained-agent")


def constructor_arguments(key: str) -> set[str]:
    """The keyword arguments of the course algorithm ``key`` that a recipe may set."""
    params = inspect.signature(COURSE_ALGOS[key].__init__).parameters
    named = {name for name, param in params.items() if param.kind is not param.VAR_KEYWORD}
    # rl-zoo3 passes env, seed, verbose, device and tensorboard_log itself
    return named - {"self", "env", "_init_setup_model", "seed", "verbose", "device", "tensorboard_log"}


def check_algo(algo: str, known: list[str]) -> None:
    if algo not in known:
        # rl-zoo3 keys are lower case with "_" (course_dqn), so match "courseDQN" or "course-dqn" on that form
        close = difflib.get_close_matches(algo.lower().replace("-", "_"), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RecipeError(f"unknown algorithm {algo!r}; expected one of: {', '.join(known)}{hint}")


def check_env(env_id: str, gym_packages: list[str]) -> None:
    # The envs rl-zoo3's scripts see: its optional env packages and the user's --gym-packages
    importlib.import_module("rl_zoo3.import_envs")
    for package in gym_packages:
        importlib.import_module(package)
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RecipeError(f"unknown env id {env_id!r} (not in gymnasium's registry){hint}")


def read_recipe_file(config: Path) -> dict[str, Any]:
    """The recipe file as a dict of blocks, or a :class:`RecipeError` naming the file and the YAML problem."""
    try:
        with open(config) as file:
            recipes = yaml.safe_load(file)
    except OSError as error:
        raise RecipeError(f"cannot read recipe file {config}: {error.strerror}") from error
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RecipeError(f"malformed YAML in {config}{line}: {problem}") from error
    if not isinstance(recipes, dict) or not all(isinstance(block, dict) for block in recipes.values()):
        raise RecipeError(f"{config}: expected a mapping of env id (or 'default') -> mapping of hyperparameters")
    return recipes


def check_keys(key: str, keys: list[str], where: str) -> None:
    allowed = constructor_arguments(key) | ZOO_KEYS
    for name in keys:
        if name not in allowed:
            raise RecipeError(
                f"{where}: {name!r} is not a constructor argument of {COURSE_ALGOS[key].__name__} nor an rl-zoo3 key;"
                f" expected one of: {', '.join(sorted(allowed))}"
            )


def check_recipe(
    key: str, env_id: str, config: Path, params: dict[str, Any] | None = None, budget_given: bool = False
) -> None:
    """
    Check the block rl-zoo3 will use for ``env_id`` in ``config`` with the ``-params`` applied, for course key ``key``.

    :param key: course algorithm key
    :param env_id: the env id
    :param config: the YAML recipe file
    :param params: the ``-params`` values (none: the block alone)
    :param budget_given: whether ``-n`` sets the budget (then ``n_timesteps`` need not be a valid budget)
    """
    params = params or {}
    recipes = read_recipe_file(config)
    block = env_id if env_id in recipes else "default"
    if block not in recipes:
        raise RecipeError(f"{config}: no block for {env_id!r} and no 'default' block; blocks: {', '.join(recipes)}")
    where = f"{config} [{block}]"
    check_keys(key, list(recipes[block]), where)
    check_keys(key, list(params), "-params")
    check_block(key, env_id, recipes[block], where, params, budget_given)


def check_command(argv: list[str], known_algos: list[str], recipe: bool, play: bool = False) -> None:
    """
    Check the flags, ``--algo``, ``--env`` and, for a course key when ``recipe`` is set (``train``), its recipe and
    ``-params``, before rl-zoo3 runs: each mistake rl-zoo3 would turn into a traceback, or run silently in another
    way than asked, is a :class:`RecipeError` with one line naming it.

    :param argv: the rl-zoo3 arguments
    :param known_algos: the keys of rl-zoo3's ``ALGOS`` (course keys registered)
    :param recipe: whether the command is ``train`` (else ``enjoy`` / ``record_video``)
    :param play: whether the command loads a trained model to play it (``enjoy`` / ``record_video``)
    """
    flags = TRAIN_FLAGS if recipe else PLAY_FLAGS
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("-conf", "--conf-file", default=None)
    parser.add_argument("-params", "--hyperparams", nargs="+", default=[])
    parser.add_argument("--gym-packages", nargs="+", default=[])
    parser.add_argument("-i", "--trained-agent", default="")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--env-kwargs", nargs="+", default=[])
    parser.add_argument("--eval-env-kwargs", nargs="+", default=[])
    parser.add_argument("-f", "--log-folder", "--folder", dest="folder", default="logs")
    parser.add_argument("-tb", "--tensorboard-log", default="")
    for flag in flags:
        parser.add_argument(*flag.names, dest=flag.names[-1], default=None)
    known, _ = parser.parse_known_args(argv)
    check_int_flags(vars(known), flags)
    check_device(known.device)
    check_algo(known.algo, known_algos)
    if known.algo == "a3c":
        check_a3c_device(known.device)
    check_env(known.env, known.gym_packages)
    for kwargs_flag, items in (("--env-kwargs", known.env_kwargs), ("--eval-env-kwargs", known.eval_env_kwargs)):
        if items:
            check_env_kwargs(known.env, parse_params(items, kwargs_flag), kwargs_flag)
    if play:
        check_played_model(argv, known.algo, known.env)
    if not recipe:
        return
    # The folders rl-zoo3's train creates (it fails with NotADirectoryError after making part of them)
    check_output_folder(known.folder, "-f/--log-folder")
    if known.tensorboard_log:
        check_output_folder(known.tensorboard_log, "-tb/--tensorboard-log")
    check_trained_agent(known.trained_agent, known.algo)
    params = parse_params(known.hyperparams)
    if known.conf_file is not None:
        check_config_file(known.conf_file)
    if known.algo in COURSE_ALGOS:
        config = Path(known.conf_file) if known.conf_file else default_config(known.algo)
        assert config is not None
        if config.suffix in (".yml", ".yaml"):
            check_recipe(known.algo, known.env, config, params, budget_given=vars(known)["--n-timesteps"] is not None)


def check_a3c_device(device: str) -> None:
    """A3C's own device rule (:func:`sb3_course.a3c.pool.check_device`) as a :class:`RecipeError`."""
    from sb3_course.a3c.pool import check_device as a3c_device

    try:
        a3c_device(device)
    except ValueError as error:
        raise RecipeError(f"--device {device}: {error}") from None


def check_device(device: str) -> None:
    import torch as th

    if device == "auto":
        return
    try:
        th.device(device)
    except RuntimeError as error:
        raise RecipeError(f"--device {device}: {error}") from error


def check_zoo_run(algo: str, env_id: str, own_recipe: bool) -> None:
    """
    An rl-zoo3 key on ``env_id``: its class takes the env's action space and, with ``own_recipe``, rl-zoo3's recipe
    file (``hyperparams/<algo>.yml``) has a block for the env.
    """
    import rl_zoo3
    from rl_zoo3.exp_manager import ExperimentManager
    from rl_zoo3.utils import ALGOS

    config = Path(rl_zoo3.__file__).parent / "hyperparams" / f"{algo}.yml"
    recipes = read_recipe_file(config) if own_recipe else {"default": {}}
    atari = "atari" in recipes and ExperimentManager.is_atari(env_id)
    if env_id not in recipes and "default" not in recipes and not atari:
        raise RecipeError(f"rl-zoo3 has no {algo} recipe for {env_id} ({config}); use --mode matched or another env")
    env = gym.make(env_id)
    try:
        # SB3 checks the action space in BaseAlgorithm.__init__ (AssertionError), before any network is built
        algorithm: Any = ALGOS[algo]  # every SB3 / sb3-contrib class takes _init_setup_model, BaseAlgorithm does not
        algorithm("MlpPolicy", env, device="cpu", _init_setup_model=False)
    except AssertionError as error:
        raise RecipeError(f"{algo} on {env_id}: {error}") from error
    finally:
        env.close()


def check_job(algo: str, env_id: str, block: dict[str, Any] | None, where: str) -> None:
    """
    Check a run of the experiment runner (parity, verify) before any run starts: ``algo`` trained on ``env_id``
    with the recipe ``block`` (``None``: the algorithm's own recipe file), its budget set by ``-n``.

    :param algo: rl-zoo3 key (course keys registered)
    :param env_id: the env id
    :param block: the hyperparameters the run writes into its config file, or ``None``
    :param where: where ``block`` comes from, for the messages
    """
    from rl_zoo3.utils import ALGOS

    register()
    check_algo(algo, list(ALGOS))
    check_env(env_id, [])
    if algo not in COURSE_ALGOS:
        check_zoo_run(algo, env_id, own_recipe=block is None)
        return
    if block is None:
        config = default_config(algo)
        assert config is not None
        check_recipe(algo, env_id, config, {}, budget_given=True)
        return
    check_keys(algo, list(block), where)
    check_block(algo, env_id, {"n_timesteps": 1, **block}, where, {}, budget_given=True)


def check_output_folder(folder: str, flag: str) -> None:
    """A folder the command will create or write into: not a file, and writable (nothing is created here)."""
    path = Path(folder).absolute()
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if not existing.is_dir():
        raise RecipeError(f"{flag} {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RecipeError(f"{flag} {folder}: {existing} is not writable")

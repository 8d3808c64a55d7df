"""Checks of an ``sb3-course`` command line before rl-zoo3 runs it: one clear line per mistake, not a traceback."""

import argparse
import difflib
import importlib
import inspect
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml
from gymnasium import spaces

from sb3_course.zoo import COURSE_ALGOS, default_config

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

# Action spaces each course algorithm handles (the classes check this too, but only once rl-zoo3 builds them)
ACTION_SPACES: dict[str, tuple[type[spaces.Space], ...]] = {
    "course_dqn": (spaces.Discrete,),
    "reinforce": (spaces.Discrete, spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary),
    "a3c": (spaces.Discrete, spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary),
    "course_ddpg": (spaces.Box,),
    "course_sac": (spaces.Box,),
}


class RecipeError(ValueError):
    """A command line or recipe that cannot work; its message is the one line shown to the user."""


def constructor_arguments(key: str) -> set[str]:
    """The keyword arguments of the course algorithm ``key`` that a recipe may set."""
    params = inspect.signature(COURSE_ALGOS[key].__init__).parameters
    # rl-zoo3 passes env, seed, verbose, device and tensorboard_log itself
    return set(params) - {"self", "env", "_init_setup_model", "seed", "verbose", "device", "tensorboard_log"}


def check_algo(algo: str, known: list[str]) -> None:
    if algo not in known:
        raise RecipeError(f"unknown algorithm {algo!r}; expected one of: {', '.join(known)}")


def check_env(env_id: str, gym_packages: list[str]) -> None:
    # The envs rl-zoo3's scripts see: its optional env packages and the user's --gym-packages
    importlib.import_module("rl_zoo3.import_envs")
    for package in gym_packages:
        importlib.import_module(package)
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RecipeError(f"unknown env id {env_id!r} (not in gymnasium's registry){hint}")


def load_recipes(config: Path) -> dict[str, Any]:
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


def check_action_space(key: str, env_id: str, where: str) -> None:
    env = gym.make(env_id)
    action_space = env.action_space
    env.close()
    supported = ACTION_SPACES[key]
    if not isinstance(action_space, supported):
        names = ", ".join(space.__name__ for space in supported)
        raise RecipeError(
            f"{where}: {COURSE_ALGOS[key].__name__} cannot handle the {type(action_space).__name__} action space of"
            f" {env_id}; expected {names}"
        )


def check_recipe(key: str, env_id: str, config: Path, custom_keys: list[str]) -> None:
    """Check the block rl-zoo3 will use for ``env_id`` in ``config`` (plus ``-params`` keys) for course key ``key``."""
    recipes = load_recipes(config)
    block = env_id if env_id in recipes else "default"
    if block not in recipes:
        raise RecipeError(f"{config}: no block for {env_id!r} and no 'default' block; blocks: {', '.join(recipes)}")
    where = f"{config} [{block}]"
    check_keys(key, list(recipes[block]), where)
    check_keys(key, custom_keys, "-params")
    check_action_space(key, env_id, where)


def check_command(argv: list[str], known_algos: list[str], recipe: bool) -> None:
    """
    Check ``--algo``, ``--env`` and, for a course key when ``recipe`` is set, its recipe, before rl-zoo3 runs.

    :param argv: the rl-zoo3 arguments
    :param known_algos: the keys of rl-zoo3's ``ALGOS`` (course keys registered)
    :param recipe: whether the command reads a recipe (``train``)
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("-conf", "--conf-file", default=None)
    parser.add_argument("-params", "--hyperparams", nargs="+", default=[])
    parser.add_argument("--gym-packages", nargs="+", default=[])
    known, _ = parser.parse_known_args(argv)
    check_algo(known.algo, known_algos)
    check_env(known.env, known.gym_packages)
    if recipe and known.algo in COURSE_ALGOS:
        config = Path(known.conf_file) if known.conf_file else default_config(known.algo)
        assert config is not None
        if config.suffix in (".yml", ".yaml"):
            custom_keys = [item.split(":", 1)[0] for item in known.hyperparams]
            check_recipe(known.algo, known.env, config, custom_keys)

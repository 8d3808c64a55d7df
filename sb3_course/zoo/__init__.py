"""rl-zoo3 glue: the course algorithms as entries of rl-zoo3's ``ALGOS`` table and their YAML recipes."""

import copy
import inspect
import types
from pathlib import Path
from typing import Any

import yaml
from rl_zoo3 import exp_manager, hyperparams_opt, utils
from rl_zoo3.utils import ALGOS
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_course.common.buffers import FrameStackReplayBuffer
from sb3_course.registry import ALGORITHMS
from sb3_course.zoo.samplers import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

# rl-zoo3 key -> course algorithm (sb3_course.registry states them)
COURSE_ALGOS: dict[str, type[BaseAlgorithm]] = {key: algorithm.course_class for key, algorithm in ALGORITHMS.items()}

# rl-zoo3 key of the course algorithm -> rl-zoo3 key of its SB3 counterpart
SB3_COUNTERPARTS: dict[str, str] = {key: algorithm.sb3_key for key, algorithm in ALGORITHMS.items()}

# Course policies that SB3's own algorithms can train (rl-zoo3 key -> policy name -> class): a recipe for the SB3
# key may name them as ``policy``. The matched parity side uses them, so that SB3's training loop runs the course
# network itself instead of an MLP of the same width.
SB3_COURSE_POLICIES: dict[str, dict[str, type[BasePolicy]]] = {
    algorithm.sb3_key: {algorithm.sb3_trainable_policy.__name__: algorithm.sb3_trainable_policy}
    for algorithm in ALGORITHMS.values()
    if algorithm.sb3_trainable_policy is not None
}


# Learning-rate arguments of the course classes beyond SB3's ``learning_rate`` (CourseDDPG's actor_learning_rate and
# critic_learning_rate): rl-zoo3's ExperimentManager._preprocess_schedules turns ``lin_<x>`` into a schedule only for
# learning_rate, clip_range, clip_range_vf and delta_std.
COURSE_SCHEDULE_KEYS: frozenset[str] = frozenset(
    name
    for algo in COURSE_ALGOS.values()
    for name in inspect.signature(algo.__init__).parameters
    if name.endswith("_learning_rate")
)

_zoo_preprocess_schedules = exp_manager.ExperimentManager._preprocess_schedules


def _preprocess_schedules(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """rl-zoo3's schedule pre-processing, applied to ``COURSE_SCHEDULE_KEYS`` as to ``learning_rate``."""
    hyperparams = _zoo_preprocess_schedules(hyperparams)
    for key in COURSE_SCHEDULE_KEYS & hyperparams.keys():
        # None: the class falls back to learning_rate
        if hyperparams[key] is not None:
            hyperparams[key] = _zoo_preprocess_schedules({"learning_rate": hyperparams[key]})["learning_rate"]
    return hyperparams


# The texts rl-zoo3 evaluates as Python (``-params`` / ``--env-kwargs`` values, a recipe's ``policy_kwargs`` /
# ``replay_buffer_class`` / ``replay_buffer_kwargs`` strings), by (module whose namespace rl-zoo3 uses, text): the
# checks of sb3_course.zoo.values evaluate them before rl-zoo3 runs, and rl-zoo3 takes these values through
# register()'s hooks, so that each is evaluated once and its side effects happen once
_EVALUATED: dict[tuple[str, str], Any] = {}
KWARGS_STRING_KEYS = ("policy_kwargs", "replay_buffer_class", "replay_buffer_kwargs")


def evaluate_once(text: str, module: types.ModuleType) -> Any:
    """
    ``eval(text)`` in the namespace of ``module``, as rl-zoo3 does, evaluated once per process; each caller gets its
    own copy (a constructor may add to the ``policy_kwargs`` it is given, as SB3's A2C does) when it can be copied.
    """
    key = (module.__name__, text)
    if key not in _EVALUATED:
        _EVALUATED[key] = eval(text, vars(module))
    try:
        return copy.deepcopy(_EVALUATED[key])
    except TypeError:  # not copyable (a generator, a lock): shared
        return _EVALUATED[key]


def _store_dict_call(self: utils.StoreDict, parser: Any, namespace: Any, values: list[str], option_string: Any = None) -> None:
    """rl-zoo3's ``StoreDict`` (``NAME:VALUE`` items, each VALUE evaluated in rl_zoo3.utils) through ``evaluate_once``."""
    items = (argument.partition(":") for argument in values)
    setattr(namespace, self.dest, {name: evaluate_once(text, utils) for name, _, text in items})


_zoo_preprocess_hyperparams = exp_manager.ExperimentManager._preprocess_hyperparams


def _preprocess_hyperparams(self: exp_manager.ExperimentManager, hyperparams: dict[str, Any]) -> Any:
    """rl-zoo3's pre-processing with the kwargs strings it evaluates in exp_manager taken from ``evaluate_once``."""
    for key in KWARGS_STRING_KEYS:
        if isinstance(hyperparams.get(key), str):
            hyperparams[key] = evaluate_once(hyperparams[key], exp_manager)
    return _zoo_preprocess_hyperparams(self, hyperparams)


def hyperparams_dir() -> Path:
    """The folder of the course YAML recipes: ``hyperparams/`` of a source checkout, else the installed copy."""
    checkout = Path(__file__).resolve().parents[2] / "hyperparams"
    if (checkout / "course_dqn.yml").is_file():
        return checkout
    # A wheel installs the top-level hyperparams/ as the data package sb3_course/hyperparams (pyproject.toml)
    return Path(__file__).resolve().parents[1] / "hyperparams"


def default_config(algo: str) -> Path | None:
    """The recipe file rl-zoo3 should read for ``algo``, or ``None`` to keep rl-zoo3's own (SB3 keys)."""
    if algo not in COURSE_ALGOS:
        return None
    return hyperparams_dir() / f"{algo}.yml"


def load_recipes(algo: str) -> dict[str, dict[str, Any]]:
    """The blocks of ``hyperparams/<algo>.yml`` of a course key (``default`` included), by env id."""
    with open(hyperparams_dir() / f"{algo}.yml") as file:
        return yaml.safe_load(file)


def recipe_block(algo: str, env_id: str) -> dict[str, Any]:
    """The recipe block of ``env_id`` in ``hyperparams/<algo>.yml``, else its ``default`` block (a copy)."""
    recipes = load_recipes(algo)
    return dict(recipes.get(env_id, recipes["default"]))


def register() -> None:
    """
    Add the course algorithms to rl-zoo3's ``ALGOS`` and their Optuna samplers to ``HYPERPARAMS_SAMPLER`` /
    ``HYPERPARAMS_CONVERTER``, make ``FrameStackReplayBuffer`` a name recipes can use and the course policies of
    ``SB3_COURSE_POLICIES`` policy names of SB3's DQN / DDPG / A2C, and make ``lin_<x>`` recipes work for every
    learning-rate argument of the course classes, and evaluate each Python text of a command line or recipe once
    (``evaluate_once``; idempotent).
    rl-zoo3's scripts import these dicts, so updating them in place is enough.
    """
    ALGOS.update(COURSE_ALGOS)
    exp_manager.ExperimentManager._preprocess_schedules = staticmethod(_preprocess_schedules)  # type: ignore[method-assign]
    exp_manager.ExperimentManager._preprocess_hyperparams = _preprocess_hyperparams  # type: ignore[method-assign]
    utils.StoreDict.__call__ = _store_dict_call  # type: ignore[method-assign]
    hyperparams_opt.HYPERPARAMS_SAMPLER.update(HYPERPARAMS_SAMPLER)
    hyperparams_opt.HYPERPARAMS_CONVERTER.update(HYPERPARAMS_CONVERTER)
    # rl-zoo3 evaluates a recipe's ``replay_buffer_class: <name>`` in exp_manager's namespace (as HerReplayBuffer)
    exp_manager.FrameStackReplayBuffer = FrameStackReplayBuffer  # type: ignore[attr-defined]
    for key, policies in SB3_COURSE_POLICIES.items():
        algo = ALGOS[key]
        # A dict of the SB3 class's own (DDPG inherits TD3's dict, which stays as it is); SB3's names are kept
        algo.policy_aliases = {**policies, **algo.policy_aliases}  # type: ignore[misc]


__all__ = [
    "COURSE_ALGOS",
    "COURSE_SCHEDULE_KEYS",
    "SB3_COUNTERPARTS",
    "SB3_COURSE_POLICIES",
    "default_config",
    "evaluate_once",
    "hyperparams_dir",
    "register",
]

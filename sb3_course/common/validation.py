"""Construction-time checks of hyperparameters and spaces, shared by the course algorithms."""

import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.type_aliases import GymEnv
from stable_baselines3.common.vec_env import VecEnv

# A check of one argument: (name, value) -> the value to use, or an error naming the argument
Rule = Callable[[str, Any], object]


def _describe(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_int(name: str, value: object, low: int = 1, high: float = math.inf) -> int:
    """
    Raise a ``TypeError`` naming the hyperparameter when ``value`` is not an integer (``bool`` and ``"8"`` are
    not; NumPy integers and integral floats such as YAML's ``1e5`` are), and a ``ValueError`` when it lies outside
    ``[low, high]``.

    :param name: hyperparameter name, as the user passes it
    :param value: the value given
    :param low: smallest allowed value
    :param high: largest allowed value
    :return: the value as a Python ``int``
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    _check_range(name, int(value), low, high)
    return int(value)


def check_float(
    name: str,
    value: object,
    low: float = -math.inf,
    high: float = math.inf,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """
    Raise a ``TypeError`` naming the hyperparameter when ``value`` is not a real number (a string such as
    ``"1e-3"`` is not), and a ``ValueError`` when it is NaN or lies outside the range.

    :param name: hyperparameter name, as the user passes it
    :param value: the value given
    :param low: lower bound
    :param high: upper bound
    :param low_inclusive: whether ``low`` itself is allowed
    :param high_inclusive: whether ``high`` itself is allowed
    :return: the value as a Python ``float``
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_describe(value)}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got nan")
    _check_range(name, value, low, high, low_inclusive, high_inclusive)
    return value


def _check_range(
    name: str, value: float, low: float, high: float, low_inclusive: bool = True, high_inclusive: bool = True
) -> None:
    """Raise a ``ValueError`` naming the hyperparameter when the number ``value`` lies outside the range."""
    above_low = value >= low if low_inclusive else value > low
    below_high = value <= high if high_inclusive else value < high
    if not (above_low and below_high):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must lie in {left}{low}, {high}{right}, got {value}")


class LearningRateTypeError(TypeError, AssertionError):
    """
    A learning rate that is neither a number nor a schedule. SB3 asserts this (``FloatSchedule``), so code written
    for SB3 catches it as ``AssertionError``; it is a ``TypeError`` too, as for the other hyperparameters.
    """


class FrequencyError(ValueError, AssertionError):
    """
    A ``train_freq`` below one step or episode. SB3 asserts this when ``learn()`` collects its first rollout
    (``collect_rollouts``); here it is raised at construction, catchable as either type.
    """


class UnsupportedSpaceError(AssertionError, ValueError):
    """
    An environment whose action (or observation) space the algorithm cannot handle. SB3 raises ``AssertionError``
    for an unsupported space (``BaseAlgorithm.__init__``), so code written for SB3 catches this one too.
    """


def check_action_space(
    env: GymEnv | str | None,
    supported: tuple[type[spaces.Space], ...],
    algo: str,
    hint: str,
    verbose: int = 0,
) -> GymEnv | None:
    """
    Build ``env`` if it is an id (as ``BaseAlgorithm`` would) and raise :class:`UnsupportedSpaceError`
    naming the space, the supported ones and what to use instead when its action space is not supported.

    :param env: environment, env id or ``None`` (when loading)
    :param supported: the supported action space classes
    :param algo: the algorithm's name, for the message
    :param hint: what the user should do instead
    :param verbose: verbosity passed to ``maybe_make_env``
    :return: the environment, built if it was an id
    """
    if env is None:
        return None
    env = maybe_make_env(env, verbose)
    if not isinstance(env, (gym.Env, VecEnv)):
        # Not a Gymnasium env (an old gym env, or no env at all): BaseAlgorithm converts it or raises its ValueError
        return env
    if not isinstance(env.action_space, supported):
        names = ", ".join(space.__name__ for space in supported)
        raise UnsupportedSpaceError(f"{algo} supports {names} action spaces, but the env has {env.action_space}. {hint}")
    return env


def check_learning_rate(learning_rate: float | Callable[[float], float], name: str = "learning_rate") -> None:
    """
    Raise a ``TypeError`` / ``ValueError`` naming ``name`` when a constant learning rate is not a finite number >= 0
    (0: the optimizer never moves the network, as in SB3; a schedule, any callable, is not evaluated).
    """
    if callable(learning_rate):
        return
    try:
        check_float(name, learning_rate, 0.0, math.inf, high_inclusive=False)
    except TypeError as error:
        raise LearningRateTypeError(str(error)) from None


def check_bool(name: str, value: object) -> bool:
    """Raise a ``TypeError`` naming the argument when ``value`` is not a bool (a YAML ``"False"`` would be true)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_policy_class(policy: str | type, base: type, algo: str) -> None:
    """
    Raise a ``ValueError`` when a policy class is not a ``base`` subclass; ``load()`` passes the saved policy
    class, so this is the error for a file saved by another algorithm.

    :param policy: policy alias or class, as given to the constructor
    :param base: the policy base class the algorithm works with
    :param algo: the algorithm's name, for the message
    """
    if isinstance(policy, type) and not issubclass(policy, base):
        raise ValueError(
            f"{algo} needs a {base.__name__} subclass, got {policy.__module__}.{policy.__name__}; "
            f"a model saved by another algorithm must be loaded with that algorithm's class"
        )


# What SB3's preprocessing handles (Dict only with MultiInputPolicy, which SB3 itself checks)
SUPPORTED_OBSERVATION_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict)


def check_observation_space(observation_space: spaces.Space | None, algo: str) -> None:
    """
    Raise :class:`UnsupportedSpaceError` naming the space when SB3's policies cannot read observations of it
    (``Tuple``, ``Text``, ``Sequence``, ``Graph``, ...); ``None`` (loading without an env) passes.

    :param observation_space: the env's observation space
    :param algo: the algorithm's name, for the message
    """
    if observation_space is not None and not isinstance(observation_space, SUPPORTED_OBSERVATION_SPACES):
        names = ", ".join(space.__name__ for space in SUPPORTED_OBSERVATION_SPACES)
        raise UnsupportedSpaceError(
            f"{algo} supports {names} observation spaces, but the env has {observation_space}. "
            "Wrap the env to flatten or encode its observations (e.g. gymnasium.wrappers.FlattenObservation)."
        )


def check_train_freq(name: str, value: object) -> object:
    """
    Raise a :class:`FrequencyError` when ``train_freq`` (an integer or SB3's ``(frequency, unit)`` tuple) asks for
    fewer than one step or episode per rollout; its other forms SB3 checks itself, naming ``train_freq``.
    """
    frequency = value[0] if isinstance(value, tuple) and value else value
    if isinstance(frequency, str):  # SB3's error type for it (in learn())
        raise ValueError(f"{name} must be an integer or a (frequency, unit) tuple, got {_describe(value)}")
    if isinstance(frequency, numbers.Integral) and not isinstance(frequency, bool) and frequency < 1:
        raise FrequencyError(f"{name} must collect at least one step or episode per rollout, got {value!r}")
    return value


def _as_number(name: str, value: object, expected: str) -> float:
    """``value`` as a float (a string SB3 would convert with ``float()`` too), else an error saying what was expected."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{name} must be {expected}, got {value!r}") from None
    return check_float(name, value)


def check_ent_coef(name: str, value: object) -> object:
    """
    SAC's ``ent_coef``: a weight >= 0 (a float, or a string of one), ``"auto"`` or ``"auto_<initial value>"``
    (SB3 itself asserts that the initial value is positive, naming ``ent_coef``).
    """
    if value == "auto":
        return value
    expected = "a number >= 0, 'auto' or 'auto_<initial value>' (e.g. 'auto_0.1')"
    if isinstance(value, str) and value.startswith("auto_"):
        _as_number(name, value.removeprefix("auto_"), expected)
    else:
        check_float(name, _as_number(name, value, expected), 0.0)
    return value


def check_target_entropy(name: str, value: object) -> object:
    """SAC's ``target_entropy``: ``"auto"`` (``-dim(A)``) or a number (a string of one: SB3 converts it)."""
    if value != "auto":
        _as_number(name, value, "a number or 'auto'")
    return value


def _learning_rate(name: str, value: object) -> object:
    check_learning_rate(value, name)  # type: ignore[arg-type]
    return value


MAX_SEED = 2**32 - 1  # NumPy's seed range is [0, 2**32 - 1]
# Each worker is an OS process with its own env, optimizer and torch runtime (tens of MB): beyond a few per core
# Hogwild gains nothing, and thousands exhaust memory and process limits (the A3C paper used 16).
MAX_WORKERS = 256
_FLAG_NAMES = (
    "normalize_advantage",
    "normalize_returns",
    "optimize_memory_usage",
    "use_baseline",
    "use_rms_prop",
    "use_sde",
    "use_sde_at_warmup",
    "use_target_network",
)

# Constructor argument name -> its rule, for every course class (a rule raises naming the argument, or returns the
# value to use: integers written as floats, as YAML's 1e5, become ints). The ranges are the values with a meaning;
# SB3 accepts some others and runs with them (e.g. a negative max_grad_norm flips the gradients) or fails later
# without naming them. An infinite loss weight would make the loss infinite; an infinite max_grad_norm: no clipping.
RULES: dict[str, Rule] = {
    "learning_rate": _learning_rate,
    "actor_learning_rate": _learning_rate,
    "critic_learning_rate": _learning_rate,
    "buffer_size": partial(check_int, low=1),
    "learning_starts": partial(check_int, low=0),
    "batch_size": partial(check_int, low=1),
    # 0: targets that never move (SB3's own tests freeze them so), 1: hard copies
    "tau": partial(check_float, low=0.0, high=1.0),
    "gamma": partial(check_float, low=0.0, high=1.0),
    "gae_lambda": partial(check_float, low=0.0, high=1.0),
    "train_freq": check_train_freq,
    # -1: as many gradient steps as environment steps in the rollout
    "gradient_steps": partial(check_int, low=-1),
    "n_steps": partial(check_int, low=1),
    "n_episodes": partial(check_int, low=1),
    "n_workers": partial(check_int, low=1, high=MAX_WORKERS),
    "target_update_interval": partial(check_int, low=1),
    "exploration_fraction": partial(check_float, low=0.0),
    "exploration_initial_eps": partial(check_float, low=0.0, high=1.0),
    "exploration_final_eps": partial(check_float, low=0.0, high=1.0),
    "exploration_min_eps": partial(check_float, low=0.0, high=1.0),
    "max_grad_norm": partial(check_float, low=0.0, low_inclusive=False),
    # A2C's entropy weight (CourseSAC's ent_coef, which may be "auto", has its own rule: check_ent_coef)
    "ent_coef": partial(check_float, low=0.0, high_inclusive=False),
    "vf_coef": partial(check_float, low=0.0, high_inclusive=False),
    "actor_bound_penalty": partial(check_float, low=0.0, high_inclusive=False),
    "rms_prop_eps": partial(check_float, low=0.0, low_inclusive=False, high_inclusive=False),
    "target_entropy": check_target_entropy,
    # -1: a new gSDE noise matrix only at the start of each rollout
    "sde_sample_freq": partial(check_int, low=-1),
    "stats_window_size": partial(check_int, low=1),
    "seed": partial(check_int, low=0, high=MAX_SEED),
    "verbose": partial(check_int, low=0),
    **{name: check_bool for name in _FLAG_NAMES},
}


def check_arguments(algo: type, arguments: Mapping[str, Any], **rules: Rule) -> dict[str, Any]:
    """
    Check a course class's constructor arguments by name with their rule of :data:`RULES` (or of ``rules``);
    ``None`` passes where the signature's default is ``None`` ("not set"). Called as
    ``check_arguments(type(self), locals())`` first thing in ``__init__``; cross-argument rules follow it there.

    :param algo: the class being built (its ``__init__`` signature says which arguments may be ``None``)
    :param arguments: the constructor's arguments by name (those without a rule are not checked)
    :param rules: rules that replace those of :data:`RULES` for this class
    :return: the checked arguments to use (ints and floats as Python's), by name
    """
    parameters = inspect.signature(algo.__init__).parameters  # type: ignore[misc]
    rules = {**RULES, **rules}
    checked = {}
    for name, value in arguments.items():
        if name not in rules or name not in parameters:
            continue
        optional = value is None and parameters[name].default is None
        checked[name] = None if optional else rules[name](name, value)
    return checked


def check_env_spaces(
    env: GymEnv | str | None, algo: str, supported: tuple[type[spaces.Space], ...], hint: str, verbose: int = 0
) -> GymEnv | None:
    """
    :func:`check_action_space` then :func:`check_observation_space`: the env (built if it was an id) of a course
    class that checks its action space itself (CourseDQN, CourseDDPG, CourseSAC).

    :param env: environment, env id or ``None`` (when loading)
    :param algo: the algorithm's name, for the messages
    :param supported: the supported action space classes
    :param hint: what to use instead when the action space is not supported
    :param verbose: verbosity passed to ``maybe_make_env``
    :return: the environment, built if it was an id
    """
    checked_env = check_action_space(env, supported, algo, hint, verbose)
    check_observation_space(getattr(checked_env, "observation_space", None), algo)
    return checked_env

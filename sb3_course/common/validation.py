"""Construction-time checks of hyperparameters and spaces, shared by the course algorithms."""

import math
import numbers
from collections.abc import Callable

from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.type_aliases import GymEnv


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
    check_in_range(name, int(value), low, high)
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
    ``"1e-3"`` is not: YAML 1.1 reads ``1e-3`` without a dot as a string; write ``!!float 1e-3`` or ``1.0e-3``),
    and a ``ValueError`` when it is NaN or lies outside the range.

    :param name: hyperparameter name, as the user passes it
    :param value: the value given
    :param low: lower bound
    :param high: upper bound
    :param low_inclusive: whether ``low`` itself is allowed
    :param high_inclusive: whether ``high`` itself is allowed
    :return: the value as a Python ``float``
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = "; a YAML 1.1 number without a dot (1e-3) is a string: write !!float 1e-3" if isinstance(value, str) else ""
        raise TypeError(f"{name} must be a number, got {_describe(value)}{hint}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, got nan")
    check_in_range(name, value, low, high, low_inclusive, high_inclusive)
    return value


def check_in_range(
    name: str,
    value: float,
    low: float,
    high: float,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """
    Raise a ``ValueError`` naming the hyperparameter when ``value`` lies outside ``[low, high]``
    (``TypeError`` when it is not a number).

    :param name: hyperparameter name, as the user passes it
    :param value: the value given
    :param low: lower bound
    :param high: upper bound
    :param low_inclusive: whether ``low`` itself is allowed
    :param high_inclusive: whether ``high`` itself is allowed
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_describe(value)}")
    above_low = value >= low if low_inclusive else value > low
    below_high = value <= high if high_inclusive else value < high
    if not (above_low and below_high):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must lie in {left}{low}, {high}{right}, got {value}")


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
    if not isinstance(env.action_space, supported):
        names = ", ".join(space.__name__ for space in supported)
        raise UnsupportedSpaceError(f"{algo} supports {names} action spaces, but the env has {env.action_space}. {hint}")
    return env


def check_learning_rate(learning_rate: float | Callable[[float], float], name: str = "learning_rate") -> None:
    """
    Raise a ``TypeError`` / ``ValueError`` naming ``name`` when a constant learning rate is not a positive finite
    number (a schedule, any callable, is not evaluated).
    """
    if not callable(learning_rate):
        check_float(name, learning_rate, 0.0, math.inf, low_inclusive=False, high_inclusive=False)


def check_batch_size(batch_size: int, buffer_size: int) -> None:
    """
    Check that both sizes are positive integers. A batch may be larger than the buffer: SB3's replay buffers sample
    indices with replacement, as here.
    """
    check_int("batch_size", batch_size)
    check_int("buffer_size", buffer_size)


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


def check_off_policy_arguments(
    algo: str,
    env: GymEnv | str | None,
    action_spaces: tuple[type[spaces.Space], ...],
    hint: str,
    learning_rate: float | Callable[[float], float],
    batch_size: int,
    buffer_size: int,
    gamma: float,
    tau: float,
    verbose: int = 0,
) -> GymEnv | None:
    """
    The construction-time checks shared by the course off-policy algorithms (CourseDQN, CourseDDPG, CourseSAC).

    :param algo: the algorithm's name, for the messages
    :param env: environment, env id or ``None`` (when loading)
    :param action_spaces: the supported action space classes
    :param hint: what to use instead when the action space is not supported
    :param learning_rate: learning rate or schedule
    :param batch_size: minibatch size
    :param buffer_size: replay buffer size
    :param gamma: discount factor, in [0, 1]
    :param tau: soft update coefficient, in (0, 1]
    :param verbose: verbosity passed to ``maybe_make_env``
    :return: the environment, built if it was an id
    """
    check_learning_rate(learning_rate)
    check_batch_size(batch_size, buffer_size)
    check_float("gamma", gamma, 0.0, 1.0)
    check_float("tau", tau, 0.0, 1.0, low_inclusive=False)
    checked_env = check_action_space(env, action_spaces, algo, hint, verbose)
    check_observation_space(getattr(checked_env, "observation_space", None), algo)
    return checked_env

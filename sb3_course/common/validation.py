"""Construction-time checks of hyperparameters and spaces, shared by the course algorithms."""

from collections.abc import Callable

from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.type_aliases import GymEnv


def check_in_range(
    name: str,
    value: float,
    low: float,
    high: float,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """
    Raise a ``ValueError`` naming the hyperparameter when ``value`` lies outside ``[low, high]``.

    :param name: hyperparameter name, as the user passes it
    :param value: the value given
    :param low: lower bound
    :param high: upper bound
    :param low_inclusive: whether ``low`` itself is allowed
    :param high_inclusive: whether ``high`` itself is allowed
    """
    above_low = value >= low if low_inclusive else value > low
    below_high = value <= high if high_inclusive else value < high
    if not (above_low and below_high):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must lie in {left}{low}, {high}{right}, got {value}")


class UnsupportedSpaceError(ValueError):
    """An environment whose action (or observation) space the algorithm cannot handle."""


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


def check_learning_rate(learning_rate: float | Callable[[float], float]) -> None:
    """Raise a ``ValueError`` when a constant learning rate is not positive (schedules are not evaluated)."""
    if not callable(learning_rate):
        check_in_range("learning_rate", learning_rate, 0.0, float("inf"), low_inclusive=False)


def check_batch_size(batch_size: int, buffer_size: int) -> None:
    """Raise a ``ValueError`` when a minibatch cannot be drawn from the replay buffer."""
    check_in_range("batch_size", batch_size, 1, float("inf"))
    if batch_size > buffer_size:
        raise ValueError(f"batch_size ({batch_size}) must not exceed buffer_size ({buffer_size})")


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
    check_in_range("gamma", gamma, 0.0, 1.0)
    check_in_range("tau", tau, 0.0, 1.0, low_inclusive=False)
    checked_env = check_action_space(env, action_spaces, algo, hint, verbose)
    check_observation_space(getattr(checked_env, "observation_space", None), algo)
    return checked_env

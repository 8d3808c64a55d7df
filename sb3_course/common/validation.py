"""Construction-time checks of hyperparameters and spaces, shared by the course algorithms."""

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

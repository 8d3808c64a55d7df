"""
Checks of a recipe block's values before rl-zoo3 reads it: what rl-zoo3 parses itself (``n_timesteps``, ``n_envs``,
schedules, noise, wrappers) and what the course class checks at construction, run on the class built as SB3's
``load`` builds it (no env, no network), so that a bad value ends in one line before any folder, env or model exists.
"""

import inspect
import math
import numbers
from collections import defaultdict
from typing import Any, TypeGuard

from sb3_course.zoo import COURSE_ALGOS, COURSE_SCHEDULE_KEYS, KWARGS_STRING_KEYS, evaluate_once

# Keys rl-zoo3 turns into schedules when they are strings "<name>_<initial value>" (ExperimentManager), with the
# course classes' own learning rates (sb3_course.zoo.register() extends rl-zoo3's conversion to them)
SCHEDULE_KEYS = ("learning_rate", "clip_range", "clip_range_vf", "delta_std", *sorted(COURSE_SCHEDULE_KEYS))
NOISE_TYPES = ("normal", "ornstein-uhlenbeck")


class RecipeError(ValueError):
    """A command line or recipe that cannot work; its message is the one line shown to the user."""


def _yaml_hint(value: str) -> str:
    """Why a number reached us as a string, when it did: YAML 1.1 reads ``1e-3`` (no dot, no exponent sign) as text."""
    try:
        number = float(value)
    except ValueError:
        return ""
    if value.strip().lower().lstrip("+-") in ("inf", "infinity", "nan"):
        return f"; YAML writes infinity as .inf, so write {value.replace('inf', '.inf')}"
    if value.strip().lstrip("+-").isdigit():
        return f"; write it without quotes: {value.strip()}"
    return f"; YAML 1.1 reads a number without a dot as text: write !!float {value} or {number!r}"


def parse_params(items: list[str], flag: str = "-params") -> dict[str, Any]:
    """
    ``-params NAME:VALUE ...`` (or the items of another ``flag``, ``--env-kwargs``) as rl-zoo3's ``StoreDict`` reads
    them (each VALUE evaluated as Python in rl_zoo3.utils, once: ``evaluate_once``), or a :class:`RecipeError` naming
    the item whose value does not evaluate (rl-zoo3 ends in a traceback there).
    """
    from rl_zoo3 import utils

    params = {}
    for item in items:
        name, colon, text = item.partition(":")
        if not colon or not name:
            raise RecipeError(f"{flag} {item!r}: expected NAME:VALUE, e.g. learning_rate:0.001")
        try:
            params[name] = evaluate_once(text, utils)  # what StoreDict does with it
        except Exception as error:
            raise RecipeError(
                f"{flag} {item!r}: VALUE is read as Python and fails ({type(error).__name__}: {error}); quote a "
                f"string, e.g. {name}:'\"text\"'"
            ) from error
    return params


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_zoo_values(block: dict[str, Any], where_of: dict[str, str], budget_given: bool) -> None:
    """
    The keys rl-zoo3's ExperimentManager reads itself (it deletes ``n_timesteps`` even when ``-n`` is given).

    :param block: the recipe block with the ``-params`` applied
    :param where_of: where each key of ``block`` was set (the block, or ``-params``); ``"*"``: the block
    :param budget_given: whether ``-n`` sets the budget
    """
    if "n_timesteps" not in block:
        raise RecipeError(f"{where_of['*']}: no n_timesteps (rl-zoo3 needs it, even with -n)")
    budget = block["n_timesteps"]
    if not budget_given and not (_number(budget) and math.isfinite(budget) and int(budget) >= 1):
        hint = _yaml_hint(budget) if isinstance(budget, str) else ""
        raise RecipeError(f"{where_of['n_timesteps']}: n_timesteps must be a positive number of steps, got {budget!r}{hint}")
    for name in ("n_envs", "frame_stack"):
        value = block.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise RecipeError(f"{where_of[name]}: {name} must be a positive integer, got {value!r}")
    if block.get("noise_type") is not None:
        noise_type, noise_std, where = block["noise_type"], block.get("noise_std"), where_of["noise_type"]
        if not isinstance(noise_type, str) or not any(kind in noise_type for kind in NOISE_TYPES):
            raise RecipeError(f"{where}: noise_type must be one of {', '.join(NOISE_TYPES)}, got {noise_type!r}")
        if not _number(noise_std) or not noise_std >= 0:
            raise RecipeError(f"{where}: noise_type needs noise_std, a number >= 0, got {noise_std!r}")
    for name in ("env_wrapper", "vec_env_wrapper"):
        if block.get(name) is not None:
            from rl_zoo3.utils import get_wrapper_class

            try:
                get_wrapper_class(block, name)
            except (ImportError, AttributeError, ValueError) as error:
                raise RecipeError(f"{where_of[name]}: {name} {block[name]!r} cannot be imported ({error})") from error


def _constructor_value(name: str, value: Any, where: str) -> Any:
    """``value`` as rl-zoo3 passes it to the constructor (schedules, evaluated kwargs strings, tuples), checked."""
    import rl_zoo3.exp_manager
    from rl_zoo3.utils import get_class_by_name

    if name in SCHEDULE_KEYS and isinstance(value, str):
        schedule, _, initial = value.partition("_")
        try:
            initial_value = float(initial) if schedule and "_" not in initial else math.nan
        except ValueError:
            initial_value = math.nan
        if math.isnan(initial_value):
            raise RecipeError(
                f"{where}: {name} {value!r} is a string, which rl-zoo3 reads as a schedule 'lin_<initial value>' "
                f"(e.g. lin_0.001){_yaml_hint(value)}"
            )
        return rl_zoo3.exp_manager.SimpleLinearSchedule(initial_value)
    if name in KWARGS_STRING_KEYS and isinstance(value, str):
        try:
            return evaluate_once(value, rl_zoo3.exp_manager)  # rl-zoo3 evaluates them in its module
        except Exception as error:
            raise RecipeError(f"{where}: {name} {value!r} does not evaluate ({type(error).__name__}: {error})") from error
    if name == "train_freq" and isinstance(value, list):
        return tuple(value)
    if name == "policy" and isinstance(value, str) and "." in value:
        try:
            return get_class_by_name(value)
        except (ImportError, AttributeError, ValueError) as error:
            raise RecipeError(f"{where}: policy {value!r} cannot be imported ({error})") from error
    return value


def check_constructor_values(key: str, block: dict[str, Any], where_of: dict[str, str], env_id: str) -> None:
    """
    Build the course class ``key`` from the block's constructor arguments on ``env_id`` without its network (as
    SB3's ``load`` builds it), so that its own checks run: the values, then the env's spaces.

    :param key: course algorithm key
    :param block: the recipe block with the ``-params`` applied
    :param where_of: where each key of ``block`` was set (the block, or ``-params``); ``"*"``: the block
    :param env_id: the env the class is built on
    """
    import gymnasium as gym

    cls: Any = COURSE_ALGOS[key]  # a course class: it takes _init_setup_model, BaseAlgorithm does not
    parameters = inspect.signature(cls.__init__).parameters
    kwargs = {name: _constructor_value(name, value, where_of[name]) for name, value in block.items() if name in parameters}
    kwargs.setdefault("policy", "MlpPolicy")
    env = gym.make(env_id)
    try:
        cls(env=env, device="cpu", _init_setup_model=False, **kwargs)
    except (TypeError, ValueError, AssertionError, KeyError) as error:
        names = [name for name in kwargs if name in str(error).lower()]
        where = where_of[names[0]] if names else where_of["*"]
        value = block.get(names[0]) if names else None
        hint = _yaml_hint(value) if isinstance(value, str) else ""
        raise RecipeError(f"{where}: {error}{hint}") from error
    finally:
        env.close()


def check_block(key: str, env_id: str, block: dict[str, Any], where: str, params: dict[str, Any], budget_given: bool) -> None:
    """
    Check the values of recipe ``block`` (at ``where``) with ``-params`` ``params`` applied, for course key ``key``
    on ``env_id``.

    :param key: course algorithm key
    :param env_id: the env id
    :param block: the recipe block
    :param where: where the block is, for the messages ("<file> [<block>]")
    :param params: the ``-params`` (they replace the block's values, as in rl-zoo3)
    :param budget_given: whether ``-n`` sets the budget (then the block's ``n_timesteps`` is not used)
    """
    merged = {**block, **params}
    where_of = defaultdict(lambda: where, {name: "-params" for name in params})
    # The class first: an env it cannot take makes the rest of the block moot
    check_constructor_values(key, merged, where_of, env_id)
    check_zoo_values(merged, where_of, budget_given)
    if key == "a3c":
        check_a3c_env_settings(merged, where_of)


# rl-zoo3 keys that wrap the training env in a VecEnvWrapper
VEC_ENV_WRAPPER_KEYS = ("normalize", "frame_stack", "vec_env_wrapper")


def check_a3c_env_settings(block: dict[str, Any], where_of: dict[str, str]) -> None:
    """
    A3C's workers step plain gym envs, so the VecEnv wrappers rl-zoo3 would build from ``normalize``,
    ``frame_stack`` or ``vec_env_wrapper`` cannot reach them (A3C's constructor refuses the wrapped env).
    """
    for name in VEC_ENV_WRAPPER_KEYS:
        if block.get(name):
            raise RecipeError(
                f"{where_of[name]}: {name} wraps the env in a VecEnvWrapper, which A3C's workers (plain gym envs) "
                "cannot use; remove it, or use gymnasium wrappers in env_wrapper (e.g. "
                "gymnasium.wrappers.NormalizeObservation, gymnasium.wrappers.FrameStackObservation)"
            )

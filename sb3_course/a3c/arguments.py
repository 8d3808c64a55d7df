"""A3C's constructor arguments checked for type and range, each error naming the argument and what to do."""

import multiprocessing as mp
from typing import Any

import torch as th

from sb3_course.common.validation import check_actor_critic_floats, check_bool, check_int, check_learning_rate

START_METHODS = ("forkserver", "spawn")
# Each worker is an OS process with its own env, optimizer and torch runtime (tens of MB): beyond a few per core
# Hogwild gains nothing, and thousands exhaust memory and process limits (the paper used 16).
MAX_WORKERS = 256
FLAGS = ("use_rms_prop", "use_sde", "normalize_advantage", "normalize_returns")


def check_device(device: th.device | str) -> None:
    """
    Raise a ``ValueError`` when ``device`` is not the CPU (``"auto"`` is the CPU for A3C); an invalid device raises
    torch's error type (as SB3), its message naming the argument.
    """
    if device == "auto":
        return
    try:
        kind = th.device(device).type
    except (RuntimeError, TypeError) as error:
        raise type(error)(f"device: {error}") from None
    if kind != "cpu":
        raise ValueError(
            f"A3C's workers update one policy in shared CPU memory (Hogwild), so device must be 'cpu' or 'auto', "
            f"got {device!r}: pass device='cpu'"
        )


def check_arguments(args: dict[str, Any]) -> dict[str, Any]:
    """
    Check A3C's numeric, flag and choice arguments (``TypeError`` for a wrong type, ``ValueError`` for a wrong value,
    both naming the argument) and return them converted (YAML's ``1e5`` to an ``int``, the default start method).

    :param args: the constructor's arguments by name
    :return: the checked arguments
    """
    checked = dict(args)
    check_learning_rate(args["learning_rate"])
    checked["n_workers"] = check_int("n_workers", args["n_workers"], 1, MAX_WORKERS)
    if args["n_steps"] is not None:
        checked["n_steps"] = check_int("n_steps", args["n_steps"])
    checked.update(check_actor_critic_floats(args))
    checked["sde_sample_freq"] = check_int("sde_sample_freq", args["sde_sample_freq"], -1)
    checked["stats_window_size"] = check_int("stats_window_size", args["stats_window_size"])
    for name in FLAGS:
        checked[name] = check_bool(name, args[name])
    if args["seed"] is not None:
        checked["seed"] = check_int("seed", args["seed"], 0, 2**32 - 1)
    if not isinstance(args["verbose"], bool):
        checked["verbose"] = check_int("verbose", args["verbose"], 0)
    if args["rollout_buffer_class"] is not None or args["rollout_buffer_kwargs"]:
        raise ValueError(
            "rollout_buffer_class / rollout_buffer_kwargs: A3C's workers keep their own rollouts (whole episodes "
            "or n_steps) and use no RolloutBuffer; remove these arguments"
        )
    if checked["gae_lambda"] < 1.0 and checked["normalize_returns"]:
        raise ValueError(
            "gae_lambda < 1 needs normalize_returns=False: GAE adds rewards to V, which the course's normalised "
            "returns (G / ||G||) put on another scale"
        )
    if args["start_method"] is None:
        checked["start_method"] = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    elif args["start_method"] not in START_METHODS:
        raise ValueError(f"start_method must be one of {START_METHODS} (fork is unsafe with torch threads)")
    check_device(args["device"])
    return checked

"""Optuna samplers for ``sb3-course train -optimize``: one per course algorithm, over that algorithm's own knobs.

Each key has a sampler (``trial -> constructor kwargs``, what rl-zoo3's ``HYPERPARAMS_SAMPLER`` holds) and a
converter (``trial.params -> constructor kwargs``, what ``HYPERPARAMS_CONVERTER`` holds; rl-zoo3 uses it for
``--trial-id``). The sampler only suggests values and hands them to the converter, so both give the same model.
Suggested names follow rl-zoo3's: ``one_minus_gamma``, ``batch_size_pow``, ``net_arch`` (a size name).
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from torch import nn

from sb3_course.registry import ALGORITHMS

Sampler = Callable[[optuna.Trial, int, int, dict], dict[str, Any]]
Converter = Callable[[dict[str, Any]], dict[str, Any]]

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}

# net_arch size name -> the policy's own net_arch format
NET_ARCHS: dict[str, dict[str, Any]] = {
    "course_dqn": {"course": ALGORITHMS["course_dqn"].course_net_arch(), "small": [64, 64], "medium": [256, 256]},
    "reinforce": {"course": ALGORITHMS["reinforce"].course_net_arch(), "small": [64, 64], "medium": [256, 256]},
    "a3c": {
        "course": ALGORITHMS["a3c"].course_net_arch(),
        "small": dict(trunk=[64, 64], vf=[64]),
        "medium": dict(trunk=[256, 256], vf=[256]),
    },
    "course_ddpg": {
        "small": dict(pi=[64, 64], qf=[64]),
        "medium": dict(pi=[256, 256], qf=[256]),
        "big": dict(pi=[400, 300], qf=[300]),
    },
    "course_sac": {"small": [64, 64], "medium": [256, 256], "big": [400, 300]},
}

# A3C rollouts: a number of steps, or "episode" for the course's whole-episode rollouts (n_steps=None)
A3C_N_STEPS: list[int | str] = ["episode", 5, 10, 20, 50]


def _converter(key: str) -> Converter:
    """Turn rl-zoo3-style suggestions (``one_minus_gamma``, ``*_pow``, ``net_arch`` names) into kwargs of ``key``."""

    def convert(params: dict[str, Any]) -> dict[str, Any]:
        kwargs = dict(params)
        if "one_minus_gamma" in kwargs:
            kwargs["gamma"] = 1 - kwargs.pop("one_minus_gamma")
        if "batch_size_pow" in kwargs:
            kwargs["batch_size"] = 2 ** kwargs.pop("batch_size_pow")
        if kwargs.get("n_steps") == "episode":
            kwargs["n_steps"] = None
        policy_kwargs: dict[str, Any] = {"net_arch": NET_ARCHS[key][kwargs.pop("net_arch")]}
        if "activation_fn" in kwargs:
            policy_kwargs["activation_fn"] = ACTIVATIONS[kwargs.pop("activation_fn")]
        # "course" noise: no action_noise, so CourseDDPG applies the notes' OU noise
        if kwargs.get("noise_type") == "course":
            del kwargs["noise_type"], kwargs["noise_std"]
        return {"policy_kwargs": policy_kwargs, **kwargs}

    return convert


def _sampler(key: str, suggest: Callable[[optuna.Trial], dict[str, Any]]) -> Sampler:
    convert = _converter(key)

    def sample(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
        kwargs = convert(suggest(trial))
        # rl-zoo3 turns noise_type / noise_std into action_noise when it reads a recipe; a trial's kwargs go
        # straight to the constructor, so build the noise object here.
        noise_type, noise_std = kwargs.pop("noise_type", None), kwargs.pop("noise_std", None)
        if noise_type == "normal":
            kwargs["action_noise"] = NormalActionNoise(np.zeros(n_actions), noise_std * np.ones(n_actions))
        elif noise_type == "ornstein-uhlenbeck":
            kwargs["action_noise"] = OrnsteinUhlenbeckActionNoise(np.zeros(n_actions), noise_std * np.ones(n_actions))
        return kwargs

    return sample


def suggest_course_dqn(trial: optuna.Trial) -> dict[str, Any]:
    params: dict[str, Any] = {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 2e-3, log=True),
        "one_minus_gamma": trial.suggest_float("one_minus_gamma", 1e-4, 0.05, log=True),
        "batch_size_pow": trial.suggest_int("batch_size_pow", 5, 8),
        "train_freq": trial.suggest_categorical("train_freq", [1, 4, 8]),
        "use_target_network": trial.suggest_categorical("use_target_network", [False, True]),
        "exploration_decay": trial.suggest_categorical("exploration_decay", ["harmonic", "linear"]),
        "exploration_initial_eps": trial.suggest_float("exploration_initial_eps", 0.1, 1.0),
        "net_arch": trial.suggest_categorical("net_arch", ["course", "small", "medium"]),
    }
    if params["use_target_network"]:
        params["target_update_interval"] = trial.suggest_int("target_update_interval", 10, 10_000, log=True)
    if params["exploration_decay"] == "linear":
        params["exploration_fraction"] = trial.suggest_float("exploration_fraction", 0.05, 0.5)
        params["exploration_final_eps"] = trial.suggest_float("exploration_final_eps", 0.0, 0.2)
    else:
        params["exploration_min_eps"] = trial.suggest_float("exploration_min_eps", 0.0, 0.1)
    return params


def suggest_reinforce(trial: optuna.Trial) -> dict[str, Any]:
    params: dict[str, Any] = {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True),
        "n_episodes": trial.suggest_categorical("n_episodes", [1, 2, 4, 8, 16]),
        "gamma": trial.suggest_categorical("gamma", [0.95, 0.98, 0.99, 0.999, 1.0]),
        "normalize_advantage": trial.suggest_categorical("normalize_advantage", [True, False]),
        "use_baseline": trial.suggest_categorical("use_baseline", [False, True]),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.05, log=True),
        "net_arch": trial.suggest_categorical("net_arch", ["course", "small", "medium"]),
        "activation_fn": trial.suggest_categorical("activation_fn", ["relu", "tanh"]),
    }
    if params["use_baseline"]:
        params["vf_coef"] = trial.suggest_float("vf_coef", 0.1, 1.0)
    return params


def suggest_a3c(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True),
        # Few workers: each is a process, and the trials of a study usually share a machine
        "n_workers": trial.suggest_int("n_workers", 1, 4),
        "n_steps": trial.suggest_categorical("n_steps", A3C_N_STEPS),
        "gamma": trial.suggest_categorical("gamma", [0.95, 0.98, 0.99, 0.999]),
        "normalize_returns": trial.suggest_categorical("normalize_returns", [True, False]),
        "vf_coef": trial.suggest_float("vf_coef", 0.05, 1.0, log=True),
        "max_grad_norm": trial.suggest_float("max_grad_norm", 0.3, 5.0, log=True),
        "net_arch": trial.suggest_categorical("net_arch", ["course", "small", "medium"]),
    }


def suggest_course_ddpg(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "actor_learning_rate": trial.suggest_float("actor_learning_rate", 1e-5, 5e-3, log=True),
        "critic_learning_rate": trial.suggest_float("critic_learning_rate", 1e-5, 5e-3, log=True),
        "one_minus_gamma": trial.suggest_float("one_minus_gamma", 1e-4, 0.05, log=True),
        "batch_size_pow": trial.suggest_int("batch_size_pow", 6, 9),
        "tau": trial.suggest_float("tau", 1e-3, 0.05, log=True),
        "train_freq": trial.suggest_categorical("train_freq", [1, 4, 8]),
        "critic_loss": trial.suggest_categorical("critic_loss", ["smooth_l1", "mse"]),
        "noise_type": trial.suggest_categorical("noise_type", ["course", "normal", "ornstein-uhlenbeck"]),
        "noise_std": trial.suggest_float("noise_std", 0.05, 0.5),
        "net_arch": trial.suggest_categorical("net_arch", ["small", "medium", "big"]),
    }


def suggest_course_sac(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 2e-3, log=True),
        "one_minus_gamma": trial.suggest_float("one_minus_gamma", 1e-4, 0.05, log=True),
        "batch_size_pow": trial.suggest_int("batch_size_pow", 6, 9),
        "tau": trial.suggest_float("tau", 1e-3, 0.05, log=True),
        "train_freq": trial.suggest_categorical("train_freq", [1, 4, 8]),
        # The course's fixed alpha 0.2 against SB3's automatic entropy tuning
        "ent_coef": trial.suggest_categorical("ent_coef", ["auto", 0.05, 0.1, 0.2]),
        "net_arch": trial.suggest_categorical("net_arch", ["small", "medium", "big"]),
    }


SUGGESTERS: dict[str, Callable[[optuna.Trial], dict[str, Any]]] = {
    "course_dqn": suggest_course_dqn,
    "reinforce": suggest_reinforce,
    "a3c": suggest_a3c,
    "course_ddpg": suggest_course_ddpg,
    "course_sac": suggest_course_sac,
}

HYPERPARAMS_SAMPLER: dict[str, Sampler] = {key: _sampler(key, suggest) for key, suggest in SUGGESTERS.items()}
HYPERPARAMS_CONVERTER: dict[str, Converter] = {key: _converter(key) for key in SUGGESTERS}

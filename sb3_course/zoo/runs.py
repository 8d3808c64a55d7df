"""
What only the recipes and rl-zoo3 know about a training run of the experiment runner (:mod:`sb3_course.experiments`):
its budget in the course recipe, the CPU slots it takes and the return of the final model it saved.
"""

import inspect
import os
from typing import Any

import numpy as np
from rl_zoo3 import ALGOS, create_test_env, get_saved_hyperparams
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_course.a3c import A3C
from sb3_course.zoo import recipe_block, register


def recipe_budget(algo: str, env_id: str) -> int:
    """The ``n_timesteps`` of the course recipe of ``algo`` for ``env_id`` (the budget of its learning check)."""
    return int(float(recipe_block(algo, env_id)["n_timesteps"]))


def cpus_of(algo: str, env_id: str, hyperparams: dict[str, Any]) -> int:
    """
    A3C runs one process per worker (``n_workers`` of ``hyperparams``, else of its recipe block for ``env_id``
    or the ``default`` block, else A3C's default); everything else runs in one process.
    """
    if algo != "a3c":
        return 1
    default = inspect.signature(A3C.__init__).parameters["n_workers"].default
    return int(hyperparams.get("n_workers", recipe_block("a3c", env_id).get("n_workers", default)))


def final_model_returns(algo: str, env_id: str, run_folder: str, n_episodes: int, seed: int) -> np.ndarray:
    """
    Returns of the model saved at the end of training (``<run_folder>/<env_id>.zip``, not ``best_model.zip``)
    over ``n_episodes`` deterministic episodes, on a test env built as ``sb3-course enjoy`` builds it (rl-zoo3's
    ``create_test_env``: the recipe's wrappers, ``VecNormalize`` statistics when the recipe normalises); the return
    is the environment's own (``Monitor``'s), whatever reward shaping a recipe wrapper adds outside it.
    """
    register()
    stats_path = os.path.join(run_folder, env_id)
    hyperparams, maybe_stats_path = get_saved_hyperparams(stats_path, test_mode=True)
    # a seed the training and its evaluation env did not use
    env = create_test_env(
        env_id, stats_path=maybe_stats_path, seed=seed + 10_000, should_render=False, hyperparams=hyperparams
    )
    try:
        model = ALGOS[algo].load(os.path.join(run_folder, f"{env_id}.zip"), device="cpu")
        returns, _ = evaluate_policy(model, env, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True)
    finally:
        env.close()
    return np.asarray(returns, dtype=float)

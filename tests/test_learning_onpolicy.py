"""
Learning checks of REINFORCE and A3C with their CartPole-v1 recipes (hyperparams/), trained through
``sb3-course train`` by :mod:`sb3_course.benchmarks.learning`. Minutes per seed: run with ``-m slow``.
"""

import pytest

from sb3_course.benchmarks.learning import markdown_table, train_seeds


@pytest.mark.slow
@pytest.mark.parametrize(
    "algo,n_timesteps",
    [
        ("reinforce", 300_000),
        # A3C with the recipe's 2 workers: total steps of both workers
        ("a3c", 500_000),
    ],
)
def test_final_model_solves_cartpole(algo: str, n_timesteps: int):
    """The final model's mean deterministic return over 10 episodes >= 475 on 9 of seeds 0-9."""
    # One training process at a time: A3C runs 2 worker processes itself.
    runs = train_seeds(algo, "CartPole-v1", list(range(10)), n_timesteps, eval_freq=10_000, jobs=1)
    print(markdown_table(runs, 475))
    assert sum(run.solved(475) for run in runs) >= 9, markdown_table(runs, 475)

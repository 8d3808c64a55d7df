"""
Learning checks of REINFORCE and A3C with their CartPole-v1 recipes (hyperparams/), trained through
``sb3-course train`` by :mod:`sb3_course.benchmarks.learning`; the spec is the registry's. Minutes per seed: run
with ``-m slow``.
"""

import pytest

from sb3_course.benchmarks.learning import learning_check


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["reinforce", "a3c"])
def test_final_model_solves_cartpole(algo: str):
    # A3C's budget is the total steps of its workers; it runs one process per worker (one seed at a time on 2 CPUs)
    table, passed = learning_check(algo)
    print(table)
    assert passed, table

"""Learning check of CourseDQN with its CartPole-v1 recipe (slow: minutes per seed); the spec is the registry's."""

import pytest

from sb3_course.benchmarks.learning import learning_check


@pytest.mark.slow
def test_course_dqn_final_model_solves_cartpole():
    table, passed = learning_check("course_dqn")
    print(table)
    assert passed, table

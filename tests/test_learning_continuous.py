"""Learning checks of CourseDDPG and CourseSAC with their Pendulum-v1 recipes (slow: minutes each); the spec is the
registry's."""

import pytest

from sb3_course.benchmarks.learning import learning_check


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["course_ddpg", "course_sac"])
def test_final_model_solves_pendulum(algo):
    table, passed = learning_check(algo)
    print(table)
    assert passed, table

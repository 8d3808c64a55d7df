"""Learning checks of CourseDDPG and CourseSAC on Pendulum-v1 with their YAML recipes (slow: minutes each)."""

import pytest

from sb3_course.benchmarks.learning import markdown_table, train_seeds

SEEDS = [0, 1, 2, 3, 4]
THRESHOLD = -200.0


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["course_ddpg", "course_sac"])
def test_pendulum_within_20k_steps(algo):
    runs = train_seeds(algo, "Pendulum-v1", SEEDS, n_timesteps=20_000, eval_freq=2000, jobs=1, eval_episodes=10)
    solved = [run for run in runs if run.first_step_reaching(THRESHOLD) is not None]
    assert len(solved) >= 4, markdown_table(runs, THRESHOLD)

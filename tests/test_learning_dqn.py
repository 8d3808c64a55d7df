import pytest

from sb3_course.benchmarks.learning import markdown_table, train_seeds


@pytest.mark.slow
def test_course_dqn_solves_cartpole():
    """CartPole-v1 recipe: mean deterministic return >= 475 over 10 episodes within 100 000 steps, 4 of 5 seeds."""
    runs = train_seeds("course_dqn", "CartPole-v1", seeds=[0, 1, 2, 3, 4], n_timesteps=100_000, eval_freq=5_000)
    solved = [run for run in runs if run.first_step_reaching(475) is not None]
    assert len(solved) >= 4, markdown_table(runs, 475)

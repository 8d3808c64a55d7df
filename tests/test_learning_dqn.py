import pytest

from sb3_course.benchmarks.learning import markdown_table, train_seeds


@pytest.mark.slow
def test_course_dqn_final_model_solves_cartpole():
    """CartPole-v1 recipe: the final model's mean deterministic return over 10 episodes >= 475 on 9 of seeds 0-9."""
    runs = train_seeds("course_dqn", "CartPole-v1", seeds=list(range(10)), n_timesteps=100_000, eval_freq=5_000)
    print(markdown_table(runs, 475))
    assert sum(run.solved(475) for run in runs) >= 9, markdown_table(runs, 475)

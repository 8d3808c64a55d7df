"""Learning checks of CourseDDPG and CourseSAC on Pendulum-v1 with their YAML recipes (slow: minutes each)."""

import pytest

from sb3_course.benchmarks.learning import markdown_table, train_seeds

THRESHOLD = -200.0


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["course_ddpg", "course_sac"])
def test_final_model_solves_pendulum_in_20k_steps(algo):
    """The final model's mean deterministic return over 10 episodes >= -200 on 9 of seeds 0-9."""
    runs = train_seeds(algo, "Pendulum-v1", list(range(10)), n_timesteps=20_000, eval_freq=2000, jobs=2, eval_episodes=10)
    print(markdown_table(runs, THRESHOLD))
    assert sum(run.solved(THRESHOLD) for run in runs) >= 9, markdown_table(runs, THRESHOLD)

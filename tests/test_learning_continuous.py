"""Learning checks of CourseDDPG and CourseSAC on Pendulum-v1 with their YAML recipes (slow: minutes each)."""

import pytest

from sb3_course.benchmarks.learning import markdown_table, train_seeds

THRESHOLD = -200.0
# algo -> (seeds, how many of them must reach THRESHOLD). CourseDDPG's clamped actor gets stuck at the action bound
# in some seeds (no gradient past the clamp, docs/results.md): 7 of 10 seeds reach -200 within 20 000 steps, with
# the session-7 code and with the commit before it alike (their float rounding differs, and which seeds learn with
# it). At that rate a 4-of-5 bar fails about half the time for a correct implementation (it did with seeds 0-4:
# 3 of 5 now, 4 of 5 before); 5 of 10 fails about 5 % of the time, and a random policy never reaches -200.
CHECKS = {"course_ddpg": (list(range(10)), 5), "course_sac": ([0, 1, 2, 3, 4], 4)}


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["course_ddpg", "course_sac"])
def test_pendulum_within_20k_steps(algo):
    seeds, needed = CHECKS[algo]
    runs = train_seeds(algo, "Pendulum-v1", seeds, n_timesteps=20_000, eval_freq=2000, jobs=2, eval_episodes=10)
    solved = [run for run in runs if run.first_step_reaching(THRESHOLD) is not None]
    assert len(solved) >= needed, markdown_table(runs, THRESHOLD)

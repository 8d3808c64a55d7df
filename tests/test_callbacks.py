import pytest
from stable_baselines3.common.env_util import make_vec_env

from sb3_course import CourseDQN
from sb3_course.common.callbacks import StopTrainingOnSuccessStreak


def test_training_stops_after_the_streak_of_successful_episodes():
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0)
    model = CourseDQN("MlpPolicy", env, policy_kwargs=dict(net_arch=[8]), seed=0)
    # every episode returns at least 1: the second one ends training, at the step that ends it
    model.learn(5_000, callback=StopTrainingOnSuccessStreak(n_episodes=2, min_return=1.0))
    lengths = env.envs[0].get_episode_lengths()  # Monitor's
    assert len(lengths) == 2 and model.num_timesteps == sum(lengths) < 5_000


def test_an_unsuccessful_episode_resets_the_streak():
    callback = StopTrainingOnSuccessStreak(n_episodes=2, min_return=20.0)
    outcomes = []
    for returns in ([25.0], [10.0], [30.0], [], [21.0]):
        callback.locals = {"infos": [{"episode": {"r": r, "l": 1}} for r in returns]}
        outcomes.append(callback._on_step())
    # 25 (streak 1), 10 (0), 30 (1), no episode end (1), 21 (2: stop)
    assert outcomes == [True, True, True, True, False]


@pytest.mark.parametrize("n_episodes", [0, 2.5, True])
def test_the_streak_length_is_checked(n_episodes):
    with pytest.raises(ValueError, match="n_episodes"):
        StopTrainingOnSuccessStreak(n_episodes=n_episodes)

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv, SimpleMultiObsEnv
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_course import CourseDQN
from sb3_course.common.validation import UnsupportedSpaceError
from sb3_course.common.wrappers import CourseCartPoleReward

TINY = dict(net_arch=[8])


def linear_dqn(use_target_network: bool) -> CourseDQN:
    """CourseDQN on a 2-d observation, 2 actions, with a linear Q = W s + b, plain SGD with lr 1."""
    env = gym.make("CartPole-v1")
    env.observation_space = gym.spaces.Box(-10, 10, (2,), np.float32)
    model = CourseDQN(
        "MlpPolicy",
        env,
        learning_rate=1.0,
        gamma=0.5,
        use_target_network=use_target_network,
        policy_kwargs=dict(net_arch=[], optimizer_class=th.optim.SGD),
    )
    model.set_logger(Logger(folder=None, output_formats=[]))
    with th.no_grad():
        model.q_net.q_net[0].weight.copy_(th.tensor([[1.0, 0.0], [0.0, 2.0]]))
        model.q_net.q_net[0].bias.zero_()
        if use_target_network:
            model.q_net_target.q_net[0].weight.zero_()
            model.q_net_target.q_net[0].bias.copy_(th.tensor([0.25, 0.0]))
    # Two transitions: (s=[1, 1], a=0, r=1, s'=[0.5, 1], not terminal), (s=[2, 0], a=1, r=0.5, s'=[3, 3], terminal)
    batch = ReplayBufferSamples(
        observations=th.tensor([[1.0, 1.0], [2.0, 0.0]]),
        actions=th.tensor([[0], [1]]),
        next_observations=th.tensor([[0.5, 1.0], [3.0, 3.0]]),
        dones=th.tensor([[0.0], [1.0]]),
        rewards=th.tensor([[1.0], [0.5]]),
    )
    model.replay_buffer.sample = lambda *args, **kwargs: batch  # type: ignore[method-assign]
    return model


def test_td_target_without_target_network_uses_online_net_and_huber():
    model = linear_dqn(use_target_network=False)
    model.train(gradient_steps=1, batch_size=2)
    # Targets by hand: y1 = 1 + 0.5 * max(0.5, 2) = 2, y2 = 0.5 (terminal).
    # Q(s1, 0) = 1, Q(s2, 1) = 0 -> errors -1 and -0.5 -> Huber 0.5 and 0.125 -> mean 0.3125 (MSE would be 0.625).
    assert model.logger.name_to_value["train/loss"] == pytest.approx(0.3125)
    # Semi-gradient: dL/dQ = clip(Q - y, -1, 1) / 2 = -0.5 and -0.25; SGD lr 1 -> W += 0.5 * s1 (row 0), 0.25 * s2 (row 1).
    # A gradient through the target would also move row 1 (the argmax of s1').
    np.testing.assert_allclose(model.q_net.q_net[0].weight.detach(), [[1.5, 0.5], [0.5, 2.0]])
    np.testing.assert_allclose(model.q_net.q_net[0].bias.detach(), [0.5, 0.25])


def test_td_target_with_target_network():
    model = linear_dqn(use_target_network=True)
    model.train(gradient_steps=1, batch_size=2)
    # Target net Q'(s') = [0.25, 0] -> y1 = 1 + 0.5 * 0.25 = 1.125, y2 = 0.5 -> errors -0.125, -0.5
    # Huber: 0.5 * 0.125^2 = 0.0078125 and 0.125 -> mean 0.06640625
    assert model.logger.name_to_value["train/loss"] == pytest.approx(0.06640625)
    # The target network itself is not trained.
    np.testing.assert_allclose(model.q_net_target.q_net[0].weight.detach(), np.zeros((2, 2)))


def test_target_network_hard_update_and_none_by_default():
    model = CourseDQN("MlpPolicy", "CartPole-v1", policy_kwargs=TINY, learning_starts=10, seed=0)
    assert model.q_net_target is model.q_net
    model.learn(100)
    target = CourseDQN(
        "MlpPolicy", "CartPole-v1", policy_kwargs=TINY, learning_starts=10, seed=0,
        use_target_network=True, target_update_interval=1000,
    )  # fmt: skip
    assert target.q_net_target is not target.q_net
    initial = [p.clone() for p in target.q_net_target.parameters()]
    target.learn(100)
    pairs = list(zip(target.q_net.parameters(), target.q_net_target.parameters(), strict=True))
    assert all(th.equal(p, q) for p, q in zip(initial, target.q_net_target.parameters(), strict=True))
    assert any(not th.equal(online, copy) for online, copy in pairs)
    # The 1000th environment step copies the online network (tau = 1: hard update)
    target._n_calls = 999
    target._on_step()
    assert all(th.equal(online, copy) for online, copy in pairs)


class RecordEpsilon(BaseCallback):
    """Records, for every step, the epsilon that chose the step's action and the episodes finished before it."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[float, int]] = []

    def _on_step(self) -> bool:
        self.records.append((self.model.exploration_rate, self.model._episode_num))
        return True


def test_harmonic_exploration_over_episodes():
    model = CourseDQN("MlpPolicy", "CartPole-v1", policy_kwargs=TINY, exploration_initial_eps=0.5, seed=0)
    recorder = RecordEpsilon()
    model.learn(300, callback=recorder)
    episodes = {k for _, k in recorder.records}
    assert len(episodes) > 5
    for epsilon, finished in recorder.records:
        assert epsilon == pytest.approx(0.5 / (finished + 1))
    assert model.logger.name_to_value["rollout/exploration_rate"] == pytest.approx(0.5 / (model._episode_num + 1))


def test_harmonic_exploration_floor(tmp_path):
    # max(eps0 / (k + 1), floor): the harmonic values while above the floor, the floor after
    model = CourseDQN(
        "MlpPolicy", "CartPole-v1", policy_kwargs=TINY, exploration_initial_eps=0.5, exploration_min_eps=0.1, seed=0
    )
    recorder = RecordEpsilon()
    model.learn(400, callback=recorder)
    assert max(finished for _, finished in recorder.records) > 5
    for epsilon, finished in recorder.records:
        assert epsilon == pytest.approx(0.5 / (finished + 1) if finished < 4 else 0.1)
    model.save(tmp_path / "dqn")
    assert CourseDQN.load(tmp_path / "dqn").exploration_min_eps == 0.1


def test_exploration_floor_of_a_linear_schedule_warns():
    with pytest.warns(UserWarning, match=r"exploration_min_eps only with exploration_decay='harmonic'"):
        CourseDQN("MlpPolicy", "CartPole-v1", exploration_decay="linear", exploration_min_eps=0.1)


def test_linear_exploration_is_sb3s():
    model = CourseDQN(
        "MlpPolicy", "CartPole-v1", policy_kwargs=TINY, exploration_decay="linear",
        exploration_initial_eps=1.0, exploration_final_eps=0.1, exploration_fraction=0.5,
    )  # fmt: skip
    model.learn(200)
    assert model.exploration_rate == pytest.approx(0.1)


def test_without_target_network_and_linear_exploration_it_is_sb3s_dqn_bit_for_bit():
    # The matched DQN pair's implementation check, deterministic: SB3's own DQN class (its collect loop, its
    # _on_step copying the target every step, its exploration and train) on the course's network class and
    # with the same (non-fused) Adam ends with the same weights, replay buffer and actions as CourseDQN without
    # target network. The parity runs' remaining difference is the harmonic epsilon (and the fused Adam's
    # rounding, which CartPole's unstable DQN turns into different runs from the same seed).
    from stable_baselines3 import DQN

    from sb3_course.dqn.policies import CourseDQNPolicy

    settings = dict(
        learning_rate=1e-3, buffer_size=2_000, learning_starts=100, batch_size=32, gamma=0.99, train_freq=1,
        gradient_steps=1, exploration_fraction=0.3, exploration_initial_eps=0.5, exploration_final_eps=0.05,
        max_grad_norm=float("inf"), seed=5, policy_kwargs=dict(net_arch=[32, 32], optimizer_kwargs=dict(fused=False)),
    )  # fmt: skip
    course = CourseDQN("MlpPolicy", "CartPole-v1", exploration_decay="linear", **settings).learn(3_000)
    sb3 = DQN(CourseDQNPolicy, "CartPole-v1", target_update_interval=1, tau=1.0, **settings).learn(3_000)
    assert course.q_net_target is course.q_net and course._n_updates == sb3._n_updates == 2_900
    for name, tensor in course.q_net.state_dict().items():
        assert th.equal(tensor, sb3.q_net.state_dict()[name]), name
    for name in ("observations", "actions", "rewards", "dones"):
        np.testing.assert_array_equal(getattr(course.replay_buffer, name), getattr(sb3.replay_buffer, name))
    assert course.exploration_rate == sb3.exploration_rate
    obs = np.stack([course.observation_space.sample() for _ in range(16)])
    np.testing.assert_array_equal(course.predict(obs, deterministic=True)[0], sb3.predict(obs, deterministic=True)[0])


def test_save_load_identical_predict(tmp_path):
    model = CourseDQN("MlpPolicy", "CartPole-v1", policy_kwargs=TINY, learning_starts=50, seed=1)
    model.learn(300)
    model.save(tmp_path / "dqn")
    loaded = CourseDQN.load(tmp_path / "dqn")
    observations = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0], loaded.predict(observations, deterministic=True)[0]
    )
    assert loaded.use_target_network is False
    assert loaded.q_net_target is loaded.q_net
    assert loaded.exploration_decay == "harmonic"


def test_learn_with_two_envs_and_progress_bar():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = CourseDQN("MlpPolicy", env, policy_kwargs=TINY, learning_starts=20)
    model.learn(200, progress_bar=True)
    assert model.num_timesteps == 200
    assert model._n_updates > 0


def test_box_action_space_rejected_at_construction():
    with pytest.raises(UnsupportedSpaceError, match=r"CourseDQN supports Discrete action spaces.*Box.*CourseDDPG"):
        CourseDQN("MlpPolicy", "Pendulum-v1")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(gamma=1.5), "gamma"),
        (dict(tau=-0.1), "tau"),
        (dict(exploration_decay="cosine"), "exploration_decay"),
        (dict(exploration_min_eps=1.5), "exploration_min_eps"),
        (dict(exploration_min_eps=-0.1), "exploration_min_eps"),
    ],
)
def test_invalid_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CourseDQN("MlpPolicy", "CartPole-v1", **kwargs)


def test_course_cartpole_reward_keeps_monitor_return():
    env = make_vec_env("CartPole-v1", n_envs=1, seed=0, wrapper_class=CourseCartPoleReward)
    env.reset()
    rewards, infos = [], []
    while not infos or "episode" not in infos[0]:
        _, reward, _, infos = env.step(np.array([0]))
        rewards.append(float(reward[0]))
    # Pushing left only ends the episode within a few steps: shaped rewards 0, ..., 0, -1
    assert rewards[-1] == -1.0 and set(rewards[:-1]) <= {0.0}
    # Monitor sits inside the wrapper: it reports the environment's return (+1 per step)
    assert infos[0]["episode"]["r"] == len(rewards)


@pytest.mark.parametrize(
    "policy, make_env",
    [
        ("CnnPolicy", lambda: FakeImageEnv(screen_height=36, screen_width=36, n_channels=1, discrete=True)),
        ("MultiInputPolicy", lambda: SimpleMultiObsEnv(random_start=True)),
    ],
)
def test_image_and_dict_observations(policy, make_env):
    model = CourseDQN(policy, make_env(), learning_starts=20, buffer_size=200, seed=0)
    model.learn(60)
    obs, _ = model.get_env().envs[0].reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert model.action_space.contains(int(action))

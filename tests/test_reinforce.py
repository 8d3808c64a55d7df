import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_course import REINFORCE
from sb3_course.common.returns import discounted_returns, l2_normalize
from sb3_course.reinforce.episodes import Episode

TINY = dict(net_arch=[8])


class CountingEnv(gym.Env):
    """Observation ``[episode id, step]``; episodes end after 3 to 7 steps, or never (time limit only)."""

    def __init__(self, id_offset: int = 0, terminate: bool = True) -> None:
        self.observation_space = spaces.Box(0, np.inf, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.id_offset, self.terminate = id_offset, terminate
        self.episode_id, self.t, self.length = id_offset - 1, 0, 0

    def _obs(self) -> np.ndarray:
        return np.array([self.episode_id, self.t], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode_id += 1
        self.t, self.length = 0, int(self.np_random.integers(3, 8))
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, self.terminate and self.t >= self.length, False, {}


def test_returns_across_episode_ends_by_hand():
    # Step 1 ends an episode: G_1 = r_1 (its truncation bootstrap would be in r_1), then 1 + 0.5 * V(s_4) = 3
    np.testing.assert_allclose(
        discounted_returns(np.ones(4), 0.5, last_value=4.0, episode_ends=np.array([False, True, False, False])),
        [1.5, 1.0, 2.5, 3.0],
    )


@pytest.mark.parametrize("time_limit", [500, 10])
def test_fixed_batches_with_baseline_are_a2c_with_gae_lambda_1(time_limit: int):
    """
    ``n_steps`` mode against SB3's A2C (gae_lambda 1, Adam, normalised advantages): same seed, same envs, the same
    runs. Two envs of CartPole, three updates of 64 steps each across episode ends (time limit 10: truncations,
    bootstrapped from V): the weights equal A2C's bit for bit (same buffer, same arithmetic, same shuffled batch).
    """
    env_kwargs = dict(max_episode_steps=time_limit)

    def make_env():
        return make_vec_env("CartPole-v1", n_envs=2, seed=0, env_kwargs=env_kwargs)

    settings = dict(learning_rate=1e-3, gamma=0.99, vf_coef=0.5, ent_coef=0.01, max_grad_norm=0.5, seed=0)
    a2c = A2C(
        "MlpPolicy", make_env(), n_steps=64, gae_lambda=1.0, use_rms_prop=False,
        normalize_advantage=True, policy_kwargs=dict(net_arch=[16], activation_fn=th.nn.ReLU), **settings,
    )  # fmt: skip
    initial = {name: param.clone() for name, param in a2c.policy.state_dict().items()}
    a2c.learn(3 * 128)
    # Built after A2C's run: the seed is set at construction and both draw actions from torch's global generator
    model = REINFORCE(
        "MlpPolicy", make_env(), n_steps=64, use_baseline=True,
        normalize_advantage=True, policy_kwargs=dict(net_arch=[16]), **settings,
    )  # fmt: skip
    assert all(th.equal(param, initial[name]) for name, param in model.policy.state_dict().items())
    model.learn(3 * 128)
    assert model.num_timesteps == a2c.num_timesteps == 3 * 128 and model._n_updates == 3
    assert model._episode_num > 6, "the batches must run across episode ends"
    for name, param in a2c.policy.state_dict().items():
        assert th.equal(model.policy.state_dict()[name], param), name
        assert not th.equal(param, initial[name]) or name == "log_std", name


def test_discounted_returns_by_hand():
    # G_2 = 1, G_1 = 1 + 0.5 * 1, G_0 = 1 + 0.5 * 1.5
    np.testing.assert_allclose(discounted_returns(np.ones(3), 0.5), [1.75, 1.5, 1.0])
    # Bootstrapped from G_3 = 2: every G_t = 1 + 0.5 * 2 = 2
    np.testing.assert_allclose(discounted_returns(np.ones(3), 0.5, last_value=2.0), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(discounted_returns(np.array([0.0, 0.0, 3.0]), 1.0), [3.0, 3.0, 3.0])


def test_l2_normalisation_by_hand():
    np.testing.assert_allclose(l2_normalize(np.array([3.0, 4.0])), [0.6, 0.8])


def _numpy_log_probs(model: REINFORCE, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    params = {name: value.detach().numpy() for name, value in model.policy.state_dict().items()}
    hidden = np.maximum(0.0, obs @ params["mlp_extractor.policy_net.0.weight"].T + params["mlp_extractor.policy_net.0.bias"])
    logits = hidden @ params["action_net.weight"].T + params["action_net.bias"]
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return log_softmax[np.arange(len(actions)), actions]


@pytest.mark.parametrize("normalize", [True, False])
def test_loss_on_fixed_batch(normalize: bool):
    model = REINFORCE("MlpPolicy", "CartPole-v1", gamma=0.9, normalize_advantage=normalize, policy_kwargs=TINY, seed=0)
    model.set_logger(configure(None, []))
    rng = np.random.default_rng(0)
    episodes = [Episode(), Episode()]
    for episode, length in zip(episodes, (3, 2), strict=True):
        for _ in range(length):
            episode.observations.append(rng.normal(size=4).astype(np.float32))
            episode.actions.append(np.int64(rng.integers(2)))
            episode.rewards.append(1.0)
    obs = np.stack([o for e in episodes for o in e.observations])
    actions = np.array([a for e in episodes for a in e.actions])
    # By hand, gamma 0.9: episode 1 [2.71, 1.9, 1], episode 2 [1.9, 1]
    returns = np.array([2.71, 1.9, 1.0, 1.9, 1.0])
    if normalize:
        returns = (returns - returns.mean()) / returns.std(ddof=1)
    expected = -np.sum(_numpy_log_probs(model, obs, actions) * returns) / 5  # 1 / (T_1 + T_2)
    model.train(episodes)
    assert model.logger.name_to_value["train/policy_loss"] == pytest.approx(expected, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("terminate", [True, False])
def test_episodes_are_whole_and_used_once(terminate: bool):
    env = DummyVecEnv(
        [lambda i=i: gym.wrappers.TimeLimit(CountingEnv(1000 * i, terminate), max_episode_steps=5) for i in range(3)]
    )
    model = REINFORCE("MlpPolicy", env, n_episodes=4, policy_kwargs=TINY, seed=0)
    batches: list[list[Episode]] = []
    train = model.train
    model.train = lambda episodes: (batches.append(episodes), train(episodes))  # type: ignore[method-assign]
    model.learn(300)
    seen = set()
    for batch in batches:
        assert len(batch) == 4
        for episode in batch:
            obs = np.stack(episode.observations)
            # Starts at a reset, steps 0 .. T-1 without a gap, all of one episode
            np.testing.assert_array_equal(obs[:, 1], np.arange(len(episode)))
            assert len(set(obs[:, 0])) == 1 and obs[0, 0] not in seen
            seen.add(obs[0, 0])
            # A time-limit truncation ends an episode like a termination
            assert 3 <= len(episode) <= 7 if terminate else len(episode) == 5


@pytest.mark.parametrize(
    "env_id,kwargs", [("CartPole-v1", {}), ("Pendulum-v1", dict(use_baseline=True, ent_coef=0.01, max_grad_norm=0.5))]
)
def test_learn_discrete_and_box(env_id: str, kwargs: dict):
    model = REINFORCE("MlpPolicy", make_vec_env(env_id, n_envs=2), n_episodes=2, policy_kwargs=TINY, seed=0, **kwargs)
    before = [p.clone() for p in model.policy.parameters()]
    model.learn(500)
    assert model.num_timesteps >= 500 and model._n_updates > 0
    assert any(not th.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))
    assert len(model.ep_info_buffer) > 0


def test_save_load_predict(tmp_path):
    model = REINFORCE("MlpPolicy", "CartPole-v1", policy_kwargs=TINY, seed=0).learn(300)
    obs = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    model.save(tmp_path / "reinforce.zip")
    loaded = REINFORCE.load(tmp_path / "reinforce.zip")
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    assert loaded.n_episodes == 2 and loaded.gamma == 1.0


def test_progress_bar():
    REINFORCE("MlpPolicy", "CartPole-v1", policy_kwargs=TINY).learn(200, progress_bar=True)


def test_construction_errors():
    with pytest.raises(AssertionError, match="only supports"):
        REINFORCE("MlpPolicy", make_vec_env(lambda: _tuple_action_env()))
    with pytest.raises(ValueError, match="gamma"):
        REINFORCE("MlpPolicy", "CartPole-v1", gamma=1.5)
    with pytest.raises(ValueError, match="n_episodes"):
        REINFORCE("MlpPolicy", make_vec_env("CartPole-v1", n_envs=3), n_episodes=2)
    with pytest.raises(ValueError, match="use_baseline=True"):
        REINFORCE("MlpPolicy", "CartPole-v1", n_steps=32)


def _tuple_action_env() -> gym.Env:
    env = CountingEnv()
    env.action_space = spaces.Tuple([spaces.Discrete(2), spaces.Discrete(2)])
    return env

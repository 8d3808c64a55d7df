import json
import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C
from stable_baselines3.common.buffers import RolloutBuffer
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


def record_gradients(optimizer: th.optim.Optimizer) -> list[th.Tensor]:
    """The gradients ``optimizer.step()`` sees, as they are filled in (zeros for a parameter left out of the loss)."""
    gradients: list[th.Tensor] = []
    step = optimizer.step

    def recording_step(*args, **kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"]]
        gradients.extend(th.zeros_like(p) if p.grad is None else p.grad.clone() for p in params)
        return step(*args, **kwargs)

    optimizer.step = recording_step  # type: ignore[method-assign]
    return gradients


@pytest.mark.parametrize("use_baseline", [False, True])
def test_update_is_a2cs_on_the_same_whole_episodes(use_baseline: bool):
    """
    REINFORCE's update against SB3's A2C on one batch of whole episodes, from the same weights: A2C's rollout buffer
    filled with the same steps (gae_lambda 1, the last step terminal, so its returns are the Monte-Carlo ``G_t``;
    without a baseline its values are 0 and vf_coef 0, so its advantages are ``G_t`` and no value loss is trained).
    The gradients and the new weights are A2C's: the same loss, advantage normalisation, entropy bonus and clipping.
    """
    settings = dict(learning_rate=1e-3, gamma=0.9, ent_coef=0.01, max_grad_norm=0.5, seed=0, normalize_advantage=True)
    settings = {**settings, "vf_coef": 0.5 if use_baseline else 0.0, "policy_kwargs": TINY}
    model = REINFORCE("MlpPolicy", "CartPole-v1", use_baseline=use_baseline, **settings)
    a2c = A2C(type(model.policy), "CartPole-v1", n_steps=9, gae_lambda=1.0, use_rms_prop=False, **settings)
    a2c.policy.load_state_dict(model.policy.state_dict())
    model.set_logger(configure(None, []))
    a2c.set_logger(configure(None, []))
    rng = np.random.default_rng(0)
    episodes = [Episode(), Episode(), Episode()]
    for episode, length in zip(episodes, (4, 2, 3), strict=True):
        for _ in range(length):
            episode.observations.append(rng.normal(size=4).astype(np.float32))
            episode.actions.append(np.int64(rng.integers(2)))
            episode.rewards.append(float(rng.normal()))
    buffer = a2c.rollout_buffer
    for episode in episodes:
        for t, (obs, action, reward) in enumerate(zip(episode.observations, episode.actions, episode.rewards, strict=True)):
            obs_tensor = th.as_tensor(obs[None])
            with th.no_grad():
                value = a2c.policy.predict_values(obs_tensor) if use_baseline else th.zeros(1, 1)
            buffer.add(obs[None], np.array([[action]]), np.array([reward]), np.array([t == 0]), value, th.zeros(1))
    buffer.compute_returns_and_advantage(last_values=th.zeros(1, 1), dones=np.array([True]))
    np.testing.assert_allclose(
        buffer.returns[:, 0],
        np.concatenate([discounted_returns(np.array(e.rewards), 0.9) for e in episodes]),
        rtol=1e-5,
        atol=1e-6,
    )
    model_gradients, a2c_gradients = record_gradients(model.policy.optimizer), record_gradients(a2c.policy.optimizer)
    model.train(episodes)
    a2c.train()
    assert len(model_gradients) == len(a2c_gradients) > 0
    for model_gradient, a2c_gradient in zip(model_gradients, a2c_gradients, strict=True):
        th.testing.assert_close(model_gradient, a2c_gradient, rtol=1e-5, atol=1e-7)
    for name, param in a2c.policy.state_dict().items():
        th.testing.assert_close(model.policy.state_dict()[name], param, rtol=1e-5, atol=1e-7, msg=name)
    # And it moved: the comparison is not of two untouched networks
    assert any(g.abs().sum() > 0 for g in model_gradients)


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


def test_progress_bar_ends_at_the_budget(progress_bars):
    # The budget cuts the last batch, so the bar (which counts every env step) ends exactly at its total
    model = REINFORCE("MlpPolicy", "CartPole-v1", policy_kwargs=TINY, seed=0).learn(200, progress_bar=True)
    assert progress_bars == [(200, 200)] and model.num_timesteps == 200 and model._n_updates > 0


def test_budget_cuts_the_last_batch_which_is_not_trained_on():
    # Episodes of exactly 5 steps, 2 per batch: updates after steps 10 and 20; the batch from step 21 is cut at 25
    env = DummyVecEnv([lambda: gym.wrappers.TimeLimit(CountingEnv(terminate=False), max_episode_steps=5)])
    model = REINFORCE("MlpPolicy", env, n_episodes=2, policy_kwargs=TINY, seed=0)
    batches: list[list[Episode]] = []
    train = model.train
    model.train = lambda episodes: (batches.append(episodes), train(episodes))  # type: ignore[method-assign]
    model.learn(25)
    assert model.num_timesteps == 25 and model._n_updates == 2 and [len(b) for b in batches] == [2, 2]
    # The next call starts a new batch of whole episodes
    model.learn(10, reset_num_timesteps=False)
    assert model.num_timesteps == 35 and model._n_updates == 3
    # A VecEnv steps all its envs: the budget is passed by at most n_envs - 1 steps (6 batches of 15 steps, cut at 102)
    env = DummyVecEnv([lambda: gym.wrappers.TimeLimit(CountingEnv(terminate=False), max_episode_steps=5)] * 3)
    model = REINFORCE("MlpPolicy", env, n_episodes=3, policy_kwargs=TINY)
    assert model.learn(100).num_timesteps == 102 and model._n_updates == 6
    # A call whose budget holds no whole batch warns that it made no update
    with pytest.warns(UserWarning, match="REINFORCE made no update in 12 steps"):
        model.learn(10)


# learn(2000) on envs whose episodes never end or last 100 000 steps, in a subprocess with a timeout, so that a
# regression fails instead of hanging the test run. Prints, per case, the steps done, the updates, whether it
# warned, and (one env) the peak of Python's allocations during learn(): the batch held in memory.
LONG_EPISODES = """
import json, tracemalloc, warnings
import gymnasium as gym, numpy as np, torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv
from sb3_course import REINFORCE

th.set_num_threads(1)  # as tests/conftest.py: tiny networks, shared cores


class LongEnv(gym.Env):
    observation_space, action_space = spaces.Box(-1, 1, (4,), np.float32), spaces.Discrete(2)

    def __init__(self, length):
        self.length, self.t = length, 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(4, np.float32), 1.0, self.length is not None and self.t >= self.length, False, {}

results = []
for length, n_envs, kwargs in [(None, 1, {}), (None, 3, dict(use_baseline=True)), (100_000, 2, {})]:
    env = DummyVecEnv([lambda: LongEnv(length)] * n_envs)
    model = REINFORCE("MlpPolicy", env, n_episodes=n_envs, policy_kwargs=dict(net_arch=[8]), **kwargs)
    measure = n_envs == 1  # tracemalloc slows every allocation: one case
    if measure:
        tracemalloc.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.learn(2000)
    peak = tracemalloc.get_traced_memory()[1] if measure else None
    tracemalloc.stop()
    warned = any("made no update" in str(w.message) for w in caught)
    results.append(dict(n_envs=n_envs, steps=model.num_timesteps, updates=model._n_updates, warned=warned, peak=peak))
print(json.dumps(results))
"""


def test_learn_returns_at_the_budget_when_episodes_never_end():
    done = subprocess.run([sys.executable, "-c", LONG_EPISODES], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    assert len(results) == 3
    for result in results:
        assert 2000 <= result["steps"] <= 2000 + result["n_envs"] - 1, result
        # No episode ended, so no Monte-Carlo return and no update, and the user is told
        assert result["updates"] == 0 and result["warned"], result
    # The batch held is bounded by the budget: about 0.3 kB per env step with a 4-float observation, with a margin
    assert 0 < results[0]["peak"] < 2000 * 2_000, results[0]


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(n_episodes=2.5), TypeError, "n_episodes"),
        (dict(n_episodes="2"), TypeError, "n_episodes"),
        (dict(n_episodes=0), ValueError, "n_episodes"),
        (dict(learning_rate="1e-3"), TypeError, "learning_rate"),
        (dict(learning_rate=math.inf), ValueError, "learning_rate"),
        (dict(learning_rate=math.nan), ValueError, "learning_rate"),
        (dict(gamma=1.5), ValueError, "gamma"),
        (dict(ent_coef=-1.0), ValueError, "ent_coef"),
        (dict(vf_coef=math.inf), ValueError, "vf_coef"),
        (dict(max_grad_norm=0.0), ValueError, "max_grad_norm"),
        (dict(sde_sample_freq=2.5), TypeError, "sde_sample_freq"),
        (dict(normalize_advantage="no"), TypeError, "normalize_advantage"),
        (dict(use_baseline="False"), TypeError, "use_baseline"),
        (dict(n_steps=32), TypeError, "REINFORCE updates on whole episodes; n_steps is A2C's: use stable_baselines3.A2C"),
        (dict(gae_lambda=0.9), TypeError, "gae_lambda is A2C's: use stable_baselines3.A2C"),
        (dict(rollout_buffer_class=RolloutBuffer), TypeError, "rollout_buffer_class is A2C's"),
        (dict(rollout_buffer_kwargs=dict(gamma=0.5)), TypeError, "rollout_buffer_kwargs is A2C's"),
        (dict(n_episode=2), TypeError, "unexpected keyword argument 'n_episode'"),
    ],
)
def test_construction_errors_name_the_argument(kwargs: dict, error: type, match: str):
    with pytest.raises(error, match=match):
        REINFORCE("MlpPolicy", "CartPole-v1", **kwargs)


def test_construction_errors():
    with pytest.raises(AssertionError, match="only supports"):
        REINFORCE("MlpPolicy", make_vec_env(lambda: _tuple_action_env()))
    with pytest.raises(ValueError, match="n_episodes"):
        REINFORCE("MlpPolicy", make_vec_env("CartPole-v1", n_envs=3), n_episodes=2)


def test_numbers_from_yaml_are_accepted():
    # YAML 1.1 reads 1e2 as a float and NumPy scalars come from sweeps: integral values are integers
    model = REINFORCE("MlpPolicy", "CartPole-v1", n_episodes=4.0, gamma=np.float32(0.5), stats_window_size=np.int64(32))
    assert (model.n_episodes, model.gamma, model._stats_window_size) == (4, 0.5, 32)
    assert type(model.n_episodes) is int and type(model.gamma) is float and type(model._stats_window_size) is int


def test_load_with_more_envs_than_the_default_n_episodes(tmp_path):
    # load() builds the class with its defaults (n_episodes=2) before it restores the saved n_episodes=4
    model = REINFORCE("MlpPolicy", make_vec_env("CartPole-v1", n_envs=4), n_episodes=4, policy_kwargs=TINY, seed=0)
    model.save(tmp_path / "m")
    loaded = REINFORCE.load(tmp_path / "m", env=make_vec_env("CartPole-v1", n_envs=4))
    assert loaded.n_episodes == loaded.n_envs == 4
    assert loaded.learn(400)._n_updates > 0


def _tuple_action_env() -> gym.Env:
    env = CountingEnv()
    env.action_space = spaces.Tuple([spaces.Discrete(2), spaces.Discrete(2)])
    return env

import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.torch_layers import NatureCNN
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_course import CourseSAC
from sb3_course.common.validation import UnsupportedSpaceError
from sb3_course.sac.policies import TanhLogStdActor

from hand import feed_fixed_pendulum_batch, linear, reloaded_with_replay_buffer

# One torch thread: the tests share small CI machines

TINY = dict(net_arch=[4])
GAMMA, TAU, ALPHA = 0.5, 0.1, 0.2


def gaussian_by_hand(actor, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """mu = Wm h + bm and log sigma = tanh(Ws h + bs), h = relu(W1 s + b1)"""
    hidden = linear(obs, actor.latent_pi[0]).relu()
    return linear(hidden, actor.mu), th.tanh(linear(hidden, actor.log_std))


def squashed_sample_by_hand(actor, obs: th.Tensor, eps: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """a = tanh(u), u = mu + sigma * eps; log pi = sum_i [log N(u_i; mu_i, sigma_i) - log(1 - a_i^2 + 1e-7)]"""
    mean, log_std = gaussian_by_hand(actor, obs)
    u = mean + log_std.exp() * eps
    log_normal = -0.5 * eps**2 - log_std - 0.5 * math.log(2 * math.pi)
    action = th.tanh(u)
    return action, (log_normal - th.log(1 - action**2 + 1e-7)).sum(dim=1, keepdim=True)


def q_by_hand(q_net, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """Q(s, a) = W2 relu(W1 [s, a] + b1) + b2"""
    return linear(linear(th.cat([obs, actions], dim=1), q_net[0]).relu(), q_net[2])


def min_q_by_hand(critic, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
    return th.min(q_by_hand(critic.qf0, obs, actions), q_by_hand(critic.qf1, obs, actions))


def test_log_prob_correction_and_std_range_by_hand():
    model = CourseSAC("MlpPolicy", "Pendulum-v1", policy_kwargs=TINY, seed=0)
    actor = model.actor
    obs = th.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -3.0], [-1.0, 0.5, 0.5]])
    with th.no_grad():
        # Saturate tanh for some samples (tanh(u) == 1 in float32): there the 1e-7, not SB3's 1e-6, sets log pi
        actor.latent_pi[0].bias[0] = 3.0
        actor.mu.weight.zero_()
        actor.mu.weight[0, 0] = 20.0
        actor.mu.bias.fill_(-0.5)
    th.manual_seed(7)
    actions, log_prob = actor.action_log_prob(obs)
    th.manual_seed(7)
    expected_actions, expected_log_prob = squashed_sample_by_hand(actor, obs, th.randn(3, 1))
    assert (expected_actions.abs() == 1).any(), "the fixture should saturate tanh"
    th.testing.assert_close(actions.detach(), expected_actions)
    th.testing.assert_close(log_prob.detach().reshape(-1, 1), expected_log_prob)
    # Deterministic action tanh(mu), rescaled to Pendulum's [-2, 2] by predict
    mean, _ = gaussian_by_hand(actor, obs)
    predicted, _ = model.predict(obs.numpy(), deterministic=True)
    np.testing.assert_allclose(predicted, 2.0 * th.tanh(mean).numpy(), rtol=1e-6)
    # sigma = exp(tanh(.)) lies in [1/e, e] even for extreme inputs
    _, log_std, _ = actor.get_action_dist_params(1e4 * th.randn(64, 3))
    assert log_std.abs().max() <= 1.0 and log_std.abs().max() > 0.99


def sac_on_fixed_batch(ent_coef: float | str = ALPHA) -> tuple[CourseSAC, ReplayBufferSamples]:
    """A tiny CourseSAC whose replay buffer always returns the same 3 transitions (one terminal)."""
    th.manual_seed(0)
    model = CourseSAC("MlpPolicy", "Pendulum-v1", gamma=GAMMA, tau=TAU, ent_coef=ent_coef, policy_kwargs=TINY)
    model.set_logger(Logger(folder=None, output_formats=[]))
    with th.no_grad():
        for p_target, p in zip(model.critic_target.parameters(), model.critic.parameters(), strict=True):
            p_target.copy_(0.5 * p + 0.3)
    batch = feed_fixed_pendulum_batch(model)
    return model, batch


def test_clipped_double_q_target_losses_and_soft_update_by_hand():
    model, batch = sac_on_fixed_batch()
    obs, next_obs = batch.observations, batch.next_observations
    # SAC.train draws the policy's noise for s first, then for s'
    th.manual_seed(3)
    eps_pi, eps_next = th.randn(3, 1), th.randn(3, 1)
    next_actions, next_log_prob = squashed_sample_by_hand(model.actor, next_obs, eps_next)
    # y = r + gamma * (1 - terminated) * (min(Q1', Q2')(s', a') - alpha * log pi(a'|s'))
    soft_next_value = min_q_by_hand(model.critic_target, next_obs, next_actions) - ALPHA * next_log_prob
    target = batch.rewards + GAMMA * (1 - batch.dones) * soft_next_value
    mse = [
        float(((q_by_hand(q_net, obs, batch.actions) - target) ** 2).mean()) for q_net in (model.critic.qf0, model.critic.qf1)
    ]
    actions_pi, log_prob_pi = squashed_sample_by_hand(model.actor, obs, eps_pi)
    critic_target_before = [p.detach().clone() for p in model.critic_target.parameters()]

    th.manual_seed(3)
    model.train(gradient_steps=1, batch_size=3)

    logged = model.logger.name_to_value
    # SB3 logs 0.5 * (mse(Q1, y) + mse(Q2, y)), half the notes' sum (same Adam step)
    assert logged["train/critic_loss"] == pytest.approx(0.5 * (mse[0] + mse[1]), rel=1e-5)
    # Policy loss (alpha * log pi - min(Q1, Q2)).mean(), with the critics after their step
    expected_actor_loss = float((ALPHA * log_prob_pi - min_q_by_hand(model.critic, obs, actions_pi)).mean())
    assert logged["train/actor_loss"] == pytest.approx(expected_actor_loss, rel=1e-5)
    assert logged["train/ent_coef"] == pytest.approx(ALPHA)
    for p, p_target, p_before in zip(
        model.critic.parameters(), model.critic_target.parameters(), critic_target_before, strict=True
    ):
        th.testing.assert_close(p_target.detach(), TAU * p.detach() + (1 - TAU) * p_before)


def test_auto_entropy_coefficient_option():
    model, _ = sac_on_fixed_batch(ent_coef="auto")
    model.train(gradient_steps=2, batch_size=3)
    assert model.log_ent_coef is not None and model.target_entropy == -1.0
    assert "train/ent_coef_loss" in model.logger.name_to_value


def test_warmup_actions_cover_whole_action_space():
    model = CourseSAC("MlpPolicy", "Pendulum-v1", learning_starts=400, policy_kwargs=TINY, seed=0)
    model.learn(400)
    stored = model.replay_buffer.actions[:400, 0, 0]
    # Uniform over [-1, 1] (normalised; [-2, 2] for Pendulum), not the notes' np.random.rand in [0, 1)
    assert stored.min() < -0.9 and stored.max() > 0.9 and abs(stored.mean()) < 0.15
    assert model._n_updates == 0


def test_save_load_same_predict_and_replay_buffer(tmp_path):
    model = CourseSAC("MlpPolicy", "Pendulum-v1", learning_starts=50, batch_size=32, policy_kwargs=TINY, seed=1)
    loaded = reloaded_with_replay_buffer(model.learn(200), tmp_path)
    assert loaded.replay_buffer.size() == 200
    assert float(loaded.ent_coef_tensor) == pytest.approx(ALPHA)
    loaded.set_env(gym.make("Pendulum-v1"))
    loaded.learn(60, reset_num_timesteps=False)


def test_learn_with_two_envs_and_progress_bar():
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    model = CourseSAC("MlpPolicy", env, learning_starts=20, batch_size=32, policy_kwargs=TINY)
    model.learn(100, progress_bar=True)
    assert model.num_timesteps == 100 and model._n_updates > 0


def test_discrete_action_space_rejected_at_construction():
    with pytest.raises(UnsupportedSpaceError, match=r"CourseSAC supports Box action spaces.*Discrete.*CourseDQN"):
        CourseSAC("MlpPolicy", "CartPole-v1")


@pytest.mark.parametrize(
    "kwargs, name", [(dict(gamma=-0.1), "gamma"), (dict(tau=1.5), "tau"), (dict(ent_coef=-0.2), "ent_coef")]
)
def test_invalid_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CourseSAC("MlpPolicy", "Pendulum-v1", **kwargs)


def test_cnn_policy_is_the_course_actor_on_nature_cnn():
    env = FakeImageEnv(screen_height=36, screen_width=36, n_channels=3, discrete=False)
    model = CourseSAC("CnnPolicy", env, buffer_size=100, learning_starts=20, batch_size=8, policy_kwargs=TINY, seed=0)
    assert isinstance(model.actor, TanhLogStdActor)
    assert isinstance(model.actor.features_extractor, NatureCNN) and isinstance(model.critic.features_extractor, NatureCNN)
    model.learn(40)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == env.action_space.shape and env.action_space.contains(action)


def test_gsde_actor_is_sb3s_with_the_course_squash_epsilon():
    from stable_baselines3 import SAC

    kwargs = dict(use_sde=True, buffer_size=100, learning_starts=20, batch_size=8, policy_kwargs=dict(net_arch=[8]), seed=0)
    model = CourseSAC("MlpPolicy", "Pendulum-v1", **kwargs).learn(60)
    assert model._n_updates > 0 and model.actor.action_dist.bijector.epsilon == 1e-7
    reference = SAC("MlpPolicy", "Pendulum-v1", **kwargs)
    reference.actor.load_state_dict(model.actor.state_dict())
    obs = th.tensor(np.stack([model.observation_space.sample() for _ in range(5)]))
    results = []
    for actor in (model.actor, reference.actor):
        th.manual_seed(1)
        actor.reset_noise(batch_size=5)
        results.append(actor.action_log_prob(obs))
    (actions, log_prob), (sb3_actions, sb3_log_prob) = results
    # The same gSDE draw; the log-probability differs only by the squash epsilon (SB3: 1e-6)
    assert th.equal(actions, sb3_actions)
    assert not th.equal(log_prob, sb3_log_prob)
    reference.actor.action_dist.bijector.epsilon = 1e-7
    th.manual_seed(1)
    reference.actor.reset_noise(batch_size=5)
    th.testing.assert_close(reference.actor.action_log_prob(obs)[1], log_prob, rtol=0, atol=0)

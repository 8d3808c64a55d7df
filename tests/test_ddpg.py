import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise, VectorizedActionNoise
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_course import CourseDDPG
from sb3_course.common.validation import UnsupportedSpaceError

from hand import feed_fixed_pendulum_batch, linear, reloaded_with_replay_buffer

# One torch thread: the tests share small CI machines

TINY = dict(net_arch=dict(pi=[4], qf=[4]), state_encoder_dim=3, action_encoder_dim=2)
GAMMA, TAU = 0.5, 0.1


def actor_by_hand(actor, obs: th.Tensor) -> th.Tensor:
    """mu(s) = clamp(W2 relu(W1 s + b1) + b2, -1, 1)"""
    return linear(linear(obs, actor.mu[0]).relu(), actor.mu[2]).clamp(-1, 1)


def critic_by_hand(critic, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """Q(s, a) = V2 relu(V1 [relu(Ws s + bs), relu(Wa a + ba)] + c1) + c2"""
    q_net = critic.qf0
    embedding = th.cat([linear(obs, q_net.state_encoder[0]).relu(), linear(actions, q_net.action_encoder[0]).relu()], dim=1)
    return linear(linear(embedding, q_net.q_estimator[0]).relu(), q_net.q_estimator[2])


def smooth_l1_by_hand(error: th.Tensor) -> float:
    return float(th.where(error.abs() < 1, 0.5 * error**2, error.abs() - 0.5).mean())


def snapshot(module: th.nn.Module) -> list[th.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def ddpg_on_fixed_batch(critic_loss: str = "smooth_l1") -> tuple[CourseDDPG, ReplayBufferSamples]:
    """A tiny CourseDDPG whose replay buffer always returns the same 3 transitions (one terminal)."""
    th.manual_seed(0)
    model = CourseDDPG("MlpPolicy", "Pendulum-v1", gamma=GAMMA, tau=TAU, critic_loss=critic_loss, policy_kwargs=TINY)
    model.set_logger(Logger(folder=None, output_formats=[]))
    with th.no_grad():
        # A live action encoder (so the actor gets a gradient), distinct targets, and a target actor bias
        # large enough that some of its actions are clamped
        model.critic.qf0.action_encoder[0].bias.fill_(1.0)
        for target, online in ((model.actor_target, model.actor), (model.critic_target, model.critic)):
            for p_target, p in zip(target.parameters(), online.parameters(), strict=True):
                p_target.copy_(0.5 * p + 0.3)
        model.actor_target.mu[2].bias.fill_(0.9)
    batch = feed_fixed_pendulum_batch(model)
    return model, batch


@pytest.mark.parametrize("critic_loss", ["smooth_l1", "mse"])
def test_critic_target_losses_and_soft_update_by_hand(critic_loss):
    model, batch = ddpg_on_fixed_batch(critic_loss)
    obs, next_obs = batch.observations, batch.next_observations
    # y = r + gamma * (1 - terminated) * Q'(s', mu'(s'))
    next_actions = actor_by_hand(model.actor_target, next_obs)
    assert (next_actions.abs() == 1).any(), "the fixture should exercise the clamp"
    target = batch.rewards + GAMMA * (1 - batch.dones) * critic_by_hand(model.critic_target, next_obs, next_actions)
    error = critic_by_hand(model.critic, obs, batch.actions) - target
    expected_critic_loss = smooth_l1_by_hand(error) if critic_loss == "smooth_l1" else float((error**2).mean())
    assert (error.abs() > 1).any() and (error.abs() < 1).any(), "the fixture should exercise both Huber branches"
    actor_before, actor_target_before, critic_target_before = (
        snapshot(model.actor),
        snapshot(model.actor_target),
        snapshot(model.critic_target),
    )
    actor_for_loss = actor_by_hand(model.actor, obs)

    model.train(gradient_steps=1, batch_size=3)

    logged = model.logger.name_to_value
    assert logged["train/critic_loss"] == pytest.approx(expected_critic_loss, rel=1e-5)
    # The actor loss uses the critic after its step and the actor before its own: -Q(s, mu(s)).mean()
    assert logged["train/actor_loss"] == pytest.approx(
        -float(critic_by_hand(model.critic, obs, actor_for_loss).mean()), rel=1e-5
    )
    assert logged["train/actor_learning_rate"] == 5e-3 and logged["train/critic_learning_rate"] == 1e-3
    # theta' <- tau * theta + (1 - tau) * theta' for both networks
    for online, target, before in (
        (model.critic, model.critic_target, critic_target_before),
        (model.actor, model.actor_target, actor_target_before),
    ):
        for p, p_target, p_before in zip(online.parameters(), target.parameters(), before, strict=True):
            th.testing.assert_close(p_target.detach(), TAU * p.detach() + (1 - TAU) * p_before)
    assert any(not th.equal(p, q) for p, q in zip(model.actor.parameters(), actor_before, strict=True))


@pytest.mark.parametrize(
    ("kwargs", "actor_lr", "critic_lr"),
    [
        (dict(), 5e-3, 1e-3),  # the course's rates
        (dict(learning_rate=3e-4), 3e-4, 3e-4),  # SB3's meaning: both optimizers
        (dict(learning_rate=3e-4, critic_learning_rate=1e-3), 3e-4, 1e-3),
        (dict(actor_learning_rate=1e-4), 1e-4, 1e-3),
    ],
)
def test_learning_rates_from_arguments(kwargs, actor_lr, critic_lr):
    model = CourseDDPG("MlpPolicy", "Pendulum-v1", policy_kwargs=TINY, **kwargs)
    model.set_logger(Logger(folder=None, output_formats=[]))
    model._update_learning_rate([model.actor.optimizer, model.critic.optimizer])
    assert model.actor.optimizer.param_groups[0]["lr"] == actor_lr
    assert model.critic.optimizer.param_groups[0]["lr"] == critic_lr


def test_actor_never_leaves_bounds():
    noise = OrnsteinUhlenbeckActionNoise(mean=np.zeros(1), sigma=50 * np.ones(1))
    model = CourseDDPG(
        "MlpPolicy", "Pendulum-v1", learning_starts=50, batch_size=32, action_noise=noise, policy_kwargs=TINY, seed=0
    )
    with th.no_grad():
        model.actor.mu[2].bias.fill_(10.0)
    observations = th.as_tensor(np.random.default_rng(0).normal(scale=100.0, size=(256, 3)), dtype=th.float32)
    assert model.actor(observations).abs().max() <= 1.0
    actions, _ = model.predict(observations.numpy(), deterministic=True)
    assert np.all(np.abs(actions) <= 2.0) and np.any(np.abs(actions) == 2.0)
    # Huge noise, added before clipping: stored (normalised) actions stay in [-1, 1]
    model.learn(200)
    stored = model.replay_buffer.actions[: model.replay_buffer.size()]
    assert np.abs(stored).max() <= 1.0 and np.isclose(np.abs(stored).max(), 1.0)


def test_tanh_actor_output_is_sb3_actor_and_survives_save_load(tmp_path):
    model = CourseDDPG("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(TINY, actor_output="tanh"), seed=0)
    assert isinstance(model.actor.mu[-1], th.nn.Tanh) and isinstance(model.actor_target.mu[-1], th.nn.Tanh)
    with th.no_grad():
        model.actor.mu[2].bias.fill_(3.0)
    observations = th.as_tensor(np.random.default_rng(0).normal(size=(64, 3)), dtype=th.float32)
    actions = model.actor(observations)
    # tanh: inside the bounds, and unlike the clamp (past 1 here) it still passes a gradient
    assert actions.abs().max() < 1.0
    actions.sum().backward()
    assert model.actor.mu[2].bias.grad.abs().item() > 0
    model.save(tmp_path / "ddpg.zip")
    loaded = CourseDDPG.load(tmp_path / "ddpg.zip")
    assert loaded.policy.actor_output == "tanh" and isinstance(loaded.actor.mu[-1], th.nn.Tanh)
    np.testing.assert_array_equal(
        model.predict(observations.numpy(), deterministic=True)[0], loaded.predict(observations.numpy(), deterministic=True)[0]
    )
    with pytest.raises(ValueError, match="actor_output"):
        CourseDDPG("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(actor_output="sigmoid"))


def test_critic_has_state_and_action_encoders():
    model = CourseDDPG("MlpPolicy", "Pendulum-v1")
    shapes = {name: tuple(p.shape) for name, p in model.critic.named_parameters()}
    assert shapes == {
        "qf0.state_encoder.0.weight": (64, 3),
        "qf0.state_encoder.0.bias": (64,),
        "qf0.action_encoder.0.weight": (64, 1),
        "qf0.action_encoder.0.bias": (64,),
        "qf0.q_estimator.0.weight": (32, 128),
        "qf0.q_estimator.0.bias": (32,),
        "qf0.q_estimator.2.weight": (1, 32),
        "qf0.q_estimator.2.bias": (1,),
    }
    assert [tuple(p.shape) for p in model.actor.parameters()] == [(128, 3), (128,), (64, 128), (64,), (1, 64), (1,)]
    resized = CourseDDPG("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(state_encoder_dim=8, action_encoder_dim=4))
    assert resized.critic.qf0.q_estimator[0].weight.shape == (32, 12)


def test_default_ou_noise_reset_at_every_episode_end(monkeypatch):
    model = CourseDDPG(
        "MlpPolicy", gym.make("Pendulum-v1", max_episode_steps=20), learning_starts=1000, policy_kwargs=TINY, seed=0
    )
    noise = model.action_noise
    assert isinstance(noise, OrnsteinUhlenbeckActionNoise)
    assert (noise._theta, noise._dt, float(noise._sigma[0])) == (0.1, 0.01, 0.1)
    resets = []
    original_reset = OrnsteinUhlenbeckActionNoise.reset

    def recording_reset(self: OrnsteinUhlenbeckActionNoise) -> None:
        resets.append(model.num_timesteps)
        original_reset(self)

    monkeypatch.setattr(OrnsteinUhlenbeckActionNoise, "reset", recording_reset)
    model.learn(100)
    # learn() starts with a reset (SB3's _setup_learn), then one per finished episode
    assert resets == [0, 20, 40, 60, 80, 100]
    np.testing.assert_array_equal(noise.noise_prev, 0.0)


def test_noise_reset_per_env_with_two_envs(monkeypatch):
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0, env_kwargs=dict(max_episode_steps=20))
    model = CourseDDPG("MlpPolicy", env, learning_starts=10, batch_size=32, policy_kwargs=TINY)
    reset_indices = []
    original_reset = VectorizedActionNoise.reset

    def recording_reset(self: VectorizedActionNoise, indices: list[int] | None = None) -> None:
        reset_indices.append(indices)
        original_reset(self, indices)

    monkeypatch.setattr(VectorizedActionNoise, "reset", recording_reset)
    model.learn(80, progress_bar=True)
    assert isinstance(model.action_noise, VectorizedActionNoise) and model.action_noise.n_envs == 2
    # learn() resets all noises first, then each env's own at its episode ends (steps 20 and 40 of each env)
    assert reset_indices == [None, [0], [1], [0], [1]]
    assert model.num_timesteps == 80 and model._n_updates > 0


def test_save_load_same_predict_and_replay_buffer(tmp_path):
    model = CourseDDPG("MlpPolicy", "Pendulum-v1", learning_starts=50, batch_size=32, policy_kwargs=TINY, seed=1)
    loaded = reloaded_with_replay_buffer(model.learn(200), tmp_path)
    assert loaded.replay_buffer.size() == 200
    # the actor is deterministic: predict gives the same actions without deterministic=True
    observations = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(observations)[0], loaded.predict(observations)[0])
    assert (loaded.critic_loss, loaded.actor_learning_rate, loaded.policy.state_encoder_dim) == ("smooth_l1", 5e-3, 3)
    loaded.set_env(gym.make("Pendulum-v1"))
    loaded.learn(60, reset_num_timesteps=False)


def test_discrete_action_space_rejected_at_construction():
    with pytest.raises(UnsupportedSpaceError, match=r"CourseDDPG supports Box action spaces.*Discrete.*CourseDQN"):
        CourseDDPG("MlpPolicy", "CartPole-v1")


@pytest.mark.parametrize(
    "kwargs, name", [(dict(gamma=1.5), "gamma"), (dict(tau=-0.1), "tau"), (dict(critic_loss="l1"), "critic_loss")]
)
def test_invalid_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CourseDDPG("MlpPolicy", "Pendulum-v1", **kwargs)


def test_final_layer_init_bounds_the_last_layers():
    model = CourseDDPG("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(final_layer_init=3e-3))
    for last in (model.actor.mu[-1], model.critic.qf0.q_estimator[-1], model.actor_target.mu[-1]):
        assert last.weight.abs().max() <= 3e-3 and last.bias.abs().max() <= 3e-3
    assert th.equal(model.actor.mu[-1].weight, model.actor_target.mu[-1].weight)
    with pytest.raises(ValueError, match="final_layer_init must lie in"):
        CourseDDPG("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(final_layer_init=-1.0))


def test_actor_bound_penalty_by_hand():
    model, batch = ddpg_on_fixed_batch()
    model.actor_bound_penalty = 2.0
    with th.no_grad():
        model.actor.mu[2].bias.fill_(0.7)  # some outputs past the bound, some inside
    obs = batch.observations
    unclamped = linear(linear(obs, model.actor.mu[0]).relu(), model.actor.mu[2])
    assert (unclamped.abs() > 1).any() and (unclamped.abs() < 1).any(), "the fixture should exercise both sides"
    model.train(gradient_steps=1, batch_size=3)
    # L_mu = -Q(s, clamp(u(s))).mean() + c * mean_s sum_i max(|u_i(s)| - 1, 0)^2, Q after the critic's step
    q_value = critic_by_hand(model.critic, obs, unclamped.clamp(-1, 1)).mean()
    penalty = ((unclamped.abs() - 1).clamp(min=0) ** 2).sum(dim=1).mean()
    assert model.logger.name_to_value["train/actor_loss"] == pytest.approx(float(-q_value + 2.0 * penalty), rel=1e-5)


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_a_saturated_actor_moves_back_only_with_the_bound_penalty(penalty):
    model, _ = ddpg_on_fixed_batch()
    model.actor_bound_penalty = penalty
    with th.no_grad():
        model.actor.mu[2].bias.fill_(5.0)  # every output past the bound: the clamp passes no gradient
    before = model.actor.mu[2].bias.item()
    model.train(gradient_steps=3, batch_size=3)
    after = model.actor.mu[2].bias.item()
    assert (after < before) if penalty else (after == before)


def test_actor_bound_penalty_is_checked():
    with pytest.raises(ValueError, match="actor_bound_penalty"):
        CourseDDPG("MlpPolicy", "Pendulum-v1", actor_bound_penalty=-1.0)

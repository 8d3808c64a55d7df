"""
The fast path of CourseDQN, CourseDDPG and CourseSAC (``sb3_course.common.fast_path``) computes what SB3's code
computes: each algorithm trained through it and through SB3's own code path (SB3's ``train``,
``set_training_mode`` and ``polyak_update``; for CourseDDPG also the previous concatenating critic) from the same
seed ends with bit-identical parameters, replay buffer, losses and actions. The one exception, fused Adam, is
compared separately, batch for batch, to float32 rounding; its private kernel call has a tested fallback.
"""

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN, SAC, TD3
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import ContinuousCritic
from torch import nn

from sb3_course import CourseDDPG, CourseDQN, CourseSAC
from sb3_course.common.fast_path import frozen
from sb3_course.ddpg.policies import CourseDDPGPolicy, EncoderCritic, EncoderQNetwork
from sb3_course.sac.policies import CourseSACPolicy

NOT_FUSED = dict(optimizer_kwargs=dict(fused=False))
OFF_POLICY = dict(learning_starts=50, buffer_size=1_000, batch_size=16, seed=3)


class ConcatEncoderQNetwork(EncoderQNetwork):
    """The previous interface of the course DDPG's Q-network: one ``[s, a]`` input, split for the two encoders."""

    def forward(self, qvalue_input: th.Tensor) -> th.Tensor:  # type: ignore[override]
        features, actions = qvalue_input.split([self.features_dim, qvalue_input.shape[1] - self.features_dim], dim=1)
        return super().forward(features, actions)


class ConcatEncoderCritic(EncoderCritic):
    """The previous course DDPG critic: SB3's ``forward`` / ``q1_forward``, which concatenate ``[s, a]``."""

    forward = ContinuousCritic.forward  # type: ignore[assignment]
    q1_forward = ContinuousCritic.q1_forward

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for q_net in self.q_networks:
            q_net.__class__ = ConcatEncoderQNetwork


class SB3PathDDPGPolicy(CourseDDPGPolicy):
    def make_critic(self, features_extractor=None) -> EncoderCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return ConcatEncoderCritic(
            **critic_kwargs, state_encoder_dim=self.state_encoder_dim, action_encoder_dim=self.action_encoder_dim
        ).to(self.device)


@dataclass(frozen=True)
class Case:
    """A course algorithm, the SB3 ``train`` it replaces and settings that train in a fraction of a second."""

    cls: type
    sb3_train: Any
    env_id: str
    kwargs: dict[str, Any]
    policy: type | None = None  # the policy of the SB3 path (default: the course policy)
    name: str = field(default="")

    def param(self) -> Any:
        return pytest.param(self, id=self.name or self.cls.__name__)


TINY = dict(net_arch=[8])  # copied for each model: SB3's SAC and TD3 add keys to the policy_kwargs they get
CASES = [
    Case(CourseDQN, DQN.train, "CartPole-v1", dict(policy_kwargs=TINY, exploration_decay="linear")),
    Case(CourseDQN, DQN.train, "CartPole-v1", dict(policy_kwargs=TINY, max_grad_norm=0.5), name="CourseDQN-clip"),
    Case(
        CourseDQN, DQN.train, "CartPole-v1",
        dict(policy_kwargs=TINY, use_target_network=True, target_update_interval=20, tau=0.5),
        name="CourseDQN-target",
    ),
    Case(
        CourseDDPG, TD3.train, "Pendulum-v1",
        dict(critic_loss="mse", policy_kwargs=dict(net_arch=[8], state_encoder_dim=4, action_encoder_dim=4)),
        policy=SB3PathDDPGPolicy,
    ),
    Case(CourseSAC, SAC.train, "Pendulum-v1", dict(policy_kwargs=TINY)),
    Case(CourseSAC, SAC.train, "Pendulum-v1", dict(policy_kwargs=TINY, ent_coef="auto"), name="CourseSAC-auto"),
    Case(
        CourseSAC, SAC.train, "Pendulum-v1", dict(policy_kwargs=TINY, use_sde=True, sde_sample_freq=4),
        name="CourseSAC-gSDE",
    ),
    Case(
        CourseSAC, SAC.train, "Pendulum-v1", dict(policy_kwargs=dict(net_arch=[8], activation_fn=nn.Tanh)),
        name="CourseSAC-Tanh",
    ),
]  # fmt: skip


def with_optimizer_kwargs(kwargs: dict[str, Any], optimizer_kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "policy_kwargs": {**kwargs["policy_kwargs"], "optimizer_kwargs": optimizer_kwargs}}


def fast_model(case: Case, optimizer_kwargs: dict[str, Any] | None = None) -> Any:
    kwargs = with_optimizer_kwargs(case.kwargs, optimizer_kwargs) if optimizer_kwargs else copy.deepcopy(case.kwargs)
    return case.cls("MlpPolicy", case.env_id, **OFF_POLICY, **kwargs)


def sb3_path_model(case: Case) -> Any:
    """The same algorithm through SB3's own code: its train() and set_training_mode()."""
    policy = case.policy or case.cls.policy_aliases["MlpPolicy"]
    sb3_policy = type("SB3PathPolicy", (policy,), {"trained_modules": ()})
    cls = type(f"SB3Path{case.cls.__name__}", (case.cls,), {"train": case.sb3_train})
    kwargs = with_optimizer_kwargs(case.kwargs, NOT_FUSED["optimizer_kwargs"])
    return cls(sb3_policy, case.env_id, **OFF_POLICY, **kwargs)


def assert_same_tensors(tensors: dict[str, th.Tensor | None], others: dict[str, th.Tensor | None]) -> None:
    assert tensors.keys() == others.keys()
    for name, tensor in tensors.items():
        other = others[name]
        assert (tensor is None and other is None) or th.equal(tensor, other), name  # type: ignore[arg-type]


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_fast_path_equals_sb3_path(case):
    fast = fast_model(case, NOT_FUSED["optimizer_kwargs"]).learn(300)
    reference = sb3_path_model(case).learn(300)
    assert fast._n_updates == reference._n_updates == 250
    assert_same_tensors(fast.policy.state_dict(), reference.policy.state_dict())
    for name in ("observations", "actions", "rewards", "next_observations", "dones"):
        np.testing.assert_array_equal(getattr(fast.replay_buffer, name), getattr(reference.replay_buffer, name))
    losses = {key: value for key, value in reference.logger.name_to_value.items() if key.startswith("train/")}
    assert losses == {key: fast.logger.name_to_value[key] for key in losses}
    obs = np.stack([fast.observation_space.sample() for _ in range(8)])
    for deterministic in (True, False):
        th.manual_seed(0)
        actions, _ = fast.predict(obs, deterministic=deterministic)
        th.manual_seed(0)
        np.testing.assert_array_equal(actions, reference.predict(obs, deterministic=deterministic)[0])


def changed_kernel(*args: Any, **kwargs: Any) -> None:
    raise TypeError("_fused_adam_() got an unexpected keyword argument 'beta1'")


@pytest.mark.parametrize("case", [case.param() for case in CASES if case.cls is not CourseDDPG and not case.name])
def test_fast_path_equals_sb3_path_through_public_fallbacks(case, monkeypatch):
    # A torch release without the private names: Adam.step for the fused step
    import sb3_course.common.fast_path as fast_path

    monkeypatch.setattr(fast_path, "FUSED_ADAM_API", None)
    test_fast_path_equals_sb3_path(case)


def fused_and_single_adam(case, same=None):
    """
    Two models of ``case``, one with fused Adam and one with SB3's (single-tensor on the CPU), from the same weights
    and replay buffer, after 100 gradient steps on the same batches. ``same`` compares the starting weights.
    """
    fused, single = fast_model(case), fast_model(case, NOT_FUSED["optimizer_kwargs"])
    optimizers = [getattr(module, "optimizer", None) for module in fused.policy.modules()]
    assert all(optimizer.defaults["fused"] for optimizer in optimizers if optimizer is not None)
    fused.learning_starts = 10_000
    fused.learn(200)
    single.replay_buffer = copy.deepcopy(fused.replay_buffer)
    single.set_logger(Logger(folder=None, output_formats=[]))
    (same or assert_same_tensors)(fused.policy.state_dict(), single.policy.state_dict())
    for step in range(100):
        for model in (fused, single):
            np.random.seed(step)
            th.manual_seed(step)
            model.train(gradient_steps=1, batch_size=16)
    return fused, single


@pytest.mark.parametrize("private_api", ["present", "missing", "changed"])
@pytest.mark.parametrize("case", [case.param() for case in CASES if not case.name])
def test_fused_adam_equals_sb3_adam_to_float_rounding(case, private_api, monkeypatch):
    # Batch for batch (same buffer, same draws): the fused kernel orders some float32 operations differently.
    # Without th._fused_adam_ (a torch that lacks it, or whose kernel takes other arguments), every step goes
    # through the public Adam.step with the same result.
    import sb3_course.common.fast_path as fast_path

    if private_api == "missing":  # a torch release that renamed the kernel
        names = [
            (owner, "_fused_adam_renamed" if name == "_fused_adam_" else name) for owner, name in fast_path.PRIVATE_ADAM_NAMES
        ]
        monkeypatch.setattr(fast_path, "PRIVATE_ADAM_NAMES", names)
    monkeypatch.setattr(fast_path, "FUSED_ADAM_API", fast_path.private_adam_api())
    assert (fast_path.FUSED_ADAM_API is None) == (private_api == "missing")
    if private_api == "changed":  # a torch release whose kernel takes other arguments
        monkeypatch.setattr(fast_path, "FUSED_ADAM_API", (th._foreach_add_, changed_kernel, *fast_path.FUSED_ADAM_API[2:]))
    taken = []
    fused_adam_step = fast_path.fused_adam_step
    monkeypatch.setattr(fast_path, "fused_adam_step", lambda optimizer: taken.append(fused_adam_step(optimizer)) or taken[-1])
    fused, single = fused_and_single_adam(case)
    for (name, param), other in zip(fused.policy.state_dict().items(), single.policy.state_dict().values(), strict=True):
        # after 100 steps the largest difference is about 6e-8 (a few float32 ulps)
        np.testing.assert_allclose(param, other, rtol=1e-6, atol=1e-6, err_msg=name)
    assert any(taken) == (private_api == "present") and (fast_path.FUSED_ADAM_API is None) == (private_api != "present")


def test_fused_adam_step_equals_adam_step_and_leaves_the_rest_to_it():
    from sb3_course.common.fast_path import fused_adam_step

    def make(**kwargs):
        th.manual_seed(0)
        net = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 2))
        groups = [{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 3e-3, "weight_decay": 0.1}]
        return net, th.optim.Adam(groups, lr=1e-3, **kwargs)

    (net, optimizer), (reference, reference_optimizer) = make(fused=True), make(fused=True)
    x = th.randn(64, 3)
    taken = []
    for step in range(5):
        for model, opt in ((net, optimizer), (reference, reference_optimizer)):
            opt.zero_grad()
            model(x).square().mean().backward()
        if step == 2:
            net[2].bias.grad = reference[2].bias.grad = None  # a parameter without gradient is skipped, as by Adam
        taken.append(fused_adam_step(optimizer))
        if not taken[-1]:
            optimizer.step()
        reference_optimizer.step()
        for name, tensor in net.state_dict().items():
            assert th.equal(tensor, reference.state_dict()[name]), (step, name)
    assert taken == [False, True, True, True, True]  # the first step creates the state: Adam.step's job
    assert str(optimizer.state_dict()) == str(reference_optimizer.state_dict())
    # Everything else stays with Adam.step: not fused, other variants, hooks, an LR scheduler
    for kwargs in (dict(fused=False), dict(fused=True, amsgrad=True)):
        other_net, other = make(**kwargs)
        other_net(x).sum().backward()
        other.step()
        assert not fused_adam_step(other)
    # A kernel whose arguments changed (a torch release): nothing done, the step counts as they were, and from
    # then on every step is Adam.step's
    import sb3_course.common.fast_path as fast_path

    steps = [state["step"].clone() for state in optimizer.state.values()]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fast_path, "FUSED_ADAM_API", (th._foreach_add_, changed_kernel, *fast_path.FUSED_ADAM_API[2:]))
        assert not fused_adam_step(optimizer) and fast_path.FUSED_ADAM_API is None
        assert all(th.equal(state["step"], step) for state, step in zip(optimizer.state.values(), steps, strict=True))
    handle = optimizer.register_step_pre_hook(lambda *args: None)
    assert not fused_adam_step(optimizer)
    handle.remove()
    th.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    assert not fused_adam_step(optimizer)
    assert not fused_adam_step(th.optim.SGD(net.parameters(), lr=0.1))


def test_fused_adam_is_default_unless_chosen_and_survives_save(tmp_path):
    def optimizer_defaults(model: CourseDQN) -> dict[str, Any]:
        return model.policy.optimizer.defaults

    model = CourseDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(TINY))
    assert optimizer_defaults(model)["fused"] is True
    model.save(tmp_path / "model")
    assert optimizer_defaults(CourseDQN.load(tmp_path / "model"))["fused"] is True
    chosen = CourseDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8], optimizer_kwargs=dict(foreach=True)))
    assert not optimizer_defaults(chosen)["fused"] and optimizer_defaults(chosen)["foreach"]
    sgd = CourseDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8], optimizer_class=th.optim.SGD))
    assert isinstance(sgd.policy.optimizer, th.optim.SGD) and not sgd.policy.optimizer.defaults.get("fused")


def test_frozen_keeps_weight_gradients_out_and_restores_flags():
    critic, actor = nn.Linear(2, 1), nn.Linear(3, 2)
    critic.bias.requires_grad_(False)
    obs = th.randn(4, 3)
    with frozen(list(critic.parameters())):
        loss = critic(actor(obs)).mean()
    loss.backward()
    assert critic.weight.grad is None and actor.weight.grad is not None
    assert critic.weight.requires_grad and not critic.bias.requires_grad
    expected = actor.weight.grad.clone()
    actor.zero_grad()
    critic(actor(obs)).mean().backward()
    assert th.equal(actor.weight.grad, expected)


class LayerNormSACPolicy(CourseSACPolicy):
    """The course SAC policy with a LayerNorm after the actor's first layer."""

    def make_actor(self, features_extractor=None):
        actor = super().make_actor(features_extractor)
        actor.latent_pi = nn.Sequential(actor.latent_pi[0], nn.LayerNorm(8), *list(actor.latent_pi)[1:])
        return actor.to(self.device)


@pytest.mark.parametrize(
    ("cls", "env_id", "policy", "policy_kwargs"),
    [
        (CourseDQN, "CartPole-v1", "MlpPolicy", dict(activation_fn=nn.Tanh)),
        (CourseDDPG, "Pendulum-v1", "MlpPolicy", dict(activation_fn=nn.Tanh, state_encoder_dim=4, action_encoder_dim=4)),
        (CourseSAC, "Pendulum-v1", "MlpPolicy", dict(activation_fn=nn.Tanh)),
        (CourseSAC, "Pendulum-v1", LayerNormSACPolicy, {}),
        (CourseSAC, "Pendulum-v1", "MlpPolicy", dict(optimizer_class=th.optim.RMSprop)),
        (CourseDQN, "CartPole-v1", "MlpPolicy", dict(optimizer_class=th.optim.SGD)),
    ],
    ids=["CourseDQN-Tanh", "CourseDDPG-Tanh", "CourseSAC-Tanh", "CourseSAC-LayerNorm", "CourseSAC-RMSprop", "CourseDQN-SGD"],
)  # fmt: skip
def test_what_the_fast_path_does_not_cover_is_named_once_at_verbose_1(cls, env_id, policy, policy_kwargs, capsys):
    # The fast path does not depend on the networks (another activation, a LayerNorm: covered); another optimizer
    # than Adam leaves its fused step, which verbose=1 says once, and trains as SB3 does
    kwargs = dict(policy_kwargs=dict(net_arch=[8, 8], **policy_kwargs), learning_starts=20, batch_size=8, seed=0)
    cls(policy, env_id, verbose=0, **kwargs)
    assert "fast path" not in capsys.readouterr().out
    model = cls(policy, env_id, verbose=1, **kwargs)
    lines = [line for line in capsys.readouterr().out.splitlines() if "fast path" in line]
    optimizer_class = policy_kwargs.get("optimizer_class")
    if optimizer_class is None:
        assert lines == []
    else:
        assert lines == [
            f"{cls.__name__}: the fast path's fused Adam does not cover {optimizer_class.__name__} on cpu: the optimizers "
            "take their own step() (SB3's updates, more time per step)"
        ]
    model.learn(40)
    assert model._n_updates > 0 and "fast path" not in capsys.readouterr().out

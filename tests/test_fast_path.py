"""
The speed layer of CourseDQN, CourseDDPG and CourseSAC (``sb3_course.common.fast_path``: fused Adam) and
CourseDDPG's own update against SB3's code: CourseDDPG with the MSE loss trained through its ``train`` and through
SB3's ``TD3.train`` from the same seed ends with bit-identical parameters,
replay buffer, losses and actions; fused Adam is compared to SB3's Adam batch for batch, to float32 rounding, for
the three classes.
"""

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN, SAC, TD3
from stable_baselines3.common.logger import Logger
from torch import nn

from sb3_course import CourseDDPG, CourseDQN, CourseSAC
from sb3_course.sac.policies import CourseSACPolicy

NOT_FUSED = dict(optimizer_kwargs=dict(fused=False))
OFF_POLICY = dict(learning_starts=50, buffer_size=1_000, batch_size=16, seed=3)


@dataclass(frozen=True)
class Case:
    """A course algorithm, the SB3 ``train`` its update is compared to and settings that train in a fraction of a second."""

    cls: type
    sb3_train: Any
    env_id: str
    kwargs: dict[str, Any]
    name: str = field(default="")

    def param(self) -> Any:
        return pytest.param(self, id=self.name or self.cls.__name__)


TINY = dict(net_arch=[8])  # copied for each model: SB3's SAC and TD3 add keys to the policy_kwargs they get
CASES = [
    Case(CourseDQN, DQN.train, "CartPole-v1", dict(policy_kwargs=TINY, exploration_decay="linear")),
    Case(
        CourseDDPG, TD3.train, "Pendulum-v1",
        dict(critic_loss="mse", policy_kwargs=dict(net_arch=[8], state_encoder_dim=4, action_encoder_dim=4)),
    ),
    Case(CourseSAC, SAC.train, "Pendulum-v1", dict(policy_kwargs=TINY)),
    Case(CourseSAC, SAC.train, "Pendulum-v1", dict(policy_kwargs=TINY, ent_coef="auto"), name="CourseSAC-auto"),
]  # fmt: skip
# CourseDDPG's train is its own (SmoothL1 loss, two learning rates): with the MSE loss it is SB3's TD3 update
OWN_TRAIN = [case for case in CASES if case.cls is CourseDDPG]


def with_optimizer_kwargs(kwargs: dict[str, Any], optimizer_kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "policy_kwargs": {**kwargs["policy_kwargs"], "optimizer_kwargs": optimizer_kwargs}}


def fast_model(case: Case, optimizer_kwargs: dict[str, Any] | None = None) -> Any:
    kwargs = with_optimizer_kwargs(case.kwargs, optimizer_kwargs) if optimizer_kwargs else copy.deepcopy(case.kwargs)
    return case.cls("MlpPolicy", case.env_id, **OFF_POLICY, **kwargs)


def sb3_path_model(case: Case) -> Any:
    """The same algorithm through SB3's own train()."""
    cls = type(f"SB3Path{case.cls.__name__}", (case.cls,), {"train": case.sb3_train})
    kwargs = with_optimizer_kwargs(case.kwargs, NOT_FUSED["optimizer_kwargs"])
    return cls("MlpPolicy", case.env_id, **OFF_POLICY, **kwargs)


def assert_same_tensors(tensors: dict[str, th.Tensor | None], others: dict[str, th.Tensor | None]) -> None:
    assert tensors.keys() == others.keys()
    for name, tensor in tensors.items():
        other = others[name]
        assert (tensor is None and other is None) or th.equal(tensor, other), name  # type: ignore[arg-type]


@pytest.mark.parametrize("case", [case.param() for case in OWN_TRAIN])
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


@pytest.mark.parametrize("case", [case.param() for case in CASES if not case.name])
def test_fused_adam_equals_sb3_adam_to_float_rounding(case):
    # Batch for batch (same buffer, same draws): the fused kernel orders some float32 operations differently.
    fused, single = fused_and_single_adam(case)
    for (name, param), other in zip(fused.policy.state_dict().items(), single.policy.state_dict().values(), strict=True):
        # after 100 steps the largest difference is about 6e-8 (a few float32 ulps)
        np.testing.assert_allclose(param, other, rtol=1e-6, atol=1e-6, err_msg=name)


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

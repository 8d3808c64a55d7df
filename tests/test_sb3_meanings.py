"""
Values at the edge of a range that SB3 gives a meaning (issue 27), accepted by the course classes with that meaning:
``tau=0`` keeps the target networks where they started (SB3's own tests freeze targets so), ``learning_rate=0``
keeps every network where it started. Each check runs on the SB3 class first, then on the course class.
"""

import pytest
import torch as th
from stable_baselines3 import A2C, DDPG, DQN, SAC

from sb3_course import A3C, REINFORCE, CourseDDPG, CourseDQN, CourseSAC

TINY = dict(net_arch=[8])
# class -> (env id, settings that train within 60 steps, names of its target networks)
ALGOS = {
    DQN: ("CartPole-v1", dict(target_update_interval=1), ("q_net_target",)),
    CourseDQN: ("CartPole-v1", dict(use_target_network=True, target_update_interval=1), ("q_net_target",)),
    DDPG: ("Pendulum-v1", {}, ("actor_target", "critic_target")),
    CourseDDPG: (
        "Pendulum-v1",
        dict(policy_kwargs=dict(TINY, state_encoder_dim=4, action_encoder_dim=4)),
        ("actor_target", "critic_target"),
    ),
    SAC: ("Pendulum-v1", {}, ("critic_target",)),
    CourseSAC: ("Pendulum-v1", {}, ("critic_target",)),
}


def make(cls: type, **overrides):
    env_id, settings, _ = ALGOS[cls]
    # policy_kwargs copied: SB3's DDPG adds n_critics to the dict it is given
    settings = {**dict(policy_kwargs=dict(TINY), learning_starts=10, buffer_size=200, batch_size=8, seed=0), **settings}
    return cls("MlpPolicy", env_id, **{**settings, **overrides})


def snapshot(module: th.nn.Module) -> dict[str, th.Tensor]:
    """The online networks' tensors (a soft update of a target equal to its network moves it by rounding only)."""
    return {name: tensor.clone() for name, tensor in module.state_dict().items() if "target" not in name}


def unchanged(before: dict[str, th.Tensor], module: th.nn.Module) -> bool:
    return all(th.equal(tensor, module.state_dict()[name]) for name, tensor in before.items())


@pytest.mark.parametrize("cls", list(ALGOS), ids=lambda cls: cls.__name__)
def test_tau_zero_freezes_the_targets_as_in_sb3(cls):
    model = make(cls, tau=0.0)
    targets = {name: snapshot(getattr(model.policy, name)) for name in ALGOS[cls][2]}
    online = snapshot(model.policy)
    model.learn(60)
    assert model._n_updates > 0
    assert all(unchanged(before, getattr(model.policy, name)) for name, before in targets.items())
    assert not unchanged(online, model.policy), "the online networks should learn"


@pytest.mark.parametrize("cls", [*ALGOS, A2C, REINFORCE], ids=lambda cls: cls.__name__)
def test_learning_rate_zero_freezes_the_networks_as_in_sb3(cls):
    if cls in ALGOS:
        model = make(cls, learning_rate=0.0)
    else:
        model = cls("MlpPolicy", "CartPole-v1", learning_rate=0.0, policy_kwargs=dict(TINY), seed=0)
    before = snapshot(model.policy)
    model.learn(60 if cls in ALGOS else 300)
    assert model._n_updates > 0 and unchanged(before, model.policy)


def test_a3c_takes_learning_rate_zero():
    # A3C's workers are processes (tests/test_a3c.py trains them); here only the construction rule
    assert A3C("MlpPolicy", "CartPole-v1", learning_rate=0.0, n_workers=1).learning_rate == 0.0

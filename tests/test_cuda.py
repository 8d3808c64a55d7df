"""
The course algorithms on a CUDA device. The tests (or their parameters) marked ``cuda`` are skipped where
``torch.cuda.is_available()`` is false; ``pytest -m cuda`` runs them on a machine with a GPU
(``python -m sb3_course.benchmarks.gpu_check`` does, with the GPU bench). The ``cpu`` parameter of a test runs the
same code everywhere, so the test itself is exercised without a GPU.

- CourseDDPG's update against SB3's ``TD3.train`` and fused Adam against SB3's Adam on CUDA: the comparisons of
  ``tests/test_fast_path.py`` (bit for bit, and fused Adam to float32 rounding) with ``device="cuda"``.
- Learn, predict and save on the device, load on the CPU, learn there, and back, for all five classes (A3C with
  ``device="cuda"`` either works or refuses at construction with one line).
- REINFORCE warns on the GPU with an MLP policy (and not with a CNN policy) as SB3's A2C does.
"""

import copy
import dataclasses
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import test_fast_path as cpu_tests
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.envs import FakeImageEnv

from sb3_course import A3C, REINFORCE, CourseDDPG, CourseDQN, CourseSAC

CUDA = pytest.mark.skipif(not th.cuda.is_available(), reason="needs CUDA (torch.cuda.is_available() is false)")
DEVICES = [pytest.param("cpu"), pytest.param("cuda", marks=[pytest.mark.cuda, CUDA])]
TINY = dict(net_arch=[8])
OFF_POLICY = dict(learning_starts=50, buffer_size=1_000, batch_size=16)
ALGORITHMS = [
    pytest.param(CourseDQN, "CartPole-v1", dict(OFF_POLICY, policy_kwargs=TINY), id="CourseDQN"),
    pytest.param(
        CourseDDPG, "Pendulum-v1",
        dict(OFF_POLICY, policy_kwargs=dict(net_arch=[8], state_encoder_dim=4, action_encoder_dim=4)),
        id="CourseDDPG",
    ),
    pytest.param(CourseSAC, "Pendulum-v1", dict(OFF_POLICY, policy_kwargs=TINY), id="CourseSAC"),
    pytest.param(REINFORCE, "CartPole-v1", dict(n_episodes=1, policy_kwargs=TINY), id="REINFORCE"),
    pytest.param(
        A3C, "CartPole-v1", dict(n_workers=1, n_steps=5, policy_kwargs=dict(net_arch=dict(trunk=[8], vf=[8]))), id="A3C"
    ),
]  # fmt: skip


def assert_same_tensors(tensors: dict[str, th.Tensor | None], others: dict[str, th.Tensor | None]) -> None:
    """``tests/test_fast_path.py``'s check (equal bit for bit) that names how far apart the tensors that differ are."""
    assert tensors.keys() == others.keys()
    assert [tensor is None for tensor in tensors.values()] == [other is None for other in others.values()]
    apart = {
        name: float((tensor.double() - other.double()).abs().max())  # type: ignore[union-attr]
        for (name, tensor), other in zip(tensors.items(), others.values(), strict=True)
        if tensor is not None and not th.equal(tensor, other)  # type: ignore[arg-type]
    }
    assert not apart, f"not equal bit for bit (largest absolute difference of each): {apart}"


@pytest.mark.cuda
@CUDA
@pytest.mark.parametrize("case", [case.param() for case in cpu_tests.OWN_TRAIN])
def test_fast_path_equals_sb3_path_on_cuda(case, monkeypatch):
    case = dataclasses.replace(case, kwargs={**case.kwargs, "device": "cuda"})
    assert cpu_tests.fast_model(case).device.type == "cuda"
    monkeypatch.setattr(cpu_tests, "assert_same_tensors", assert_same_tensors)
    cpu_tests.test_fast_path_equals_sb3_path(case)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", [case.param() for case in cpu_tests.CASES if not case.name])
def test_fused_adam_equals_sb3_adam_on_device(case, device):
    # tests/test_fast_path.py's comparison, with the parameters compared where they are. SB3's Adam on CUDA is
    # PyTorch's default there, the multi-tensor (foreach) implementation; on the CPU the single-tensor one
    case = dataclasses.replace(case, kwargs={**case.kwargs, "device": device})
    fused, single = cpu_tests.fused_and_single_adam(case, assert_same_tensors)
    assert fused.device.type == device
    for (name, param), other in zip(fused.policy.state_dict().items(), single.policy.state_dict().values(), strict=True):
        th.testing.assert_close(param, other, rtol=1e-6, atol=1e-6, msg=lambda text, name=name: f"{name}: {text}")


def make_model(cls: type[BaseAlgorithm], env_id: str, kwargs: dict[str, Any], device: str) -> BaseAlgorithm | None:
    """
    The model on ``device``, or ``None`` where A3C refuses a CUDA device at construction: with a ``ValueError``
    of one line that says to use the CPU. Anything else (another error, a CPU refused) fails the test.
    """
    try:
        return cls("MlpPolicy", env_id, seed=0, device=device, **copy.deepcopy(kwargs))
    except ValueError as error:
        if cls is not A3C or device == "cpu":
            raise
        message = str(error)
        assert "\n" not in message and "cpu" in message.lower(), message
        return None


def assert_on_device(model: BaseAlgorithm, device: str) -> None:
    assert model.device.type == device
    assert all(param.device.type == device for param in model.policy.parameters())
    for optimizer in [module.optimizer for module in model.policy.modules() if hasattr(module, "optimizer")]:
        for state in optimizer.state.values():
            assert all(value.device.type == device for key, value in state.items() if key != "step"), optimizer


def assert_same_actions(actions: np.ndarray, expected: np.ndarray, action_space: spaces.Space) -> None:
    # CPU and GPU round differently: continuous actions agree to rounding, discrete ones (argmax) exactly
    if isinstance(action_space, spaces.Box):
        np.testing.assert_allclose(actions, expected, rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_array_equal(actions, expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cls, env_id, kwargs", ALGORITHMS)
def test_learn_on_device_load_on_cpu_and_back(cls, env_id, kwargs, device, tmp_path):
    model = make_model(cls, env_id, kwargs, device)
    if model is None:
        return
    model.learn(300)
    assert model.num_timesteps >= 300
    assert_on_device(model, device)
    obs = np.stack([model.observation_space.sample() for _ in range(8)])
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape[0] == 8 and all(model.action_space.contains(action) for action in actions)
    model.save(tmp_path / "trained")

    on_cpu = cls.load(tmp_path / "trained", env=gym.make(env_id), device="cpu")
    assert_on_device(on_cpu, "cpu")
    assert_same_tensors(on_cpu.policy.state_dict(), {k: v.cpu() for k, v in model.policy.state_dict().items()})
    assert_same_actions(on_cpu.predict(obs, deterministic=True)[0], actions, model.action_space)
    on_cpu.learn(200)
    assert_on_device(on_cpu, "cpu")
    on_cpu.save(tmp_path / "trained_on_cpu")

    back = cls.load(tmp_path / "trained_on_cpu", env=gym.make(env_id), device=device)
    assert_on_device(back, device)
    assert_same_tensors({k: v.cpu() for k, v in back.policy.state_dict().items()}, on_cpu.policy.state_dict())
    back.learn(200)
    assert_on_device(back, device)
    assert all(back.action_space.contains(action) for action in back.predict(obs, deterministic=True)[0])


def gpu_warnings(cls: type[BaseAlgorithm], policy: str, device: str) -> list[str]:
    """The messages of the ``UserWarning`` about the GPU that constructing ``cls`` gives."""
    env = FakeImageEnv(screen_height=36, screen_width=36) if policy == "CnnPolicy" else gym.make("CartPole-v1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cls(policy, env, device=device)
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning) and "GPU" in str(w.message)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("policy", ["MlpPolicy", "CnnPolicy"])
def test_reinforce_warns_on_gpu_as_a2c(policy, device):
    # SB3 advises the CPU for A2C and PPO with an MLP policy on the GPU, not with a CNN
    a2c, reinforce = gpu_warnings(A2C, policy, device), gpu_warnings(REINFORCE, policy, device)
    assert len(a2c) == len(reinforce) == (device != "cpu" and policy == "MlpPolicy")
    for message in reinforce:
        assert "REINFORCE" in message and "device='cpu'" in message, message

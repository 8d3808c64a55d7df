"""
Faults and bad input: each gives an error a user can act on, or a documented recovery, and loses nothing
(docs/reliability.md lists the cases). An env whose step raises inside an A3C worker is tested in test_a3c.py.
"""

import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from test_conformance import BOX, COURSE, COURSE_ALGOS, SINGLE_PROCESS, SpaceEnv, assert_same_parameters, make_model

from sb3_course import A3C, REINFORCE, CourseDDPG, CourseDQN, CourseSAC
from sb3_course.a3c import A3CWorkerError
from sb3_course.common.checkpoint import CheckpointOnSignal, load_checkpoint
from sb3_course.common.nan_guard import CheckFinite, NonFiniteError
from sb3_course.common.validation import UnsupportedSpaceError

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ALGOS = {algo.cls: algo for algo in COURSE_ALGOS}


# -- unsupported spaces and hyperparameters, at construction --------------------------------------------------


TUPLE_ACTIONS = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2)))


@pytest.mark.parametrize("algo", COURSE)
@pytest.mark.parametrize("action_space", [spaces.MultiDiscrete([2, 3]), spaces.MultiBinary(2), TUPLE_ACTIONS], ids=str)
def test_unsupported_action_space(algo, action_space):
    env = SpaceEnv(spaces.Box(-1, 1, (4,), np.float32), action_space)
    if algo.cls in (REINFORCE, A3C):
        if not isinstance(action_space, spaces.Tuple):
            # A2C's action spaces: REINFORCE and A3C take them too
            assert make_model(algo, env).action_space == action_space
            return
        # BaseAlgorithm's own check (SB3's A2C / PPO raise the same)
        with pytest.raises(AssertionError, match=r"only supports"):
            make_model(algo, env)
    else:
        with pytest.raises(
            UnsupportedSpaceError, match=f"{algo.id} supports .* action spaces, but the env has {re.escape(str(action_space))}"
        ):
            make_model(algo, env)


@pytest.mark.parametrize("algo", COURSE)
@pytest.mark.parametrize(
    "observation_space", [spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2))), spaces.Text(4)], ids=str
)
def test_unsupported_observation_space(algo, observation_space):
    env = SpaceEnv(observation_space, algo.action_spaces[0])
    with pytest.raises(UnsupportedSpaceError, match=f"{algo.id} supports .* observation spaces.*FlattenObservation"):
        make_model(algo, env)


INVALID = [
    (CourseDQN, dict(learning_rate=-1e-3), "learning_rate"),
    (CourseDQN, dict(buffer_size=0), r"buffer_size must lie in \[1, inf\], got 0"),
    (CourseDQN, dict(batch_size=0), "batch_size"),
    (CourseDQN, dict(tau=-0.1), r"tau must lie in \[0.0, 1.0\]"),
    (CourseDQN, dict(tau=1.5), "tau"),
    (CourseDQN, dict(gamma=-0.1), r"gamma must lie in \[0.0, 1.0\]"),
    (CourseDQN, dict(gamma=1.1), "gamma"),
    (CourseDDPG, dict(learning_rate=-1e-3), r"learning_rate must lie in \[0.0, inf\)"),
    (CourseDDPG, dict(actor_learning_rate=-1.0), "learning_rate"),
    (CourseDDPG, dict(critic_learning_rate=-1.0), "learning_rate"),
    (CourseDDPG, dict(batch_size=0), "batch_size"),
    (CourseDDPG, dict(tau=-0.5), "tau"),
    (CourseDDPG, dict(gamma=1.5), "gamma"),
    (CourseSAC, dict(learning_rate=-1e-4), "learning_rate"),
    (CourseSAC, dict(batch_size=-1), "batch_size"),
    (CourseSAC, dict(tau=2.0), "tau"),
    (CourseSAC, dict(gamma=-1.0), "gamma"),
    (CourseSAC, dict(ent_coef=-0.1), "ent_coef"),
    (REINFORCE, dict(learning_rate=-1.0), "learning_rate"),
    (REINFORCE, dict(n_episodes=0), "n_episodes"),
    (REINFORCE, dict(gamma=1.5), "gamma"),
    (A3C, dict(learning_rate=-1.0), "learning_rate"),
    (A3C, dict(n_workers=0), "n_workers"),
    (A3C, dict(n_steps=0), "n_steps"),
    (A3C, dict(gamma=-0.5), "gamma"),
]


@pytest.mark.parametrize(("cls", "kwargs", "message"), INVALID, ids=[f"{c.__name__}-{next(iter(k))}" for c, k, _ in INVALID])
def test_invalid_hyperparameters_at_construction(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_model(ALGOS[cls], **kwargs)


@pytest.mark.parametrize("algo", [ALGOS[CourseDQN].param(), ALGOS[CourseDDPG].param(), ALGOS[CourseSAC].param()])
def test_batch_larger_than_buffer_samples_with_replacement(algo):
    # As SB3's replay buffers: indices are drawn with replacement, so a batch may exceed the buffer
    model = make_model(algo, buffer_size=50, batch_size=64, learning_starts=10).learn(30)
    assert model._n_updates > 0 and model.replay_buffer.size() == 30
    assert model.replay_buffer.sample(64).rewards.shape == (64, 1)


def test_learning_rate_schedule_drives_the_optimizer():
    # A schedule passes the construction check unevaluated (a negative value it might return is not checked), and
    # training then sets Adam's step size from it at the remaining progress, as SB3 does
    progress_seen = []

    def schedule(progress: float) -> float:
        progress_seen.append(progress)
        return 1e-3 * progress

    model = CourseDQN("MlpPolicy", "CartPole-v1", learning_rate=schedule, learning_starts=10, policy_kwargs=dict(net_arch=[8]))
    model.learn(100)
    (group,) = model.policy.optimizer.param_groups
    remaining = model._current_progress_remaining
    assert 0 <= remaining < 0.2 and group["lr"] == pytest.approx(1e-3 * remaining)
    assert progress_seen[0] == 1.0 and progress_seen == sorted(progress_seen, reverse=True) and len(progress_seen) > 50


# -- bad model files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", COURSE)
@pytest.mark.parametrize("damage", ["truncated", "bit_flips", "garbage"])
def test_truncated_or_corrupted_zip(algo, damage, tmp_path):
    path = tmp_path / "model.zip"
    make_model(algo).save(path)
    content = bytearray(path.read_bytes())
    if damage == "truncated":
        content = content[: len(content) // 2]
    elif damage == "bit_flips":
        for i in range(len(content) // 4, len(content) // 2, 97):
            content[i] ^= 0xFF
    else:
        content = bytearray(b"not a model" * 100)
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match=r"model\.zip is not a complete model file .*truncated or corrupted"):
        algo.cls.load(path)


@pytest.mark.parametrize(
    ("saver", "loader"),
    [pytest.param(a, b, id=f"{a.id}-{b.id}") for a in COURSE_ALGOS for b in COURSE_ALGOS if a is not b],
)
def test_model_of_another_class(saver, loader, tmp_path):
    make_model(saver).save(tmp_path / "model.zip")
    with pytest.raises(ValueError, match=f"holds a {saver.id} model: load it with {saver.id}.load, not {loader.id}.load"):
        loader.cls.load(tmp_path / "model.zip")


class UserDQN(CourseDQN):
    """A user's subclass (its name is what a course model file records)."""


def test_model_saved_by_a_subclass_loads_with_its_parent_as_in_sb3(tmp_path):
    # SB3's DQN.load takes a file saved by a subclass of DQN; CourseDQN.load takes one of a subclass of CourseDQN, and a
    # subclass's load takes its parent's file; another algorithm's load still refuses it
    model = UserDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8]))
    model.save(tmp_path / "user.zip")
    assert_same_parameters(model, CourseDQN.load(tmp_path / "user.zip"))
    assert_same_parameters(model, DQN.load(tmp_path / "user.zip"))
    CourseDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8])).save(tmp_path / "parent.zip")
    assert type(UserDQN.load(tmp_path / "parent.zip")) is UserDQN
    with pytest.raises(ValueError, match=r"holds a UserDQN model: load it with UserDQN\.load, not REINFORCE\.load"):
        REINFORCE.load(tmp_path / "user.zip")


@pytest.mark.parametrize(("saver", "loader"), [(SAC, CourseDQN), (DQN, CourseSAC), (A2C, CourseDDPG), (SAC, REINFORCE)])
def test_sb3_model_of_another_class(saver, loader, tmp_path):
    # SB3's files do not name their algorithm: the saved policy class does
    env_id = "Pendulum-v1" if saver is SAC else "CartPole-v1"
    saver("MlpPolicy", env_id, policy_kwargs=dict(net_arch=[8])).save(tmp_path / "model.zip")
    match = f"{loader.__name__} needs a .* subclass, got .*; a model saved by another algorithm"
    with pytest.raises(ValueError, match=match):
        loader.load(tmp_path / "model.zip")


def test_course_dqn_loads_sb3_dqn_checkpoint(tmp_path):
    # The other way round is a feature: CourseDQN keeps SB3's DQNPolicy, so SB3's checkpoints load.
    dqn = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8]))
    dqn.save(tmp_path / "dqn.zip")
    loaded = CourseDQN.load(tmp_path / "dqn.zip")
    assert_same_parameters(dqn, loaded)


@pytest.mark.parametrize("algo", COURSE)
def test_model_saved_with_other_spaces(algo, tmp_path):
    make_model(algo).save(tmp_path / "model.zip")
    other = SpaceEnv(spaces.Box(-1, 1, (7,), np.float32), algo.action_spaces[0])
    with pytest.raises(ValueError, match="Observation spaces do not match"):
        algo.cls.load(tmp_path / "model.zip", env=make_vec_env(lambda: other))


# -- an env whose step raises ---------------------------------------------------------------------------------


class ExplodingEnv(SpaceEnv):
    def __init__(self, action_space: spaces.Space, at_step: int = 30) -> None:
        super().__init__(spaces.Box(-1, 1, (4,), np.float32), action_space)
        self.at_step, self.calls = at_step, 0

    def step(self, action):
        self.calls += 1
        if self.calls == self.at_step:
            raise RuntimeError(f"boom at step {self.calls}")
        return super().step(action)


@pytest.mark.parametrize("algo", SINGLE_PROCESS)
def test_env_step_raising_inside_learn(algo, tmp_path):
    model = make_model(algo, ExplodingEnv(algo.action_spaces[0]))
    with pytest.raises(RuntimeError, match="boom at step 30"):
        model.learn(200)
    # The exception is the env's own; the model is intact and can be saved and trained on.
    assert model.num_timesteps == 29
    model.save(tmp_path / "model.zip")
    assert algo.cls.load(tmp_path / "model.zip").num_timesteps == 29
    model.set_env(make_vec_env(lambda: SpaceEnv(spaces.Box(-1, 1, (4,), np.float32), algo.action_spaces[0])))
    model.learn(20, reset_num_timesteps=False)
    assert model.num_timesteps >= 49


# -- NaN / inf ------------------------------------------------------------------------------------------------


class NaNEnv(SpaceEnv):
    """NaN reward at its 12th step (the 2nd step of the 2nd episode)."""

    def __init__(self) -> None:
        super().__init__(spaces.Box(-1, 1, (4,), np.float32), spaces.Discrete(2))
        self.calls = 0

    def step(self, action):
        self.calls += 1
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, float("nan") if self.calls == 12 else reward, terminated, truncated, info


def nan_env() -> gym.Env:
    return CheckFinite(NaNEnv())


@pytest.mark.parametrize("algo", [ALGOS[CourseDQN].param(), ALGOS[REINFORCE].param()])
def test_check_finite_names_the_step(algo):
    model = make_model(algo, make_vec_env(nan_env))
    with pytest.raises(NonFiniteError, match=r"non-finite reward at env step 12 \(step 2 of the episode\)"):
        model.learn(100)


def test_check_finite_in_a3c_worker():
    model = A3C("MlpPolicy", nan_env, n_workers=1, policy_kwargs=dict(net_arch=dict(trunk=[8], vf=[8])))
    with pytest.raises(A3CWorkerError, match="NonFiniteError: non-finite reward at env step 12"):
        model.learn(100)


def test_check_finite_passes_finite_values():
    env = CheckFinite(gym.make("CartPole-v1"))
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    assert env.total_steps == 5


# -- saving: disk full, unwritable directory ------------------------------------------------------------------


def fail_halfway(path, *args, **kwargs):
    """A writer that leaves half a file behind, as a full disk does."""
    with open(path, "wb") as file:
        file.write(b"PK\x03\x04 half a file")
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("algo", [ALGOS[CourseDQN].param(), ALGOS[REINFORCE].param()])
def test_disk_full_keeps_previous_checkpoint(algo, tmp_path, monkeypatch):
    model = make_model(algo, seed=0)
    model.save(tmp_path / "model.zip")
    before = {name: p.clone() for name, p in model.policy.state_dict().items()}
    with th.no_grad():
        for param in model.policy.parameters():
            param.add_(1.0)
    monkeypatch.setattr("stable_baselines3.common.base_class.save_to_zip_file", fail_halfway)
    with pytest.raises(OSError, match=r"could not write .*model\.zip: No space left on device; the previous file") as error:
        model.save(tmp_path / "model")
    assert error.value.errno == errno.ENOSPC
    loaded = algo.cls.load(tmp_path / "model.zip")
    assert all(th.equal(before[name], p) for name, p in loaded.policy.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"]
    # the rename keeps the mode a plain open() would give
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "model.zip").stat().st_mode & 0o777 == 0o666 & ~umask


def test_disk_full_keeps_previous_replay_buffer(tmp_path, monkeypatch):
    model = make_model(ALGOS[CourseDQN]).learn(30)
    model.save_replay_buffer(tmp_path / "buffer")
    monkeypatch.setattr("stable_baselines3.common.off_policy_algorithm.save_to_pkl", fail_halfway)
    model.learn(10, reset_num_timesteps=False)
    with pytest.raises(OSError, match="No space left on device"):
        model.save_replay_buffer(tmp_path / "buffer.pkl")
    model.load_replay_buffer(tmp_path / "buffer.pkl")
    assert model.replay_buffer.size() == 30 and [p.name for p in tmp_path.iterdir()] == ["buffer.pkl"]


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_truncated_or_corrupted_replay_buffer(damage, tmp_path):
    model = make_model(ALGOS[CourseDQN]).learn(30)
    path = tmp_path / "buffer.pkl"
    model.save_replay_buffer(path)
    path.write_bytes(path.read_bytes()[:200] if damage == "truncated" else b"not a pickle")
    buffer = model.replay_buffer
    with pytest.raises(ValueError, match=r"buffer\.pkl is not a complete replay buffer file \((EOFError|UnpicklingError): "):
        model.load_replay_buffer(path)
    assert model.replay_buffer is buffer and buffer.size() == 30


def test_unwritable_directory(tmp_path, monkeypatch):
    model = make_model(ALGOS[CourseSAC])
    (tmp_path / "not_a_dir").write_text("a file where the log directory should be")
    with pytest.raises(OSError, match=r"could not write .*not_a_dir/run/model\.zip"):
        model.save(tmp_path / "not_a_dir" / "run" / "model.zip")

    # a read-only folder (chmod does not stop root, who runs these tests): the errno keeps its subclass
    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("sb3_course.common.files._create_temporary", read_only)
    with pytest.raises(PermissionError, match=r"could not write .*model\.zip: Permission denied; the previous file"):
        model.save(tmp_path / "model.zip")


# -- SIGINT / SIGTERM: checkpoint and resume ------------------------------------------------------------------

TRAIN_SCRIPT = """
import sys
from stable_baselines3.common.callbacks import BaseCallback
from sb3_course import {cls}
from sb3_course.common.checkpoint import CheckpointOnSignal

class Ready(BaseCallback):
    def _on_step(self):
        if self.n_calls == 50:
            open(sys.argv[1] + "/ready", "w").close()
        return True

model = {cls}("MlpPolicy", "{env_id}", seed=0, **{kwargs!r})
on_signal = CheckpointOnSignal(sys.argv[1])
model.learn(10_000_000, callback=[Ready(), on_signal])
sys.exit(128 + on_signal.received if on_signal.received else 0)
"""


@pytest.mark.parametrize(
    ("algo", "signum"),
    [
        pytest.param(ALGOS[CourseDQN], signal.SIGTERM, id="CourseDQN-SIGTERM"),
        pytest.param(ALGOS[REINFORCE], signal.SIGINT, id="REINFORCE-SIGINT"),
        pytest.param(ALGOS[A3C], signal.SIGTERM, id="A3C-SIGTERM"),
    ],
)
def test_signal_checkpoint_and_resume(algo, signum, tmp_path):
    kwargs = {**algo.kwargs, "buffer_size": 1_000_000} if "buffer_size" in algo.kwargs else algo.kwargs
    script = textwrap.dedent(TRAIN_SCRIPT).format(cls=algo.id, env_id=algo.env_id, kwargs=kwargs)
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "ready").exists():
            assert process.poll() is None and time.monotonic() < deadline, "training did not start"
            time.sleep(0.05)
        process.send_signal(signum)
        assert process.wait(timeout=60) == 128 + signum
    finally:
        process.kill()
    model: BaseAlgorithm = load_checkpoint(algo.cls, tmp_path, env=make_vec_env(algo.env_id))
    stopped_at = model.num_timesteps
    assert stopped_at >= 50
    if algo.cls is CourseDQN:
        # SB3 stores a step's transition after the callbacks: the step that saw the signal is not in the buffer
        assert model.replay_buffer.size() == stopped_at - 1
    model.learn(40, reset_num_timesteps=False)
    assert model.num_timesteps >= stopped_at + 40
    if algo.cls is CourseDQN:
        assert model.replay_buffer.size() == model.num_timesteps - 1


class RaiseSignal(BaseCallback):
    def __init__(self, signum: int, times: int) -> None:
        super().__init__()
        self.signum, self.times = signum, times

    def _on_step(self) -> bool:
        if self.n_calls == 10:
            for _ in range(self.times):
                signal.raise_signal(self.signum)
        return True


def test_signal_in_process_and_handlers_restored(tmp_path):
    # A process started with SIGINT ignored (a background job of a non-interactive shell) has no Ctrl-C handler
    # to chain to; give the test Python's default one, as an interactive process has
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        model = make_model(ALGOS[CourseSAC], SpaceEnv(spaces.Box(-1, 1, (4,), np.float32), BOX))
        on_signal = CheckpointOnSignal(tmp_path)
        model.learn(1_000, callback=[RaiseSignal(signal.SIGTERM, 1), on_signal])
        assert on_signal.received == signal.SIGTERM and model.num_timesteps == 10
        assert on_signal.model_path.exists() and on_signal.replay_buffer_path.exists()
        # a second signal before the checkpoint runs the previous handler: Ctrl-C twice still interrupts
        with pytest.raises(KeyboardInterrupt):
            model.learn(1_000, callback=[on_signal, RaiseSignal(signal.SIGINT, 2)])
        assert {signum: signal.getsignal(signum) for signum in before} == before
        # used as a context manager, the handlers come back when learn() raises
        model.set_env(make_vec_env(lambda: ExplodingEnv(BOX)))
        with CheckpointOnSignal(tmp_path) as on_signal, pytest.raises(RuntimeError, match="boom"):
            model.learn(1_000, callback=on_signal)
        assert {signum: signal.getsignal(signum) for signum in before} == before
    finally:
        signal.signal(signal.SIGINT, inherited)


@pytest.mark.parametrize("algo", COURSE)
def test_string_learning_rate_is_one_error_class_for_every_algorithm(algo):
    """One ``LearningRateTypeError`` (a ``TypeError`` and SB3's ``AssertionError``) for all five classes."""
    from sb3_course.common.validation import LearningRateTypeError

    with pytest.raises(LearningRateTypeError, match="learning_rate must be a number, got '1e-3'"):
        algo.cls("MlpPolicy", algo.env_id, learning_rate="1e-3")

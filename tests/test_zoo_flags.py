"""rl-zoo3's flags and YAML features through ``sb3-course train`` for the five course keys, on tiny budgets."""

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.utils import SimpleLinearSchedule
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.vec_env import SubprocVecEnv, VecCheckNan, VecFrameStack, VecNormalize

from sb3_course.cli import main
from sb3_course.ddpg import CourseDDPG
from sb3_course.zoo import COURSE_ALGOS

# course key -> (env id, recipe block): a few hundred steps, small buffers, one A3C worker
KEYS: dict[str, tuple[str, dict[str, Any]]] = {
    "course_dqn": ("CartPole-v1", {"learning_starts": 100, "buffer_size": 1000}),
    "reinforce": ("CartPole-v1", {}),
    "a3c": ("CartPole-v1", {"n_workers": 1, "n_steps": 20}),
    "course_ddpg": ("Pendulum-v1", {"learning_starts": 100, "buffer_size": 1000}),
    "course_sac": ("Pendulum-v1", {"learning_starts": 100, "buffer_size": 1000}),
}
# env id -> a constructor argument of the env, a value that is not its default, and the attribute that holds it
ENV_KWARGS = {"CartPole-v1": ("sutton_barto_reward", True, "_sutton_barto_reward"), "Pendulum-v1": ("g", 9.0, "g")}
# A3C's workers step plain gym environments: VecEnv wrappers are refused before training, with this line
A3C_NO_VEC_WRAPPER = "wraps the env in a VecEnvWrapper, which A3C's workers (plain gym envs) cannot use"


class Run:
    """One ``sb3-course train`` in this process; keeps the ExperimentManager and the model rl-zoo3 trained."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.manager: ExperimentManager
        self.model: BaseAlgorithm
        self.start_parameters: list[np.ndarray] = []
        zoo_learn = ExperimentManager.learn

        def learn(manager: ExperimentManager, model: BaseAlgorithm) -> None:
            self.manager, self.model = manager, model
            self.start_parameters = [p.detach().numpy().copy() for p in model.policy.parameters()]
            zoo_learn(manager, model)

        monkeypatch.setattr(ExperimentManager, "learn", learn)

    def recipe(self, key: str, **features: Any) -> Path:
        env_id, block = KEYS[key]
        path = self.tmp_path / f"{key}.yml"
        path.write_text(yaml.safe_dump({env_id: {"policy": "MlpPolicy", "n_timesteps": 200, **block, **features}}))
        return path

    def __call__(self, key: str, *argv: str, **features: Any) -> "Run":
        env_id, _ = KEYS[key]
        self.monkeypatch.setattr(sys, "argv", [
            "sb3-course", "train", "--algo", key, "--env", env_id, "-conf", str(self.recipe(key, **features)),
            "-f", str(self.tmp_path / "logs"), "--seed", "0", "--num-threads", "1", *argv,
        ])  # fmt: skip
        main()
        return self

    def eval_callback(self) -> EvalCallback:
        (callback,) = (callback for callback in self.manager.callbacks if isinstance(callback, EvalCallback))
        return callback


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    return Run(tmp_path, monkeypatch)


def env_attribute(model: BaseAlgorithm, name: str) -> Any:
    """``name`` of the environment the model's steps come from (A3C's workers build theirs from a factory)."""
    if hasattr(model, "env_fn"):
        return getattr(model.env_fn().unwrapped, name)
    assert model.env is not None
    return model.env.get_attr(name)[0]


KEY_IDS = sorted(KEYS)


@pytest.mark.parametrize("key", KEY_IDS)
def test_vec_env_subproc(key, run):
    run(key, "--vec-env", "subproc", n_envs=2)
    assert isinstance(run.model.env, SubprocVecEnv) and run.model.env.num_envs == 2
    assert run.model.num_timesteps >= 200


@pytest.mark.parametrize("key", KEY_IDS)
def test_env_kwargs_and_eval_env_kwargs(key, run):
    env_id, _ = KEYS[key]
    name, value, attribute = ENV_KWARGS[env_id]
    run(key, "--env-kwargs", f"{name}:{value!r}", "--eval-freq", "100", "--eval-episodes", "1")
    assert env_attribute(run.model, attribute) == value
    # without --eval-env-kwargs, rl-zoo3 evaluates with --env-kwargs
    assert run.eval_callback().eval_env.get_attr(attribute)[0] == value
    run(key, "--eval-env-kwargs", f"{name}:{value!r}", "--eval-freq", "100", "--eval-episodes", "1")
    assert env_attribute(run.model, attribute) != value
    assert run.eval_callback().eval_env.get_attr(attribute)[0] == value


@pytest.mark.parametrize("key", KEY_IDS)
def test_n_eval_envs(key, run):
    run(key, "--n-eval-envs", "2", "--eval-freq", "100", "--eval-episodes", "2")
    callback = run.eval_callback()
    assert callback.eval_env.num_envs == 2
    assert np.load(Path(callback.log_path).with_suffix(".npz"))["results"].shape == (2, 2)


@pytest.mark.parametrize("key", KEY_IDS)
def test_conf_file_as_python_file_and_module(key, run, tmp_path, monkeypatch):
    env_id, block = KEYS[key]
    recipe = {env_id: {"policy": "MlpPolicy", "n_timesteps": 200, "gamma": 0.9, **block}}
    # a module name of its own: rl-zoo3 edits the imported module's dict in place, and the import is cached
    module = f"recipes_{key}_{tmp_path.name}"
    (tmp_path / f"{module}.py").write_text(f"hyperparams = {recipe!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for conf in (str(tmp_path / f"{module}.py"), module):
        monkeypatch.setattr(sys, "argv", [
            "sb3-course", "train", "--algo", key, "--env", env_id, "-conf", conf, "-f", str(tmp_path / "logs"),
            "--seed", "0", "--num-threads", "1",
        ])  # fmt: skip
        main()
        assert run.model.gamma == 0.9


@pytest.mark.parametrize("key", KEY_IDS)
def test_trained_agent_continues_training(key, run, tmp_path):
    env_id, _ = KEYS[key]
    first = run(key, "--save-replay-buffer").model
    saved = tmp_path / "logs" / key / f"{env_id}_1" / f"{env_id}.zip"
    second = run(key, "-i", str(saved), "-n", "100")
    # the weights continue from the saved model's
    for trained, start in zip(first.policy.parameters(), second.start_parameters, strict=True):
        np.testing.assert_array_equal(trained.detach().numpy(), start)
    if hasattr(first, "replay_buffer"):
        # rl-zoo3 loads replay_buffer.pkl next to the model: 200 transitions, then 100 more
        assert (tmp_path / "logs" / key / f"{env_id}_1" / "replay_buffer.pkl").is_file()
        assert second.model.replay_buffer.size() == 300


@pytest.mark.parametrize("key", KEY_IDS)
def test_yaml_callback(key, run, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    callback = [{"stable_baselines3.common.callbacks.CheckpointCallback": {"save_freq": 100, "save_path": str(checkpoints)}}]
    run(key, callback=callback)
    assert sorted(path.name for path in checkpoints.iterdir()) == ["rl_model_100_steps.zip", "rl_model_200_steps.zip"]


@pytest.mark.parametrize("key", KEY_IDS)
@pytest.mark.parametrize(
    ("feature", "wrapper"),
    [
        ({"vec_env_wrapper": "stable_baselines3.common.vec_env.VecCheckNan"}, VecCheckNan),
        ({"frame_stack": 2}, VecFrameStack),
        ({"normalize": True}, VecNormalize),
    ],
    ids=["vec_env_wrapper", "frame_stack", "normalize"],
)
def test_vec_env_wrappers_from_yaml(key, feature, wrapper, run, tmp_path, capsys):
    if key == "a3c":
        with pytest.raises(SystemExit) as exited:
            run(key, **feature)
        err = capsys.readouterr().err.strip()
        assert exited.value.code == 2 and len(err.splitlines()) == 1 and A3C_NO_VEC_WRAPPER in err, err
        assert not (tmp_path / "logs").exists()
        return
    run(key, **feature)
    assert isinstance(run.model.env, wrapper)
    if wrapper is VecFrameStack:
        assert run.model.observation_space.shape[0] == 2 * run.model.env.venv.observation_space.shape[0]
    if wrapper is VecNormalize:
        env_id, _ = KEYS[key]
        assert (tmp_path / "logs" / key / f"{env_id}_1" / env_id / "vecnormalize.pkl").is_file()


@pytest.mark.parametrize("key", KEY_IDS)
def test_device(key, run):
    run(key, "--device", "cpu")
    assert run.model.device.type == "cpu"


def test_a3c_refuses_a_cuda_device(run, capsys):
    with pytest.raises(SystemExit) as exited:
        run("a3c", "--device", "cuda")
    err = capsys.readouterr().err.strip()
    expected = (
        "sb3-course train: error: --device cuda: A3C's workers update one policy in shared CPU memory (Hogwild), so "
        "device must be 'cpu' or 'auto', got 'cuda': pass device='cpu'"
    )
    assert exited.value.code == 2 and err == expected


@pytest.mark.parametrize("key", KEY_IDS)
def test_uuid(key, run, tmp_path):
    env_id, _ = KEYS[key]
    run(key, "--uuid")
    (folder,) = (tmp_path / "logs" / key).iterdir()
    assert folder.name.startswith(f"{env_id}_1_") and len(folder.name) == len(f"{env_id}_1_") + 36
    assert (folder / f"{env_id}.zip").is_file()


@pytest.mark.parametrize("key", KEY_IDS)
def test_optimization_log_path(key, run, tmp_path):
    run(
        key, "-optimize", "--n-trials", "1", "--n-jobs", "1", "--sampler", "random", "--pruner", "none",
        "--n-evaluations", "1", "--eval-episodes", "1", "--no-optim-plots",
        "--optimization-log-path", str(tmp_path / "trials"),
    )  # fmt: skip
    # rl-zoo3 numbers the trials from 0
    assert (tmp_path / "trials" / "trial_0" / "evaluations.npz").is_file()
    assert (tmp_path / "trials" / "trial_0" / "best_model.zip").is_file()


def test_lin_schedules_for_every_learning_rate_argument(run, tmp_path):
    """``lin_<x>`` in a recipe makes a linear schedule of CourseDDPG's actor and critic learning rates too."""
    run("course_ddpg", actor_learning_rate="lin_1e-4", critic_learning_rate="lin_1e-3")
    model = CourseDDPG.load(tmp_path / "logs" / "course_ddpg" / "Pendulum-v1_1" / "Pendulum-v1.zip")
    for schedule, initial in ((model.actor_lr_schedule, 1e-4), (model.critic_lr_schedule, 1e-3)):
        assert isinstance(schedule.value_schedule, SimpleLinearSchedule)
        assert schedule(0.5) == pytest.approx(initial / 2)
    # The optimizers followed the schedules down to zero at the end of training (a constant rate stays put)
    assert model.actor.optimizer.param_groups[0]["lr"] == 0.0
    assert model.critic.optimizer.param_groups[0]["lr"] == 0.0


def test_every_course_key_is_covered():
    assert set(KEYS) == set(COURSE_ALGOS)

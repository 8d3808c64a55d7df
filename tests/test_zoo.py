import os
import pickle
import subprocess
import sys

import pytest
import yaml
from rl_zoo3.utils import ALGOS

from sb3_course.cli import with_default_config
from sb3_course.common.buffers import FrameStackReplayBuffer
from sb3_course.zoo import COURSE_ALGOS, hyperparams_dir, register


def sb3_course(*args: str, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run the ``sb3-course`` command of the installed package (its module, to use this interpreter)."""
    return subprocess.run(
        [sys.executable, "-m", "sb3_course.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_register_adds_course_algos_to_rl_zoo3():
    register()
    for key, algo in COURSE_ALGOS.items():
        assert ALGOS[key] is algo
    assert "dqn" in ALGOS


def test_default_config_only_for_course_keys():
    argv = ["--algo", "course_dqn", "--env", "CartPole-v1"]
    assert with_default_config(argv) == [*argv, "--conf-file", str(hyperparams_dir() / "course_dqn.yml")]
    assert with_default_config(["--algo", "dqn"]) == ["--algo", "dqn"]
    custom = ["--algo", "course_dqn", "-conf", "mine.yml"]
    assert with_default_config(custom) == custom


@pytest.mark.parametrize("key", sorted(COURSE_ALGOS))
def test_every_recipe_file_exists_and_loads(key):
    with open(hyperparams_dir() / f"{key}.yml") as file:
        recipes = yaml.safe_load(file)
    assert "default" in recipes


def test_train_course_dqn_with_cli(tmp_path):
    result = sb3_course(
        "train", "--algo", "course_dqn", "--env", "CartPole-v1", "-n", "300", "--seed", "0",
        "-f", str(tmp_path), "--eval-freq", "150", "--eval-episodes", "2", "-params", "learning_starts:100",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = tmp_path / "course_dqn" / "CartPole-v1_1"
    assert (run / "CartPole-v1.zip").is_file()
    assert (run / "evaluations.npz").is_file()
    with open(run / "CartPole-v1" / "config.yml") as file:
        config = dict(yaml.unsafe_load(file))
    assert config["learning_starts"] == 100


def test_list_and_bad_verb(tmp_path):
    # Run outside the checkout: after a non-editable install (as in CI) this reads the installed recipes.
    listed = sb3_course("list", cwd=tmp_path)
    assert listed.returncode == 0 and "course_dqn" in listed.stdout and "CourseDQN" in listed.stdout
    bad = sb3_course("fly")
    assert bad.returncode == 2 and "unknown verb 'fly'" in bad.stderr


def test_train_with_frame_stack_replay_buffer_from_a_recipe(tmp_path):
    """rl-zoo3 stacks frames (frame_stack), SB3 moves channels first, the recipe names FrameStackReplayBuffer."""
    recipe = {
        "SB3CourseRandomFrames-v0": {
            "n_timesteps": 300,
            "policy": "CnnPolicy",
            "frame_stack": 3,
            "replay_buffer_class": "FrameStackReplayBuffer",
            "replay_buffer_kwargs": "dict(n_stack=3)",
            "env_kwargs": {"frame_shape": [36, 36, 3], "episode_length": [5, 30]},
            "buffer_size": 200,
            "learning_starts": 100,
            "batch_size": 16,
            "policy_kwargs": "dict(features_extractor_kwargs=dict(features_dim=16), net_arch=[8])",
        }
    }
    config = tmp_path / "frames.yml"
    config.write_text(yaml.safe_dump(recipe))
    result = sb3_course(
        "train", "--algo", "course_dqn", "--env", "SB3CourseRandomFrames-v0", "--seed", "0",
        "--gym-packages", "sb3_course.benchmarks.frames_env", "-conf", str(config), "-f", str(tmp_path),
        "--save-replay-buffer", "--num-threads", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "course_dqn" / "SB3CourseRandomFrames-v0_1" / "replay_buffer.pkl", "rb") as file:
        buffer = pickle.load(file)
    assert isinstance(buffer, FrameStackReplayBuffer) and buffer.obs_shape == (9, 36, 36) and buffer.channels_first

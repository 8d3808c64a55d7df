"""
``sb3-course`` commands given a user's files and Python texts as an attacker or a careless user would (issue 27): a
file where a folder goes, env kwargs the env refuses, truncated models (trained here or downloaded), and Python
values whose evaluation has a side effect (evaluated once, not once by the checks and once by rl-zoo3).
"""

import subprocess
import sys
from pathlib import Path

import pytest
from stable_baselines3 import DQN
from test_zoo_cli import sb3_course

from sb3_course import CourseDQN

DQN_ARGS = ["--algo", "course_dqn", "--env", "CartPole-v1"]
TINY = dict(policy_kwargs=dict(net_arch=[8]))


# Bad input of train: one line, exit 2, nothing created (rl-zoo3 made its log folder, then ended in a traceback)
NOT_TRAINED = {
    "log folder is a file": (["-f", "a_file"], "-f/--log-folder a_file: {tmp}/a_file is a file, not a folder"),
    "log folder under a file": (["-f", "a_file/logs"], "-f/--log-folder a_file/logs: {tmp}/a_file is a file"),
    "tensorboard folder is a file": (["-f", "logs", "-tb", "a_file"], "-tb/--tensorboard-log a_file: {tmp}/a_file"),
    "env kwargs the env refuses": (
        ["-f", "logs", "--env-kwargs", "bogus:1"],
        "--env-kwargs: CartPole-v1 cannot be made with {{'bogus': 1}} (TypeError: CartPoleEnv.__init__() got an "
        "unexpected keyword argument 'bogus'",
    ),
    "eval env kwargs not Python": (
        ["-f", "logs", "--eval-env-kwargs", "render_mode:abc"],
        "--eval-env-kwargs 'render_mode:abc': VALUE is read as Python and fails (NameError",
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_TRAINED))
def test_bad_files_and_env_kwargs_exit_before_training(case, tmp_path, monkeypatch, refused):
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    argv, message = NOT_TRAINED[case]
    refused(
        lambda: sb3_course(monkeypatch, "train", *DQN_ARGS, *argv), "sb3-course train: error: ", message.format(tmp=tmp_path)
    )
    assert [path.name for path in tmp_path.iterdir()] == ["a_file"], "something was written"


def saved_run(folder: Path, algo: str, cls: type) -> Path:
    """A model of ``cls`` saved where rl-zoo3's enjoy finds it (``<folder>/<algo>/CartPole-v1_1/CartPole-v1.zip``)."""
    path = folder / algo / "CartPole-v1_1" / "CartPole-v1.zip"
    path.parent.mkdir(parents=True)
    cls("MlpPolicy", "CartPole-v1", **TINY).save(path)
    return path


@pytest.mark.parametrize(
    ("verb", "folder", "algo", "cls"),
    [
        ("enjoy", "logs", "course_dqn", CourseDQN),
        ("record_video", "logs", "course_dqn", CourseDQN),
        # What load_from_hub writes: rl-trained-agents/<algo>/<env>_1/<env>.zip, here an SB3 key's model
        ("enjoy", "rl-trained-agents", "dqn", DQN),
    ],
)
def test_a_truncated_model_to_play_is_one_line(verb, folder, algo, cls, tmp_path, monkeypatch, refused):
    monkeypatch.chdir(tmp_path)
    path = saved_run(tmp_path / folder, algo, cls)
    path.write_bytes(path.read_bytes()[:3000])
    argv = [verb, "--algo", algo, "--env", "CartPole-v1", "-f", folder, "-n", "10"]
    line = refused(
        lambda: sb3_course(monkeypatch, *argv), f"sb3-course {verb}: error: model: ", "is not a complete model file"
    )
    assert f"{folder}/{algo}/CartPole-v1_1/CartPole-v1.zip" in line and "truncated or corrupted?" in line


def test_a_model_of_another_course_algorithm_to_play_is_one_line(tmp_path, monkeypatch, refused):
    # A REINFORCE model where course_dqn's is expected (a copied or renamed file)
    from sb3_course import REINFORCE

    monkeypatch.chdir(tmp_path)
    path = saved_run(tmp_path / "logs", "course_dqn", REINFORCE)
    argv = ["enjoy", *DQN_ARGS, "-f", "logs", "-n", "10", "--no-render"]
    refused(lambda: sb3_course(monkeypatch, *argv), "sb3-course enjoy: error: model: ", f"{path.name} holds a REINFORCE model")


def test_a_truncated_trained_agent_exits_before_training(tmp_path, monkeypatch, refused):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "agent.zip"
    CourseDQN("MlpPolicy", "CartPole-v1", **TINY).save(path)
    path.write_bytes(path.read_bytes()[:3000])
    argv = ["train", *DQN_ARGS, "-f", "logs", "-i", "agent.zip"]
    refused(lambda: sb3_course(monkeypatch, *argv), "sb3-course train: error: -i/--trained-agent: ", "not a complete model")
    assert [path.name for path in tmp_path.iterdir()] == ["agent.zip"]


# A Python text whose evaluation appends to a file: the checks and rl-zoo3 share one evaluation
SIDE_EFFECT = "open('evaluated.txt', 'a').write('x') and dict(net_arch=[8], activation_fn=nn.ReLU)"


@pytest.mark.parametrize("where", ["-params", "yaml"])
def test_python_values_are_evaluated_once(where, tmp_path):
    recipe = "CartPole-v1:\n  n_timesteps: 100\n  policy: MlpPolicy\n  learning_starts: 10\n  buffer_size: 100\n"
    argv = ["train", *DQN_ARGS, "-f", "logs", "--num-threads", "1", "--eval-freq", "-1"]
    if where == "yaml":
        recipe += f'  policy_kwargs: "{SIDE_EFFECT}"\n'
    else:
        argv += ["-params", f"policy_kwargs:{SIDE_EFFECT}"]
    (tmp_path / "small.yml").write_text(recipe)
    command = [sys.executable, "-m", "sb3_course.cli", *argv, "-conf", "small.yml"]
    completed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert (tmp_path / "evaluated.txt").read_text() == "x"
    # rl-zoo3 trained with the value (nn.ReLU: rl-zoo3's namespace, which the checks use too)
    model = CourseDQN.load(tmp_path / "logs" / "course_dqn" / "CartPole-v1_1" / "CartPole-v1.zip")
    assert model.policy_kwargs["net_arch"] == [8]

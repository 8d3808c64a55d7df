"""
What a newcomer meets first: enjoy's returns, one-line errors of the CLI, the torch threads of train, record_video
without its extra or a display, the report's loss panels, rl-zoo3's plots without a display.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from test_zoo_cli import run_module, sb3_course

from sb3_course.common.wrappers import CourseCartPoleReward
from sb3_course.version import __version__
from sb3_course.zoo import default_config
from sb3_course.zoo.play import RETURN_NOTE, VecMonitorReturn
from sb3_course.zoo.report import ACTOR_TAGS, CRITIC_TAGS, panel_tag
from sb3_course.zoo.threads import with_default_threads

WHERE = ["--algo", "course_dqn", "--env", "CartPole-v1", "-f", "logs"]


def cli(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_module("sb3_course.cli", *argv, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """course_dqn on CartPole-v1 with its recipe (the CourseCartPoleReward shaping outside Monitor), 200 steps."""
    root = tmp_path_factory.mktemp("first_contact")
    result = cli("train", *WHERE, "-n", "200", "--seed", "0", "-params", "learning_starts:100", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def test_monitor_return_sums_the_env_reward_not_the_shaped_one():
    venv = VecMonitorReturn(make_vec_env("CartPole-v1", n_envs=2, seed=0, wrapper_class=CourseCartPoleReward))
    venv.reset()
    sums, returns, lengths, steps = np.zeros(2), [], [], np.zeros(2)
    while len(returns) < 6:
        _, rewards, dones, infos = venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
        sums += rewards
        steps += 1
        for index in np.flatnonzero(dones):
            returns.append(sums[index])
            lengths.append(steps[index])
            assert sums[index] == infos[index]["episode"]["r"]
            sums[index] = steps[index] = 0
    venv.close()
    assert returns == lengths  # CartPole's own reward: +1 a step; the shaping would give -1 or +1 an episode


def test_enjoy_reports_the_env_return_and_says_so(trained, monkeypatch, capsys):
    monkeypatch.chdir(trained)
    sb3_course(monkeypatch, "enjoy", *WHERE, "--no-render", "-n", "200")
    out = capsys.readouterr().out
    assert RETURN_NOTE in out
    mean_reward = float(out.split("Mean reward: ")[1].split()[0])
    mean_length = float(out.split("Mean episode length: ")[1].split()[0])
    assert mean_reward == mean_length > 1  # CartPole's return is its length; the shaped sum would be -1 or 1


def test_enjoy_without_the_model_is_one_line(tmp_path):
    result = cli("enjoy", "--algo", "course_dqn", "--env", "CartPole-v1", "-f", "nosuchdir", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        "sb3-course enjoy: error: The nosuchdir/course_dqn folder was not found (train with: sb3-course train --algo"
        " course_dqn --env CartPole-v1 -f nosuchdir)"
    )
    assert list(tmp_path.iterdir()) == []


def test_version(tmp_path):
    result = cli("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"sb3-course {__version__}"


@pytest.mark.parametrize(("verb", "typed"), [("train", "courseDQN"), ("enjoy", "course-dqn"), ("record_video", "Course_DQN")])
def test_misspelt_algo_gets_a_suggestion(verb, typed, monkeypatch, tmp_path, refused):
    monkeypatch.chdir(tmp_path)
    err = refused(
        lambda: sb3_course(monkeypatch, verb, "--algo", typed, "--env", "CartPole-v1"), f"sb3-course {verb}: error: ", typed
    )
    assert err.endswith("did you mean 'course_dqn'?"), err


DQN_RECIPE = ["--algo", "course_dqn", "--env", "CartPole-v1", "--conf-file", str(default_config("course_dqn"))]
# command line -> whether train adds --num-threads 1
THREADS = {
    "course recipe, MLP, CPU": (DQN_RECIPE, True),
    "--num-threads given": ([*DQN_RECIPE, "--num-threads", "2"], False),
    "-params CnnPolicy": ([*DQN_RECIPE, "-params", "policy:'CnnPolicy'"], False),
    "rl-zoo3's dqn recipe": (["--algo", "dqn", "--env", "CartPole-v1"], True),
    "a CNN recipe": (["--algo", "course_dqn", "--env", "CartPole-v1", "--conf-file", "cnn.yml"], False),
    "a Python config": (["--algo", "course_dqn", "--env", "CartPole-v1", "--conf-file", "config.py"], False),
}


@pytest.mark.parametrize("case", list(THREADS))
def test_train_uses_one_torch_thread_for_an_mlp_on_the_cpu(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("cnn.yml").write_text("CartPole-v1:\n  policy: CnnPolicy\n")
    argv, one_thread = THREADS[case]
    assert with_default_threads(argv) == ([*argv, "--num-threads", "1"] if one_thread else argv)


def test_train_passes_the_thread_default_to_rl_zoo3(monkeypatch, tmp_path):
    import rl_zoo3.train

    seen = []
    monkeypatch.setattr(rl_zoo3.train, "train", lambda: seen.append(sys.argv[1:]))
    monkeypatch.chdir(tmp_path)
    sb3_course(monkeypatch, "train", *WHERE, "-n", "100")
    assert seen[0][-2:] == ["--num-threads", "1"]


def test_record_video_without_pygame_is_one_line(trained, monkeypatch, refused):
    monkeypatch.chdir(trained)
    monkeypatch.setitem(sys.modules, "pygame", None)  # as after a base install
    for gif in ([], ["--gif"]):
        err = refused(
            lambda gif=gif: sb3_course(monkeypatch, "record_video", *gif, *WHERE, "-n", "20"),
            "sb3-course record_video: error: cannot render CartPole-v1 (pygame is not installed",
            'pip install "sb3-course[video]"',
        )
        assert err.endswith('pip install "sb3-course[video]"'), err
    assert not list(trained.glob("logs/course_dqn/*/videos"))


def test_record_video_gif_without_pillow_is_one_line(trained, monkeypatch, refused):
    monkeypatch.chdir(trained)
    monkeypatch.setitem(sys.modules, "PIL", None)
    refused(
        lambda: sb3_course(monkeypatch, "record_video", "--gif", *WHERE, "-n", "20"),
        "sb3-course record_video: error: writing the GIF needs Pillow",
        'pip install "sb3-course[video]"',
    )


def test_record_video_gif_prints_no_display_error(trained):
    pytest.importorskip("pygame")
    env = {key: value for key, value in os.environ.items() if key not in ("XDG_RUNTIME_DIR", "SDL_VIDEODRIVER", "DISPLAY")}
    result = cli("record_video", "--gif", *WHERE, "-n", "20", cwd=trained, env=env)
    assert result.returncode == 0, result.stderr
    assert "XDG_RUNTIME_DIR" not in result.stderr + result.stdout
    assert list(trained.glob("logs/course_dqn/CartPole-v1_1/videos/*.gif"))


# the losses each algorithm family logs -> (actor panel, critic panel) of the report
LOGGED = {
    "DQN, CourseDQN, QR-DQN (TD loss)": ({"train/loss"}, (None, "train/loss")),
    "A2C, A3C": ({"train/policy_loss", "train/value_loss", "train/entropy_loss"}, ("train/policy_loss", "train/value_loss")),
    "PPO (total loss too)": (
        {"train/policy_gradient_loss", "train/value_loss", "train/entropy_loss", "train/loss"},
        ("train/policy_gradient_loss", "train/value_loss"),
    ),
    "REINFORCE without baseline (total loss)": ({"train/policy_loss", "train/loss"}, ("train/policy_loss", None)),
    "DDPG, TD3": ({"train/actor_loss", "train/critic_loss"}, ("train/actor_loss", "train/critic_loss")),
    "SAC auto entropy": (
        {"train/actor_loss", "train/critic_loss", "train/ent_coef_loss"},
        ("train/actor_loss", "train/critic_loss"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("family", list(LOGGED))
def test_report_draws_each_loss_in_its_panel(family):
    tags, expected = LOGGED[family]
    scalars = dict.fromkeys(tags, (np.arange(2), np.zeros(2)))
    assert (panel_tag(ACTOR_TAGS, scalars), panel_tag(CRITIC_TAGS, scalars)) == expected


def test_plot_train_without_a_display_writes_a_png(trained):
    pytest.importorskip("seaborn", reason="rl-zoo3's plot scripts import seaborn")
    env = {**{key: value for key, value in os.environ.items() if key != "DISPLAY"}, "MPLBACKEND": "Agg"}
    result = cli("plot_train", "-a", "course_dqn", "-e", "CartPole-v1", "-f", "logs/", cwd=trained, env=env)
    assert result.returncode == 0, result.stderr
    assert "plot_train: saved plot_train-Training-Episodic-Reward.png" in result.stdout
    assert (trained / "plot_train-Training-Episodic-Reward.png").read_bytes()[:4] == b"\x89PNG"

"""``sb3-course`` verbs end to end: train in rl-zoo3's layout, enjoy, plots, record_video, report, bad input."""

import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from rl_zoo3.utils import ALGOS

from sb3_course.zoo import register
from sb3_course.zoo.checks import check_command
from sb3_course.zoo.cli import main
from sb3_course.zoo.report import draw_report, load_scalars

matplotlib.use("Agg")

# course key -> (env id, -params) for the CLI smoke run of each key: a few hundred steps
CLI_RUNS = {
    "reinforce": ("CartPole-v1", []),
    "a3c": ("CartPole-v1", []),
    "course_ddpg": ("Pendulum-v1", ["-params", "learning_starts:100", "buffer_size:1000"]),
    "course_sac": ("Pendulum-v1", ["-params", "learning_starts:100", "buffer_size:1000"]),
}
# The losses each key logs to tensorboard (what `report` draws)
LOSS_TAGS = {
    "reinforce": {"train/policy_loss"},
    "a3c": {"train/policy_loss", "train/value_loss"},
    "course_ddpg": {"train/actor_loss", "train/critic_loss"},
    "course_sac": {"train/actor_loss", "train/critic_loss"},
}
# The run the enjoy / plots / video / report tests read: course_dqn on Acrobot-v1, two seeds
DQN_ENV = "Acrobot-v1"
DQN_TRAIN = [
    "--algo", "course_dqn", "--env", DQN_ENV, "-n", "300", "--eval-freq", "100", "--eval-episodes", "2",
    "--save-freq", "100", "--log-interval", "1", "--num-threads", "1", "-params", "learning_starts:100",
]  # fmt: skip


def run_module(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False
    )


def sb3_course(monkeypatch: pytest.MonkeyPatch, *argv: str) -> None:
    """Run an ``sb3-course`` verb in this process (saves the interpreter start-up of a subprocess)."""
    monkeypatch.setattr(sys, "argv", ["sb3-course", *argv])
    main()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two course_dqn runs: one through ``sb3-course train`` (with -P, -tb), one through ``python -m sb3_course.train``."""
    root = tmp_path_factory.mktemp("zoo")
    first = run_module("sb3_course.zoo.cli", "train", *DQN_TRAIN, "-f", "logs", "--seed", "0", "-tb", "tb", "-P", cwd=root)
    assert first.returncode == 0, first.stderr
    second = run_module("sb3_course.train", *DQN_TRAIN, "-f", "logs", "--seed", "1", cwd=root)
    assert second.returncode == 0, second.stderr
    return root


def test_train_writes_rl_zoo3_layout(logs):
    run = logs / "logs" / "course_dqn" / f"{DQN_ENV}_1"
    for name in (f"{DQN_ENV}.zip", "best_model.zip", "evaluations.npz", "0.monitor.csv", "rl_model_200_steps.zip"):
        assert (run / name).is_file(), name
    assert (run / DQN_ENV / "config.yml").is_file()
    assert np.load(run / "evaluations.npz")["results"].shape == (3, 2)
    assert (logs / "logs" / "course_dqn" / f"{DQN_ENV}_2" / f"{DQN_ENV}.zip").is_file()
    assert "train/loss" in load_scalars(logs / "tb" / DQN_ENV)


# enjoy's model choice -> the file it loads (checkpoints every 100 steps of 300)
LOADED = {
    (): f"{DQN_ENV}.zip",
    ("--load-best",): "best_model.zip",
    ("--load-checkpoint", "200"): "rl_model_200_steps.zip",
    ("--load-last-checkpoint",): "rl_model_300_steps.zip",
}


@pytest.mark.parametrize("which", list(LOADED))
def test_enjoy_loads_and_runs(logs, which, monkeypatch, capsys):
    monkeypatch.chdir(logs)
    sb3_course(monkeypatch, "enjoy", "--algo", "course_dqn", "--env", DQN_ENV, "-f", "logs", "--exp-id", "1",
               "--no-render", "-n", "50", *which)  # fmt: skip
    assert f"Loading logs/course_dqn/{DQN_ENV}_1/{LOADED[which]}" in capsys.readouterr().out


def test_record_video_writes_mp4(logs, monkeypatch):
    pytest.importorskip("moviepy", reason="rl-zoo3's record_video writes the MP4 with moviepy")
    monkeypatch.chdir(logs)
    sb3_course(
        monkeypatch, "record_video", "--algo", "course_dqn", "--env", DQN_ENV, "-f", "logs", "--exp-id", "1", "-n", "20"
    )
    assert list((logs / "logs" / "course_dqn" / f"{DQN_ENV}_1" / "videos").glob("*.mp4"))


def test_record_video_writes_gif_without_moviepy(logs, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(logs)
    monkeypatch.setitem(sys.modules, "moviepy", None)  # as if moviepy were not installed
    sb3_course(
        monkeypatch,
        "record_video",
        "--gif",
        "--algo",
        "course_dqn",
        "--env",
        DQN_ENV,
        "-f",
        "logs",
        "--exp-id",
        "1",
        "-n",
        "20",
    )
    (gif,) = (logs / "logs" / "course_dqn" / f"{DQN_ENV}_1" / "videos").glob("*.gif")
    with Image.open(gif) as image:
        assert image.n_frames == 21 and image.size[0] > 100  # the reset frame and 20 steps, rendered


def test_rl_zoo3_plots_draw_course_runs(logs, monkeypatch):
    pytest.importorskip("scipy", reason="rl-zoo3's all_plots needs scipy")
    monkeypatch.chdir(logs)
    sb3_course(monkeypatch, "plot_train", "-a", "course_dqn", "-e", DQN_ENV, "-f", "logs/")
    sb3_course(monkeypatch, "all_plots", "-a", "course_dqn", "-e", DQN_ENV, "-f", "logs/", "-o", "results", "--no-display")
    sb3_course(monkeypatch, "plot_from_file", "-i", "results.pkl", "-o", "results.png")
    assert (logs / "results.png").is_file()


def test_report_draws_three_panels(logs, monkeypatch, capsys):
    monkeypatch.chdir(logs)
    sb3_course(monkeypatch, "report", "--algo", "course_dqn", "--env", DQN_ENV, "-f", "logs", "--exp-id", "1", "-tb", "tb")
    out = capsys.readouterr().out
    # CourseDQN logs a TD loss, no critic loss: the report says so instead of failing
    assert "no data for value / critic loss" in out and "no data for policy" not in out
    assert (logs / "logs" / "course_dqn" / f"{DQN_ENV}_1" / "report.png").is_file()


@pytest.mark.parametrize("key", sorted(CLI_RUNS))
def test_train_each_course_key_with_cli(key, tmp_path):
    env_id, params = CLI_RUNS[key]
    result = run_module(
        "sb3_course.zoo.cli", "train", "--algo", key, "--env", env_id, "-n", "400", "--eval-freq", "200",
        "--eval-episodes", "2", "--log-interval", "1", "--num-threads", "1", "-f", "logs", "-tb", "tb", *params,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = tmp_path / "logs" / key / f"{env_id}_1"
    assert (run / f"{env_id}.zip").is_file() and (run / "evaluations.npz").is_file()
    assert list(run.glob("*.monitor.csv"))
    assert LOSS_TAGS[key] <= set(load_scalars(tmp_path / "tb" / env_id))
    missing = draw_report(run, tmp_path / "tb" / env_id, tmp_path / "report.png", key)
    # REINFORCE's CartPole-v1 recipe has no baseline, so no value loss
    assert len(missing) == (1 if key == "reinforce" else 0), missing
    assert (tmp_path / "report.png").is_file()


@pytest.fixture
def recipes(tmp_path: Path) -> Path:
    (tmp_path / "unknown_key.yml").write_text("CartPole-v1:\n  policy: MlpPolicy\n  target_update: 10\n")
    (tmp_path / "malformed.yml").write_text("CartPole-v1:\n  policy: [MlpPolicy\n")
    (tmp_path / "box.yml").write_text("Pendulum-v1:\n  policy: MlpPolicy\n")
    return tmp_path


BAD_INPUTS = {
    "unknown algorithm": (["--algo", "course_ppo", "--env", "CartPole-v1"], "unknown algorithm 'course_ppo'; expected one of"),
    "unknown env": (["--algo", "course_dqn", "--env", "CartPol-v1"], "unknown env id 'CartPol-v1'"),
    "unknown key": (
        ["--algo", "course_dqn", "--env", "CartPole-v1", "-conf", "unknown_key.yml"],
        "unknown_key.yml [CartPole-v1]: 'target_update' is not a constructor argument of CourseDQN",
    ),
    "unknown -params key": (
        ["--algo", "reinforce", "--env", "CartPole-v1", "-params", "gae_lambda:0.9"],
        "-params: 'gae_lambda' is not a constructor argument of REINFORCE",
    ),
    "malformed YAML": (
        ["--algo", "course_dqn", "--env", "CartPole-v1", "-conf", "malformed.yml"],
        "malformed YAML in malformed.yml",
    ),
    "action space": (
        ["--algo", "course_dqn", "--env", "Pendulum-v1", "-conf", "box.yml"],
        "box.yml [Pendulum-v1]: CourseDQN cannot handle the Box action space of Pendulum-v1; expected Discrete",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_with_one_line(case, recipes, monkeypatch, capsys):
    argv, message = BAD_INPUTS[case]
    monkeypatch.chdir(recipes)
    with pytest.raises(SystemExit) as exited:
        sb3_course(monkeypatch, "train", *argv, "-n", "10")
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_bad_input_exit_status_of_the_command(tmp_path):
    result = run_module("sb3_course.zoo.cli", "enjoy", "--algo", "course_dqn", "--env", "NoSuchEnv-v0", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "sb3-course enjoy: error: unknown env id 'NoSuchEnv-v0' (not in gymnasium's registry)"


@pytest.mark.parametrize(
    ("algo", "env_id"), [("dqn", "CartPole-v1"), ("sac", "Pendulum-v1"), *((key, env) for key, (env, _) in CLI_RUNS.items())]
)
def test_good_input_passes_the_checks(algo, env_id):
    """SB3's keys keep rl-zoo3's recipes (not checked here); the course keys' default recipe files pass."""
    register()
    check_command(["--algo", algo, "--env", env_id], list(ALGOS), recipe=True)

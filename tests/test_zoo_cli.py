"""``sb3-course`` verbs end to end: train in rl-zoo3's layout, enjoy, plots, record_video, report, bad input."""

import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from rl_zoo3.utils import ALGOS

from sb3_course.cli import main
from sb3_course.zoo import register
from sb3_course.zoo.checks import check_command
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


def run_module(module: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False, env=env
    )


def sb3_course(monkeypatch: pytest.MonkeyPatch, *argv: str) -> None:
    """Run an ``sb3-course`` verb in this process (saves the interpreter start-up of a subprocess)."""
    monkeypatch.setattr(sys, "argv", ["sb3-course", *argv])
    main()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two course_dqn runs: one through ``sb3-course train`` (with -P, -tb), one through ``python -m sb3_course.train``."""
    root = tmp_path_factory.mktemp("zoo")
    first = run_module("sb3_course.cli", "train", *DQN_TRAIN, "-f", "logs", "--seed", "0", "-tb", "tb", "-P", cwd=root)
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
    # CourseDQN's TD loss (train/loss) is its value loss; it has no actor: the report says so instead of failing
    assert "no data for policy / actor loss (the algorithm logs none of" in out and "no data for value" not in out
    assert (logs / "logs" / "course_dqn" / f"{DQN_ENV}_1" / "report.png").is_file()


@pytest.mark.parametrize("key", sorted(CLI_RUNS))
def test_train_each_course_key_with_cli(key, tmp_path):
    env_id, params = CLI_RUNS[key]
    result = run_module(
        "sb3_course.cli", "train", "--algo", key, "--env", env_id, "-n", "400", "--eval-freq", "200",
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


A3C_CARTPOLE = ["--algo", "a3c", "--env", "CartPole-v1"]

# Bad input to `train`, with the inputs rl-zoo3 mishandles (issue 18): each exits 2 with one line before anything is
# built or written
BLOCK = "CartPole-v1:\n  policy: MlpPolicy\n  n_timesteps: 200\n"
RECIPE_FILES = {
    "small.yml": BLOCK,
    "lr_text.yml": BLOCK + "  learning_rate: 1e-3\n",
    "buffer_text.yml": BLOCK + "  buffer_size: 1e6\n",
    "inf_text.yml": BLOCK + "  max_grad_norm: inf\n",
    "bool_text.yml": BLOCK + "  optimize_memory_usage: 'no'\n",
    "budget_text.yml": BLOCK.replace("200", "1e5"),
    "no_budget.yml": "CartPole-v1:\n  policy: MlpPolicy\n",
    "gamma.yml": BLOCK + "  gamma: 1.5\n",
    "noise.yml": "Pendulum-v1:\n  policy: MlpPolicy\n  n_timesteps: 200\n  noise_type: pink\n  noise_std: 0.1\n",
    "a3c_normalize.yml": BLOCK + "  normalize: true\n",
    "a3c_frame_stack.yml": BLOCK + "  frame_stack: 4\n",
    "unknown_key.yml": "CartPole-v1:\n  policy: MlpPolicy\n  target_update: 10\n",
    "malformed.yml": "CartPole-v1:\n  policy: [MlpPolicy\n",
    "box.yml": "Pendulum-v1:\n  policy: MlpPolicy\n",
}
DQN = ["--algo", "course_dqn", "--env", "CartPole-v1"]
NOT_TRAINED = {
    "unknown algorithm": (
        ["--algo", "course_ppo", "--env", "CartPole-v1", "-n", "10"],
        "unknown algorithm 'course_ppo'; expected one of",
    ),
    "unknown env": (["--algo", "course_dqn", "--env", "CartPol-v1", "-n", "10"], "unknown env id 'CartPol-v1'"),
    "unknown key": (
        [*DQN, "-conf", "unknown_key.yml", "-n", "10"],
        "unknown_key.yml [CartPole-v1]: 'target_update' is not a constructor argument of CourseDQN",
    ),
    "unknown -params key": (
        ["--algo", "reinforce", "--env", "CartPole-v1", "-params", "buffer_size:1000", "-n", "10"],
        "-params: 'buffer_size' is not a constructor argument of REINFORCE",
    ),
    "malformed YAML": ([*DQN, "-conf", "malformed.yml", "-n", "10"], "malformed YAML in malformed.yml"),
    "action space": (
        ["--algo", "course_dqn", "--env", "Pendulum-v1", "-conf", "box.yml", "-n", "10"],
        "box.yml [Pendulum-v1]: CourseDQN supports Discrete action spaces, but the env has Box(-2.0, 2.0, (1,), float32)."
        " Use CourseDDPG or CourseSAC for continuous (Box) actions.",
    ),
    "negative budget": ([*DQN, "-conf", "small.yml", "-n", "-5"], "-n/--n-timesteps -5: expected a positive number of steps"),
    "zero budget": ([*DQN, "-n", "0"], "-n/--n-timesteps 0: expected a positive number"),
    "yaml 1e-3 learning rate": (
        [*DQN, "-conf", "lr_text.yml"],
        "lr_text.yml [CartPole-v1]: learning_rate '1e-3' is a string, which rl-zoo3 reads as a schedule",
    ),
    "yaml 1e6 buffer size": (
        [*DQN, "-conf", "buffer_text.yml"],
        "buffer_size must be an integer, got '1e6' (str); YAML 1.1 reads a number without",
    ),
    "yaml inf": (
        [*DQN, "-conf", "inf_text.yml"],
        "max_grad_norm must be a number, got 'inf' (str); YAML writes",
    ),
    "text for a bool": ([*DQN, "-conf", "bool_text.yml"], "optimize_memory_usage must be True or False, got 'no' (str)"),
    "yaml 1e5 budget": ([*DQN, "-conf", "budget_text.yml"], "n_timesteps must be a positive number of steps, got '1e5'"),
    "no budget": ([*DQN, "-conf", "no_budget.yml", "-n", "100"], "no n_timesteps (rl-zoo3 needs it, even with -n)"),
    "class range": ([*DQN, "-conf", "gamma.yml"], "gamma.yml [CartPole-v1]: gamma must lie in [0.0, 1.0], got 1.5"),
    "noise type": (["--algo", "course_ddpg", "--env", "Pendulum-v1", "-conf", "noise.yml"], "noise_type must be one of"),
    "missing .py config": ([*DQN, "-conf", "missing.py"], "-conf/--conf-file missing.py: no such file"),
    "missing config module": ([*DQN, "-conf", "no_such.module"], "not a .yml/.yaml/.py file nor an importable Python module"),
    "-params text number": ([*DQN, "-params", "learning_rate:'1e-3'"], "-params: learning_rate '1e-3' is a string"),
    "-params class range": ([*DQN, "-params", "exploration_initial_eps:2.0"], "-params: exploration_initial_eps must lie in"),
    "-params not Python": ([*DQN, "-params", "learning_rate:abc"], "VALUE is read as Python and fails (NameError"),
    "-params unknown policy": ([*DQN, "-params", "policy:'MlpPolcy'"], "-params: Policy MlpPolcy unknown"),
    "-params bad policy_kwargs": ([*DQN, "-params", "policy_kwargs:'dict(net_arch=[8'"], "policy_kwargs 'dict(net_arch=[8'"),
    "eval freq 0": ([*DQN, "--eval-freq", "0"], "--eval-freq 0: expected steps between evaluations, or -1 for none"),
    "no eval envs": ([*DQN, "--n-eval-envs", "0"], "--n-eval-envs 0: expected a positive number of envs"),
    "no eval episodes": ([*DQN, "--eval-episodes", "0"], "--eval-episodes 0: expected a positive number"),
    "save freq 0": ([*DQN, "--save-freq", "0"], "--save-freq 0: expected steps between checkpoints"),
    "a3c normalize": ([*A3C_CARTPOLE, "-conf", "a3c_normalize.yml"], "a3c_normalize.yml [CartPole-v1]: normalize wraps"),
    "a3c frame_stack": ([*A3C_CARTPOLE, "-conf", "a3c_frame_stack.yml"], "frame_stack wraps the env in a VecEnvWrapper"),
    "a3c vec_env_wrapper": (
        [*A3C_CARTPOLE, "-params", "vec_env_wrapper:'stable_baselines3.common.vec_env.VecMonitor'"],
        "-params: vec_env_wrapper wraps",
    ),
    "a3c cuda": ([*A3C_CARTPOLE, "--device", "cuda"], "--device cuda: A3C's workers update one policy in shared CPU"),
    "seed text": ([*DQN, "--seed", "1.5"], "--seed 1.5: expected an integer below 2**32"),
    "seed too large": ([*DQN, "--seed", str(2**32)], f"--seed {2**32}: expected an integer below 2**32"),
    "no trials": ([*DQN, "-optimize", "--n-trials", "0"], "--n-trials 0: expected a positive number of trials"),
    "missing trained agent": ([*DQN, "-i", "missing.zip"], "-i/--trained-agent missing.zip: expected an existing .zip"),
    "device": ([*DQN, "--device", "gpu0"], "--device gpu0: Invalid device string"),
}


@pytest.mark.parametrize("case", sorted(NOT_TRAINED))
def test_mishandled_input_exits_before_training(case, tmp_path, monkeypatch, refused):
    for name, text in RECIPE_FILES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    argv, message = NOT_TRAINED[case]
    refused(lambda: sb3_course(monkeypatch, "train", *argv, "-f", "logs"), "sb3-course train: error: ", message)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(RECIPE_FILES), "something was written"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-n", "-5"], "-n/--n-timesteps -5: expected a positive number of steps"),
        (["--n-envs", "0"], "--n-envs 0: expected a positive number of envs"),
        (["--seed", "-1"], "--seed -1: expected an integer in [0, 2**32)"),
    ],
)
def test_mishandled_enjoy_input_exits_before_loading(argv, message, tmp_path, monkeypatch, refused):
    monkeypatch.chdir(tmp_path)
    err = refused(lambda: sb3_course(monkeypatch, "enjoy", *DQN, "-f", "logs", *argv), "sb3-course enjoy: error: ", message)
    assert err == f"sb3-course enjoy: error: {message}", err


def test_negative_budget_exits_in_the_command(tmp_path):
    (tmp_path / "small.yml").write_text(BLOCK)
    result = run_module("sb3_course.cli", "train", *DQN, "-conf", "small.yml", "-n", "-5", "-f", "logs", cwd=tmp_path)
    assert result.returncode == 2 and not (tmp_path / "logs").exists()
    assert result.stderr.strip() == (
        "sb3-course train: error: -n/--n-timesteps -5: expected a positive number of steps (leave -n out for the recipe's)"
    )


def test_bad_input_exit_status_of_the_command(tmp_path):
    result = run_module("sb3_course.cli", "enjoy", "--algo", "course_dqn", "--env", "NoSuchEnv-v0", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "sb3-course enjoy: error: unknown env id 'NoSuchEnv-v0' (not in gymnasium's registry)"


@pytest.mark.parametrize(
    ("algo", "env_id"), [("dqn", "CartPole-v1"), ("sac", "Pendulum-v1"), *((key, env) for key, (env, _) in CLI_RUNS.items())]
)
def test_good_input_passes_the_checks(algo, env_id):
    """SB3's keys keep rl-zoo3's recipes (not checked here); the course keys' default recipe files pass."""
    register()
    check_command(["--algo", algo, "--env", env_id], list(ALGOS), recipe=True)

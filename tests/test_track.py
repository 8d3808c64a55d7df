"""``sb3-course train --track`` for every course key in W&B's offline mode: the run holds the config and the metrics."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("wandb", reason="train --track needs the [wandb] extra")

# course key -> (env id, -params), a few hundred steps each
RUNS = {
    "course_dqn": ("CartPole-v1", ["learning_starts:100"]),
    "reinforce": ("CartPole-v1", []),
    "a3c": ("CartPole-v1", ["n_workers:1"]),
    "course_ddpg": ("Pendulum-v1", ["learning_starts:100", "buffer_size:1000"]),
    "course_sac": ("Pendulum-v1", ["learning_starts:100", "buffer_size:1000"]),
}
# the losses each key logs (SB3's logger, synced from its tensorboard files by W&B)
LOSSES = {
    "course_dqn": {"train/loss"},
    "reinforce": {"train/policy_loss"},
    "a3c": {"train/policy_loss", "train/value_loss"},
    "course_ddpg": {"train/actor_loss", "train/critic_loss"},
    "course_sac": {"train/actor_loss", "train/critic_loss"},
}


def offline_records(wandb_dir: Path) -> list[dict[str, Any]]:
    """The records of the one offline run under ``wandb_dir``, through wandb's CLI (``wandb leet inspect --json``)."""
    (run,) = (wandb_dir / "wandb").glob("offline-run-*")
    inspect = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in inspect.stdout.splitlines()]


@pytest.mark.parametrize("key", sorted(RUNS))
def test_track_offline_run_holds_config_and_metrics(key, tmp_path):
    env_id, params = RUNS[key]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}
    result = subprocess.run(
        [
            sys.executable, "-m", "sb3_course.cli", "train", "--algo", key, "--env", env_id, "-n", "300",
            "--seed", "3", "--log-interval", "1", "--num-threads", "1", "-f", "logs", "--track",
            "--wandb-project-name", "sb3-course-test", "-params", "gamma:0.95", *params,
        ],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = offline_records(tmp_path)
    (run,) = (record["run"] for record in records if record["type"] == "run")
    assert run["project"] == "sb3-course-test"
    config = run["config"]["update"]
    # rl-zoo3 adds the recipe as trained (saved_hyperparams) once the model exists
    for record in records:
        if record["type"] == "config":
            config.update(record["config"]["update"])
    assert (config["algo"], config["env"], config["seed"], config["n_timesteps"]) == (key, env_id, 3, 300)
    assert config["hyperparams"]["gamma"] == 0.95
    # the recipe block with the -params overrides
    assert config["saved_hyperparams"]["gamma"] == 0.95 and config["saved_hyperparams"]["policy"] == "MlpPolicy"
    metrics = [record["history"]["item"] for record in records if record["type"] == "history"]
    logged = set().union(*metrics)
    assert {"rollout/ep_rew_mean", *LOSSES[key]} <= logged, logged
    returns = [item["rollout/ep_rew_mean"] for item in metrics if "rollout/ep_rew_mean" in item]
    assert all(isinstance(value, float | int) for value in returns)
    # a return of the env: CartPole's episodes score 8..500, Pendulum's 200 steps score -200 * 16.3..0
    assert all(8 <= value <= 500 for value in returns) if env_id == "CartPole-v1" else all(-3300 < v <= 0 for v in returns)

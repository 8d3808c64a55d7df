"""rl-zoo3's flags and YAML features through ``sb3-course train`` for the course keys, on tiny budgets."""

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from rl_zoo3.utils import SimpleLinearSchedule

from sb3_course.ddpg import CourseDDPG
from sb3_course.zoo.cli import main


def write_recipe(path: Path, env_id: str, **block: Any) -> Path:
    path.write_text(yaml.safe_dump({env_id: {"policy": "MlpPolicy", "n_timesteps": 200, **block}}))
    return path


def train(monkeypatch: pytest.MonkeyPatch, log_folder: Path, *argv: str) -> None:
    """``sb3-course train`` in this process, into ``log_folder``, one torch thread, one evaluation."""
    monkeypatch.setattr(sys, "argv", ["sb3-course", "train", *argv, "-f", str(log_folder), "--seed", "0"])
    main()


def test_lin_schedules_for_every_learning_rate_argument(tmp_path, monkeypatch):
    """``lin_<x>`` in a recipe makes a linear schedule of CourseDDPG's actor and critic learning rates too."""
    config = write_recipe(
        tmp_path / "ddpg.yml", "Pendulum-v1", learning_starts=100, buffer_size=1000, batch_size=32,
        actor_learning_rate="lin_1e-4", critic_learning_rate="lin_1e-3", policy_kwargs="dict(net_arch=[16])",
    )  # fmt: skip
    train(monkeypatch, tmp_path, "--algo", "course_ddpg", "--env", "Pendulum-v1", "-conf", str(config))
    model = CourseDDPG.load(tmp_path / "course_ddpg" / "Pendulum-v1_1" / "Pendulum-v1.zip")
    for schedule, initial in ((model.actor_lr_schedule, 1e-4), (model.critic_lr_schedule, 1e-3)):
        assert isinstance(schedule.value_schedule, SimpleLinearSchedule)
        assert schedule(0.5) == pytest.approx(initial / 2)
    # The optimizers followed the schedules down to zero at the end of training (a constant rate stays put)
    assert model.actor.optimizer.param_groups[0]["lr"] == 0.0
    assert model.critic.optimizer.param_groups[0]["lr"] == 0.0

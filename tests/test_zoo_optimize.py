"""``sb3-course train -optimize``: the course samplers in rl-zoo3's tables, a tiny study per key, a shared study."""

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from rl_zoo3 import exp_manager, hyperparams_opt
from rl_zoo3.exp_manager import ExperimentManager

from sb3_course.zoo import COURSE_ALGOS, register
from sb3_course.zoo.checks import ZOO_KEYS, constructor_arguments
from sb3_course.zoo.samplers import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

# course key -> (env id, extra flags) for a two-trial study of a few hundred steps; each test passes --seed, which
# seeds rl-zoo3's sampler too, so that the trials' hyperparameters are the same in every run
STUDIES = {
    "course_dqn": ("CartPole-v1", ["-params", "learning_starts:50"]),
    "reinforce": ("CartPole-v1", []),
    "a3c": ("CartPole-v1", []),
    "course_ddpg": ("Pendulum-v1", ["-params", "learning_starts:50"]),
    "course_sac": ("Pendulum-v1", ["-params", "learning_starts:50"]),
}
OPTIMIZE = ["-optimize", "--n-trials", "2", "--sampler", "random", "--pruner", "none", "--n-evaluations", "1",
            "--eval-episodes", "2", "--num-threads", "1", "-n", "200"]  # fmt: skip


def train_command(key: str, *args: str) -> list[str]:
    env_id, params = STUDIES[key]
    return [sys.executable, "-m", "sb3_course.cli", "train", "--algo", key, "--env", env_id, *OPTIMIZE, *args, *params]


def journal(path: Path) -> optuna.storages.JournalStorage:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def test_register_fills_rl_zoo3_optuna_tables():
    register()
    # exp_manager reads the same dict objects it imported from hyperparams_opt
    assert exp_manager.HYPERPARAMS_SAMPLER is hyperparams_opt.HYPERPARAMS_SAMPLER
    for key in COURSE_ALGOS:
        assert exp_manager.HYPERPARAMS_SAMPLER[key] is HYPERPARAMS_SAMPLER[key]
        assert exp_manager.HYPERPARAMS_CONVERTER[key] is HYPERPARAMS_CONVERTER[key]
    assert "ppo" in exp_manager.HYPERPARAMS_SAMPLER


@pytest.mark.parametrize("key", sorted(COURSE_ALGOS))
def test_sampled_and_converted_kwargs_are_constructor_arguments(key):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        sampled = HYPERPARAMS_SAMPLER[key](trial, 1, 1, {})
        assert set(sampled) <= constructor_arguments(key)
        # The converter (used by --trial-id) may leave noise_type / noise_std for rl-zoo3 to turn into action_noise
        converted = HYPERPARAMS_CONVERTER[key](trial.params)
        assert set(converted) <= constructor_arguments(key) | ZOO_KEYS
        assert set(sampled) - {"action_noise"} == set(converted) - {"noise_type", "noise_std"}
        study.tell(trial, 0.0)


@pytest.mark.parametrize("key", sorted(set(STUDIES) - {"course_dqn"}))
def test_optimize_runs_two_trials(key, tmp_path):
    storage = tmp_path / "study.log"
    result = subprocess.run(
        train_command(key, "-f", "logs", "--storage", str(storage), "--study-name", key, "--seed", "0"),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name=key, storage=journal(storage)).trials
    assert [trial.state for trial in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(np.isfinite(trial.value) for trial in trials)


def test_two_processes_share_one_journal_study(tmp_path):
    """Tuning on several machines: every process adds its trials to the same study of one storage."""
    storage = tmp_path / "shared" / "study.log"
    workers = [
        subprocess.Popen(
            train_command(
                "course_dqn", "-f", f"worker_{i}", "--storage", str(storage), "--study-name", "shared", "--seed", str(i)
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for i in range(2)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    trials = optuna.load_study(study_name="shared", storage=journal(storage)).trials
    assert len(trials) == 4 and all(trial.state == optuna.trial.TrialState.COMPLETE for trial in trials)

    # --trial-id reads a trial back through the course converter
    register()
    manager = ExperimentManager(argparse.Namespace(), "course_dqn", "CartPole-v1", str(tmp_path / "logs"))
    loaded = manager.load_trial(str(storage), "shared", trial_id=3)
    assert set(loaded) <= constructor_arguments("course_dqn") and "use_target_network" in loaded

"""The experiment runner's trainer on tiny budgets: the learning checks' path, a failed run, stable run keys."""

import hashlib
import inspect
import json
import os

import pytest
import yaml

from sb3_course.a3c import A3C
from sb3_course.benchmarks.learning import markdown_table, train_seed
from sb3_course.experiments.jobs import Job, train
from sb3_course.zoo import load_recipes
from sb3_course.zoo.runs import cpus_of

TINY_DQN = ["-params", "learning_starts:50", "buffer_size:500", "policy_kwargs:dict(net_arch=[8])"]


def test_learning_check_trains_through_the_runner_and_evaluates_the_final_model(tmp_path):
    run = train_seed(
        "course_dqn",
        "CartPole-v1",
        0,
        200,
        100,
        eval_episodes=2,
        log_root=str(tmp_path),
        extra_args=TINY_DQN,
        final_episodes=3,
    )
    assert run.timesteps.tolist() == [100, 200]
    assert run.mean_returns.shape == (2,) and run.final_returns.shape == (3,) and (run.final_returns > 0).all()
    assert run.final_return == run.final_returns.mean()
    assert f"| 0 | {run.final_return:.1f} | {run.final_returns.std():.1f} | {run.final_returns.min():.1f} |" in (
        markdown_table([run], 475)
    )
    # the rl-zoo3 log folder stays under log_root, with the -params flags in its saved settings
    (folder,) = os.listdir(tmp_path)
    (config,) = [os.path.join(root, "config.yml") for root, _, files in os.walk(tmp_path / folder) if "config.yml" in files]
    with open(config) as file:
        saved = dict(yaml.load(file, Loader=yaml.UnsafeLoader))  # rl-zoo3 saves an OrderedDict
    assert saved["buffer_size"] == 500 and saved["learning_starts"] == 50


def test_a_failed_run_names_its_command_and_error(tmp_path):
    job = Job("course_dqn", "CartPole-v1", 0, 100, 50, 1, extra_args=("-params", "learning_rate:-1"))
    with pytest.raises(RuntimeError, match=r"(?s)sb3_course\.train .*-params learning_rate:-1.*learning_rate must lie in"):
        train(job, str(tmp_path))


def test_run_keys_of_saved_runs_stay_the_same_and_extra_flags_change_them():
    job = Job("course_dqn", "CartPole-v1", 3, 1000, 500, 5, '{"gamma": 0.9}')
    spec = json.dumps(["course_dqn", "CartPole-v1", 1000, 500, 5, '{"gamma": 0.9}'])
    assert job.key == f"course_dqn_CartPole-v1_{hashlib.sha1(spec.encode()).hexdigest()[:10]}_seed3"
    flagged = Job(*[getattr(job, name) for name in ("algo", "env_id", "seed", "n_timesteps", "eval_freq", "eval_episodes")],
                  job.hyperparams, extra_args=("-params", "gamma:0.5"))  # fmt: skip
    assert flagged.key != job.key


def test_a3c_takes_one_cpu_slot_per_worker():
    assert cpus_of("a3c", "CartPole-v1", {"n_workers": 3}) == 3
    assert cpus_of("course_dqn", "CartPole-v1", {"n_workers": 3}) == 1
    # without n_workers in the run's settings: the recipe block's, else (the default block sets none) A3C's default
    assert cpus_of("a3c", "Pendulum-v1", {}) == load_recipes("a3c")["Pendulum-v1"]["n_workers"]
    assert "n_workers" not in load_recipes("a3c")["default"]
    assert cpus_of("a3c", "NoRecipe-v0", {}) == inspect.signature(A3C).parameters["n_workers"].default

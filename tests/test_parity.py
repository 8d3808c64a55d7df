"""The parity suite: verdict logic on synthetic scores, matched configurations, and tiny sweeps end to end."""

import csv
import inspect
import json
import os
import signal
import subprocess
import sys
import time

import matplotlib.image
import numpy as np
import pytest
from rl_zoo3.utils import ALGOS
from stable_baselines3.common.env_util import make_vec_env
from test_verify import RUN_OPTIONS_REFUSED

from sb3_course.experiments.store import RunStore
from sb3_course.parity import DEFAULT_PAIRS, compare, matched_hyperparams, pair_verdict
from sb3_course.parity.cli import jobs_of, parse_args, results_of
from sb3_course.parity.pairs import Pair, parse_pair
from sb3_course.parity.stats import seeds_needed, verdict
from sb3_course.zoo import COURSE_ALGOS
from sb3_course.zoo.matched import course_recipe, course_settings

TOLERANCE = 0.1
# Keys rl-zoo3's ExperimentManager reads itself rather than passing to the algorithm
ZOO_KEYS = {"policy", "n_envs", "noise_type", "noise_std", "env_wrapper", "n_timesteps"}
TINY = ["--pairs", "course_dqn:dqn@CartPole-v1:400:200", "--mode", "matched", "--seeds", "2", "--eval-episodes", "2"]


def course_policy_kwargs(pair: Pair) -> dict:
    return {"policy_kwargs": course_settings(pair.course, pair.env_id)["policy_kwargs"]}


def scores(mean: float, spread: float, n: int, seed: int) -> np.ndarray:
    return mean + spread * np.random.default_rng(seed).standard_normal(n)


def test_equal_score_sets_are_at_parity():
    result = compare("final", scores(0.8, 0.02, 10, 0), scores(0.8, 0.02, 10, 1), TOLERANCE)
    assert result.verdict == "PARITY"
    assert -TOLERANCE <= result.difference_ci[0] <= result.difference <= result.difference_ci[1] <= TOLERANCE


def test_paired_seeds_judge_the_per_seed_differences():
    # Seeds that spread both sides alike (0.2 .. 1.0) hide a 0.01 difference from the independent comparison;
    # paired by seed, the differences are tight and the pair is at parity
    common = np.linspace(0.2, 1.0, 10)
    course, sb3 = common + scores(0.0, 0.01, 10, 0), common + scores(0.0, 0.01, 10, 1)
    independent = compare("final", course, sb3, TOLERANCE)
    paired = compare("final", course, sb3, TOLERANCE, paired=True)
    assert independent.verdict == "INCONCLUSIVE" and not independent.paired
    assert paired.verdict == "PARITY" and paired.paired
    assert paired.independent_ci == independent.difference_ci
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    assert width(paired.difference_ci) < 0.05 < width(independent.difference_ci)
    # A consistent per-seed deficit beyond the band is WORSE when paired, inside it PARITY
    assert compare("final", common - 0.2, common, TOLERANCE, paired=True).verdict == "WORSE"
    assert compare("final", common - 0.05, common, TOLERANCE, paired=True).verdict == "PARITY"
    with pytest.raises(ValueError, match="one per seed"):
        compare("final", course, sb3[:5], TOLERANCE, paired=True)


def test_clearly_better_and_clearly_worse():
    high, low = scores(0.9, 0.02, 10, 0), scores(0.5, 0.02, 10, 1)
    better = compare("final", high, low, TOLERANCE)
    assert better.verdict == "BETTER" and better.difference_ci[0] > 0.3
    assert better.improvement == pytest.approx(1.0)
    worse = compare("final", low, high, TOLERANCE)
    assert worse.verdict == "WORSE" and worse.difference_ci[1] < -0.3
    assert worse.improvement == pytest.approx(0.0)


def test_too_noisy_is_inconclusive_and_says_how_many_seeds():
    result = compare("final", scores(0.5, 0.4, 5, 0), scores(0.5, 0.4, 5, 1), TOLERANCE)
    assert result.verdict == "INCONCLUSIVE"
    assert result.seeds_needed is not None and result.seeds_needed > 5


def test_intervals_are_reproducible_and_leave_numpy_global_state_alone():
    # rliable draws from NumPy's global generator: the same scores must give the same CIs, call after call
    course, sb3 = scores(0.5, 0.4, 5, 0), scores(0.6, 0.4, 5, 1)
    np.random.seed(123)
    expected_draw = np.random.rand()
    np.random.seed(123)
    first = compare("auc", course, sb3, TOLERANCE)
    assert np.random.rand() == expected_draw
    np.random.rand(17)
    second = compare("auc", course, sb3, TOLERANCE)
    assert (first.course_ci, first.difference_ci, first.improvement_ci) == (
        second.course_ci,
        second.difference_ci,
        second.improvement_ci,
    )


def test_curve_plots_of_the_same_runs_are_the_same_bytes(tmp_path):
    # The CI bands are rliable bootstraps too: a --report-only redraw must give the committed PNG
    from sb3_course.experiments.jobs import Job, RunResult
    from sb3_course.parity.report import evaluate, plot_curves

    rng = np.random.default_rng(0)
    pair = Pair("course_dqn", "dqn", "CartPole-v1", 400, 200)

    def runs(algo: str) -> list[RunResult]:
        timesteps = np.array([200, 400])
        return [
            RunResult(Job(algo, "CartPole-v1", seed, 400, 200, 2), timesteps, rng.uniform(0, 500, (2, 2)), 1.0)
            for seed in range(5)
        ]

    result = evaluate(pair, "matched", runs("course_dqn"), runs("dqn"), 0.1, 1)
    np.random.seed(1)
    plot_curves(result, str(tmp_path / "first.png"))
    np.random.seed(2)
    plot_curves(result, str(tmp_path / "second.png"))
    assert (tmp_path / "first.png").read_bytes() == (tmp_path / "second.png").read_bytes()


def test_too_few_seeds_is_inconclusive_even_when_identical():
    assert verdict(0.0, (0.0, 0.0), TOLERANCE, 2, 5) == ("INCONCLUSIVE", "fewer than 3 seeds on a side")


def test_seeds_needed_follows_one_over_sqrt_n():
    # half-width 0.1 at n=5, difference 0 against tolerance 0.05: the half-width must halve -> 4x the seeds
    assert seeds_needed(5, 0.0, (-0.1, 0.1), 0.05) == 20
    # a difference of 0.2 outside the band must be separated from 0: half-width 0.4 -> 0.2, 4x
    assert seeds_needed(5, 0.2, (-0.2, 0.6), 0.05) == 20
    assert seeds_needed(5, 0.0, (-0.2, 0.2), 0.0) is None  # no seed count separates 0 from 0


@pytest.mark.parametrize(
    "labels, expected",
    [
        (["PARITY", "PARITY"], "PARITY"),
        (["PARITY", "WORSE"], "WORSE"),
        (["INCONCLUSIVE", "BETTER"], "BETTER"),
        (["BETTER", "WORSE"], "INCONCLUSIVE"),
        (["PARITY", "INCONCLUSIVE"], "INCONCLUSIVE"),
    ],
)
def test_pair_verdict_combines_final_and_auc(labels, expected):
    comparisons = [compare("final", scores(0.5, 0.01, 5, 0), scores(0.5, 0.01, 5, 1), TOLERANCE) for _ in labels]
    for comparison, label in zip(comparisons, labels, strict=True):
        comparison.verdict = label
    assert pair_verdict(comparisons) == expected


@pytest.mark.parametrize("pair", DEFAULT_PAIRS, ids=lambda pair: pair.course)
def test_matched_keys_are_constructor_arguments(pair):
    block = matched_hyperparams(pair)
    parameters = inspect.signature(ALGOS[pair.sb3].__init__).parameters
    unknown = set(block) - set(parameters) - ZOO_KEYS
    assert not unknown, f"{pair.sb3} has no argument {unknown}"


@pytest.mark.parametrize("pair", DEFAULT_PAIRS, ids=lambda pair: pair.course)
def test_matched_side_follows_the_course_recipe(pair):
    settings, block = course_settings(pair.course, pair.env_id), matched_hyperparams(pair)
    learning_rate = settings.get("critic_learning_rate", settings.get("learning_rate"))
    assert block["learning_rate"] == learning_rate
    assert block.get("gamma", 0.99) == settings["gamma"]


@pytest.mark.parametrize("pair", DEFAULT_PAIRS, ids=lambda pair: pair.course)
def test_matched_sb3_side_builds_the_network_it_names(pair):
    from torch import nn

    from sb3_course.zoo import register

    register()
    block = matched_hyperparams(pair)
    kwargs = eval(block.get("policy_kwargs", "dict()"), {"nn": nn})
    env = make_vec_env(pair.env_id, n_envs=block.get("n_envs", 1))
    model = ALGOS[pair.sb3](block["policy"], env, policy_kwargs=kwargs)
    course = COURSE_ALGOS[pair.course]("MlpPolicy", pair.env_id, **course_policy_kwargs(pair))
    if pair.course in ("course_dqn", "course_ddpg", "a3c"):
        # The course's own network class, with the same weights' shapes, inside SB3's training loop
        assert type(model.policy) is type(course.policy)
        shapes = lambda policy: [tuple(p.shape) for p in policy.parameters()]  # noqa: E731
        assert shapes(model.policy) == shapes(course.policy)
    else:
        assert block["policy"] == "MlpPolicy"


def test_register_adds_course_policy_names_to_sb3_classes_only():
    from stable_baselines3 import A2C, DDPG, DQN, TD3

    from sb3_course.a3c.policies import A3CPolicy
    from sb3_course.ddpg.policies import CourseDDPGPolicy
    from sb3_course.dqn.policies import CourseDQNPolicy
    from sb3_course.zoo import register

    register()
    register()
    assert DDPG.policy_aliases["CourseDDPGPolicy"] is CourseDDPGPolicy and A2C.policy_aliases["A3CPolicy"] is A3CPolicy
    assert DQN.policy_aliases["CourseDQNPolicy"] is CourseDQNPolicy
    assert "CourseDDPGPolicy" not in TD3.policy_aliases
    assert DDPG.policy_aliases["MlpPolicy"] is TD3.policy_aliases["MlpPolicy"]


def test_matched_dqn_without_target_network_refreshes_the_target_every_step():
    block = matched_hyperparams(Pair("course_dqn", "dqn", "CartPole-v1", 1000, 100))
    assert block["target_update_interval"] == 1 and block["tau"] == 1.0
    assert block["env_wrapper"] == course_settings("course_dqn", "CartPole-v1")["env_wrapper"]
    # SB3's DQN trains the course network with the course side's fused Adam
    assert block["policy"] == "CourseDQNPolicy"
    assert eval(block["policy_kwargs"]) == {"net_arch": [32, 32], "optimizer_kwargs": {"fused": True}}


def test_matched_mode_rejects_a_pair_that_is_not_the_counterpart():
    with pytest.raises(ValueError, match="counterpart"):
        matched_hyperparams(Pair("course_dqn", "ppo", "CartPole-v1", 1000, 100))


def test_course_params_change_the_course_side_and_the_matched_sb3_side_follows():
    from sb3_course.parity.cli import jobs_of, parse_args

    plain = parse_args(["--pairs", "course_ddpg:ddpg", "--mode", "matched"]).pairs[0]
    ablation = parse_args(
        ["--pairs", "course_ddpg:ddpg", "--mode", "matched", "--course-params", "critic_learning_rate:2e-3",
         "critic_loss:mse", "policy_kwargs:dict(actor_output='tanh', net_arch=dict(pi=[16], qf=[8]))"]
    ).pairs[0]  # fmt: skip
    (course_plain,), (sb3_plain,) = jobs_of(plain, "matched", 1, 5)
    (course_job,), (sb3_job,) = jobs_of(ablation, "matched", 1, 5)
    # Without overrides the course side trains the YAML recipe as it is, written into the job
    assert json.loads(course_plain.hyperparams) == {
        name: value for name, value in course_recipe("course_ddpg", "Pendulum-v1").items() if name != "n_timesteps"
    }
    course = json.loads(course_job.hyperparams)
    assert course["critic_learning_rate"] == 2e-3 and course["critic_loss"] == "mse" and "n_timesteps" not in course
    # the override's keys replace the recipe's policy_kwargs keys; the recipe's others stay
    expected = {**course_settings("course_ddpg", "Pendulum-v1", plain.overrides)["policy_kwargs"]}
    expected.update(actor_output="tanh", net_arch={"pi": [16], "qf": [8]})
    assert course_settings("course_ddpg", "Pendulum-v1", ablation.overrides)["policy_kwargs"] == expected
    sb3 = json.loads(sb3_job.hyperparams)
    assert sb3["learning_rate"] == 2e-3 and json.loads(sb3_plain.hyperparams)["learning_rate"] == 1e-3
    # SB3's DDPG trains the course network with the ablation's policy settings
    assert sb3["policy"] == "CourseDDPGPolicy"
    assert eval(sb3["policy_kwargs"]) == expected
    assert ablation.name.startswith("course_ddpg[critic_learning_rate=0.002, critic_loss=mse")
    assert ablation.tag != plain.tag and "[" not in ablation.tag
    with pytest.raises(SystemExit):
        parse_args(["--course-params", "critic_loss"])


def test_sb3_expressible_course_settings_leave_the_matched_sides_one_configuration():
    from sb3_course.parity.cli import parse_args
    from sb3_course.zoo.matched import REPLAY_KEYS, SB3_EXPRESSIBLE

    (pair,) = parse_args(
        ["--pairs", "course_ddpg:ddpg", "--mode", "matched", "--course-params", *SB3_EXPRESSIBLE["course_ddpg"]]
    ).pairs
    settings, block = course_settings(pair.course, pair.env_id, pair.overrides), matched_hyperparams(pair)
    assert settings["critic_loss"] == "mse"  # SB3's DDPG loss
    assert settings["actor_learning_rate"] == settings["critic_learning_rate"] == block["learning_rate"]
    assert (settings["noise_type"], settings["noise_std"]) == (block["noise_type"], block["noise_std"])
    assert block["policy"] == "CourseDDPGPolicy" and eval(block["policy_kwargs"]) == settings["policy_kwargs"]
    assert {key: block[key] for key in REPLAY_KEYS} == {key: settings[key] for key in REPLAY_KEYS}


def test_parse_pair_fills_defaults():
    assert parse_pair("course_sac:sac") == DEFAULT_PAIRS[-1]
    assert parse_pair("course_sac:sac@HalfCheetah-v5:300000:10000") == Pair(
        "course_sac", "sac", "HalfCheetah-v5", 300_000, 10_000
    )
    with pytest.raises(ValueError, match="unknown course algorithm"):
        parse_pair("dqn:course_dqn")


def parity(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sb3_course.parity", *args], capture_output=True, text=True, timeout=600, **kwargs
    )


def check_output(out: str, n_runs: int) -> None:
    """report.md names the pair and a verdict, the PNGs load, curves.csv has every run's evaluations."""
    with open(os.path.join(out, "report.md")) as file:
        report = file.read()
    assert "| course_dqn vs dqn on CartPole-v1 | matched | 2 / 2 | final |" in report
    assert "- course_dqn vs dqn on CartPole-v1, matched: **INCONCLUSIVE**" in report  # 2 seeds cannot decide
    for name in ("scores.png", "curves_course_dqn_dqn_CartPole-v1_matched.png"):
        assert matplotlib.image.imread(os.path.join(out, name)).ndim == 3
    with open(os.path.join(out, "curves.csv")) as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == n_runs * 2  # evaluations at 200 and 400 steps
    assert {row["side"] for row in rows} == {"course_dqn", "dqn (matched)"}
    assert len(RunStore(os.path.join(out, "runs")).keys()) == n_runs


def test_tiny_sweep_writes_report_and_plots(tmp_path):
    completed = parity([*TINY, "--out", str(tmp_path), "--jobs", "2"])
    assert completed.returncode == 0, completed.stderr[-2000:]
    check_output(str(tmp_path), 4)
    assert "course_dqn vs dqn on CartPole-v1 (matched): INCONCLUSIVE" in completed.stdout


def test_tiny_sweep_on_a_local_ray_instance(tmp_path):
    pytest.importorskip("ray")
    completed = parity([*TINY, "--out", str(tmp_path), "--jobs", "2", "--backend", "ray"])
    assert completed.returncode == 0, completed.stderr[-2000:]
    check_output(str(tmp_path), 4)


def training_processes(keys: set[str]) -> list[int]:
    """PIDs of live training subprocesses of the given job keys (their temp folder names carry the key)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                command = file.read().decode(errors="replace")
        except OSError:
            continue
        if "sb3_course.train" in command and any(key in command for key in keys):
            pids.append(int(pid))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_sweep_resumes_without_redoing_finished_runs(tmp_path):
    out, runs = str(tmp_path), os.path.join(str(tmp_path), "runs")
    command = [sys.executable, "-m", "sb3_course.parity", *TINY, "--out", out, "--jobs", "1"]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    archive = os.path.join(runs, "runs.jsonl")
    while not os.path.exists(archive):
        assert sweep.poll() is None and time.monotonic() < deadline, "no run finished"
        time.sleep(0.2)
    sweep.send_signal(signal.SIGTERM)
    _, stderr = sweep.communicate(timeout=60)
    assert sweep.returncode == 130 and "the same command resumes the sweep" in stderr, stderr[-2000:]
    with open(archive) as file:
        finished = {record["key"]: record for record in map(json.loads, file)}
    assert 1 <= len(finished) < 4
    assert all(record["job"]["env_id"] == "CartPole-v1" for record in finished.values())
    assert not training_processes({"run-course_dqn_", "run-dqn_"}), "orphaned training processes"

    completed = parity([*TINY, "--out", out, "--jobs", "2"])
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert f"4 runs, {len(finished)} already finished" in completed.stdout
    with open(archive) as file:
        after = {record["key"]: record for record in map(json.loads, file)}
    for key, record in finished.items():
        assert after[key] == record, f"{key} was redone"
    check_output(out, 4)


# Inputs the sweep used to run with, or fail on after training (issue 18): exit 2, one line, nothing written
NOT_SWEPT = {
    **RUN_OPTIONS_REFUSED,
    "unknown course key": (["--pairs", "foo:dqn"], "--pairs 'foo:dqn': unknown course algorithm 'foo'; expected one of"),
    "budget not a number": (["--pairs", "course_dqn:dqn@CartPole-v1:abc"], "n_timesteps and eval_freq must be numbers"),
    "pair without evaluation": (
        ["--pairs", "course_dqn:dqn@CartPole-v1:1000:0"],
        "n_timesteps and eval_freq must be positive",
    ),
    "evaluation after the budget": (
        ["--pairs", "course_dqn:dqn@CartPole-v1:100:500"],
        "evaluation frequency 500 must lie in [1, n_timesteps 100] (no evaluation, no score)",
    ),
    "eval freq 0": (["--eval-freq", "0"], "argument --eval-freq: expected a positive integer, got 0"),
    "runs is a file": (["--runs", "{tmp}/a_file"], "a_file is a file, not a folder"),
    "unknown SB3 key": (
        ["--pairs", "course_dqn:dqnx", "--mode", "recipe"],
        "unknown algorithm 'dqnx'; expected one of: a2c",
    ),
    "SB3 side cannot take the env": (
        ["--pairs", "course_dqn:sac@CartPole-v1", "--mode", "recipe"],
        "sac on CartPole-v1: The algorithm only supports (<class 'gymnasium.spaces.box.Box'>,) as action spaces",
    ),
    "unknown course setting": (
        ["--pairs", "course_dqn:dqn", "--mode", "recipe", "--course-params", "target_update:5"],
        "--course-params: 'target_update' is not a constructor argument of CourseDQN",
    ),
    "course value": (
        ["--pairs", "course_dqn:dqn", "--mode", "recipe", "--course-params", "learning_rate:'1e-3'"],
        "with --course-params: learning_rate '1e-3' is a string",
    ),
    "course range": (
        ["--pairs", "course_dqn:dqn", "--mode", "recipe", "--course-params", "gamma:2"],
        "with --course-params: gamma must lie in [0.0, 1.0], got 2.0",
    ),
}


@pytest.mark.parametrize("case", sorted(NOT_SWEPT))
def test_bad_sweep_exits_before_training(case, tmp_path, refused):
    from sb3_course.parity.cli import main

    (tmp_path / "a_file").write_text("not a folder")
    argv, message = NOT_SWEPT[case]
    argv = [arg.format(tmp=tmp_path) for arg in argv] + ["--out", str(tmp_path / "out")]
    refused(lambda: main(argv), "sb3-course parity: error: ", message)
    assert [path.name for path in tmp_path.iterdir()] == ["a_file"], "something was written"


def test_bad_sweep_exit_status_of_the_command(tmp_path):
    completed = parity(["--pairs", "foo:dqn", "--out", str(tmp_path / "out")])
    assert completed.returncode == 2 and not (tmp_path / "out").exists()
    assert completed.stderr.strip() == (
        "sb3-course parity: error: argument --pairs: --pairs 'foo:dqn': unknown course algorithm 'foo'; expected one "
        "of course_dqn, course_ddpg, course_sac, reinforce, a3c"
    )


def test_a_changed_recipe_makes_a_new_course_job(monkeypatch):
    # A stored run of the old recipe must not be reused for the new one
    import sb3_course.zoo
    from sb3_course.parity import cli

    pair = cli.parse_args(["--pairs", "course_dqn:dqn", "--mode", "recipe"]).pairs[0]
    (before,), _ = cli.jobs_of(pair, "recipe", 1, 5)
    recipes = sb3_course.zoo.load_recipes("course_dqn")
    changed = {**recipes, "CartPole-v1": {**recipes["CartPole-v1"], "learning_rate": 1.0e-3}}
    monkeypatch.setattr(sb3_course.zoo, "load_recipes", lambda key: changed)
    (after,), _ = cli.jobs_of(pair, "recipe", 1, 5)
    assert before.key != after.key and json.loads(after.hyperparams)["learning_rate"] == 1.0e-3


def test_sides_with_unequal_seeds_are_judged_on_the_seeds_both_have(tmp_path, capsys):
    # The SB3 side has seeds 0-3 (two of them shared with another sweep), the course side 0-1: the matched pair
    # stays paired on seeds 0 and 1, and the left-out runs are named
    args = parse_args([*TINY, "--seeds", "4", "--out", str(tmp_path)])
    pair = args.pairs[0]
    course_jobs, sb3_jobs = jobs_of(pair, "matched", 4, args.eval_episodes)
    store = RunStore(args.runs)
    for job in course_jobs[:2] + sb3_jobs:
        store.save(job, {"timesteps": [200, 400], "returns": [[20.0 + job.seed, 21.0]] * 2, "wall_time": 1.0})
    (result,) = results_of(args)
    assert [run.job.seed for run in result.course.runs] == [run.job.seed for run in result.sb3.runs] == [0, 1]
    assert all(comparison.paired for comparison in result.comparisons)
    assert "judged on the 2 seeds both sides have; the runs of seeds [2, 3]" in capsys.readouterr().err

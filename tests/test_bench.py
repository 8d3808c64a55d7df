"""``sb3-course bench``: the table and JSON it writes, its matched settings and one run's measurements (never timings)."""

import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import pytest
import torch as th
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_course.benchmarks import gpu_check
from sb3_course.benchmarks.speed import cpu_name, make_model, measure_run
from sb3_course.cli import main
from sb3_course.registry import SCORE_RANGES
from sb3_course.zoo.matched import MATCHUPS, NET_SIZES, matchups

SHARED_SETTINGS = ("learning_starts", "batch_size", "buffer_size", "train_freq", "gradient_steps", "gamma", "tau")


CUDA = pytest.mark.skipif(not th.cuda.is_available(), reason="needs CUDA (torch.cuda.is_available() is false)")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, CUDA])])
def test_bench_verb_prints_both_sides_and_writes_json(device, tmp_path, monkeypatch, capsys):
    out = tmp_path / "bench.json"
    argv = ["--algos", "course_dqn", "--net-sizes", "course", "--steps", "300", "--repetitions", "1", "--device", device]
    monkeypatch.setattr(sys, "argv", ["sb3-course", "bench", *argv, "--learning-starts", "100", "--json", str(out)])
    main()
    printed = capsys.readouterr().out
    header, _, row = [line for line in printed.splitlines() if line.startswith("|")]
    assert "course steps/s" in header and "SB3 steps/s" in header and "course / SB3" in header
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:3] == ["course_dqn / dqn", "CartPole-v1", "course"]
    assert all(float(cell.split()[0]) > 0 for cell in cells[3:6])
    assert "sb3-course bench --algos course_dqn" in printed
    name = th.cuda.get_device_name() if device == "cuda" else cpu_name()
    assert f"device: {device} ({name})" in printed.splitlines() and name != "unknown CPU"
    written = json.loads(out.read_text())
    assert written["machine"]["device"] == device and written["machine"]["device_name"] == name
    (result,) = written["results"]
    assert result["course"][0] == "course_dqn" and result["sb3"][0] == "dqn"
    for runs in (result["course_runs"], result["sb3_runs"]):
        (run,) = runs
        assert run["steps_per_second"] > 0 and run["peak_rss_mb"] > 0 and run["time_to_threshold_s"] is None
    assert result["ratios"] == [result["course_runs"][0]["steps_per_second"] / result["sb3_runs"][0]["steps_per_second"]]


def test_bench_peers_sbx_adds_a_third_side_to_the_table_and_json(tmp_path, monkeypatch, capsys):
    pytest.importorskip("sbx")
    out = tmp_path / "bench.json"
    argv = ["--algos", "course_dqn", "reinforce", "--net-sizes", "course", "--steps", "60", "--repetitions", "1"]
    argv += ["--learning-starts", "64", "--warm-steps", "10", "--peers", "sbx", "--json", str(out)]
    monkeypatch.setattr(sys, "argv", ["sb3-course", "bench", *argv])
    main()
    header, _, dqn_row, reinforce_row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    assert columns[3:10] == [
        "course steps/s median (min-max)", "SB3 steps/s median (min-max)", "SBX steps/s median (min-max)",
        "course / SB3 median (min..max)", "course / SBX median (min..max)",
        "course / SB3 per CPU-second", "course / SBX per CPU-second",
    ]  # fmt: skip
    dqn_cells = [cell.strip() for cell in dqn_row.strip("|").split("|")]
    assert all(float(cell.split()[0]) > 0 for cell in dqn_cells[3:10])
    # SBX has no A2C: its cells are empty
    assert [cell.strip() for cell in reinforce_row.strip("|").split("|")][5] == "-"
    dqn, reinforce = json.loads(out.read_text())["results"]
    assert dqn["sbx"][0] == "sbx_dqn" and reinforce["sbx"] is None and "sbx_runs" not in reinforce
    (course,), (sbx,) = dqn["course_runs"], dqn["sbx_runs"]
    assert sbx["steps_per_second"] > 0 and sbx["cpu_steps_per_second"] > 0
    assert dqn["sbx_ratios"] == [course["steps_per_second"] / sbx["steps_per_second"]]
    assert dqn["sbx_cpu_ratios"] == [course["cpu_steps_per_second"] / sbx["cpu_steps_per_second"]]


def test_bench_peers_sbx_without_sbx_rl_exits_2_naming_the_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sbx", None)
    monkeypatch.setattr(sys, "argv", ["sb3-course", "bench", "--algos", "course_dqn", "--peers", "sbx"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert (
        captured.err.startswith("sb3-course bench --peers sbx: error: needs sbx")
        and 'pip install "sb3-course[bench]"' in captured.err
    )


@pytest.mark.parametrize(
    "matchup", [m for m in matchups(list(MATCHUPS), "both", 100) if m.sbx], ids=lambda m: f"{m.pair}-{m.sizes}"
)
def test_sbx_side_shares_the_sb3_sides_settings(matchup):
    pytest.importorskip("sbx")
    sb3, sbx = (make_model(algo, matchup.env_id, kwargs, seed=0) for algo, kwargs in (matchup.sb3, matchup.sbx))
    for name in SHARED_SETTINGS:
        if hasattr(sb3, name):
            assert getattr(sbx, name) == getattr(sb3, name), name
    # settings that one of the two does not have: SBX's SAC updates its targets every step (SB3's interval is 1)
    for name in ("learning_rate", "target_update_interval", "exploration_final_eps"):
        if hasattr(sb3, name) and hasattr(sbx, name):
            assert getattr(sbx, name) == getattr(sb3, name), name
    assert type(sbx.action_noise) is type(sb3.action_noise)
    assert sbx.policy_kwargs.get("net_arch") == sb3.policy_kwargs.get("net_arch")


def trainable(module: th.nn.Module) -> int:
    return sum(param.numel() for param in module.parameters() if param.requires_grad)


@pytest.mark.parametrize("matchup", matchups(list(MATCHUPS), "both", 100), ids=lambda m: f"{m.pair}-{m.sizes}")
def test_matchup_sides_share_settings_and_network_size(matchup):
    course, sb3 = (make_model(algo, matchup.env_id, kwargs, seed=0) for algo, kwargs in (matchup.course, matchup.sb3))
    for name in SHARED_SETTINGS:
        if hasattr(sb3, name):
            assert getattr(course, name) == getattr(sb3, name), name
    if isinstance(sb3, OffPolicyAlgorithm):
        assert type(course.action_noise) is type(sb3.action_noise)
        # The networks the course trains match SB3's in size (the DDPG critics to a few %: they differ in shape)
        for name in ("q_net", "actor", "critic"):
            if hasattr(sb3, name):
                assert math.isclose(trainable(getattr(course, name)), trainable(getattr(sb3, name)), rel_tol=0.06), name
    assert matchup.env_id in SCORE_RANGES


def test_net_sizes_give_one_matchup_where_sizes_agree():
    assert len(matchups(["course_sac", "reinforce"], "both", 100)) == 2
    assert [m.sizes for m in matchups(["course_ddpg"], "both", 100)] == list(NET_SIZES["both"])


def test_one_run_with_time_to_threshold():
    # Any CartPole return reaches 1: the first evaluation (at step 100) crosses the threshold
    spec = dict(
        algo="reinforce", env_id="CartPole-v1", kwargs={"n_episodes": 1}, seed=0, warmup=50, steps=200,
        threshold=1.0, eval_freq=100, eval_episodes=1,
    )  # fmt: skip
    run = measure_run(spec)
    assert run["steps_per_second"] > 0 and run["peak_rss_mb"] > 0
    assert 0 < run["time_to_threshold_s"] < 60


@pytest.mark.parametrize(
    "device, problem",
    [
        pytest.param(
            "cuda", "CUDA is not available here", marks=pytest.mark.skipif(th.cuda.is_available(), reason="has CUDA")
        ),
        ("cuda:99", "CUDA"),
        ("gpu", "expected cpu, cuda or cuda:<index>"),
        ("meta", "expected cpu, cuda or cuda:<index>"),
    ],
)
def test_bench_device_that_cannot_run_exits_2_with_one_line(device, problem, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["sb3-course", "bench", "--algos", "course_dqn", "--device", device])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("sb3-course bench: error: --device") and problem in captured.err


def test_gpu_check_runs_end_to_end_on_cpu(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--quick"]) == 0
    result = json.loads((tmp_path / "summary.json").read_text())
    assert [step["name"] for step in result["steps"]] == ["tests", "bench", "train", "evaluate"]
    assert all(step["returncode"] == 0 and (tmp_path / step["log"]).stat().st_size > 0 for step in result["steps"])
    assert result["passed"] and result["machine"]["device"] == "cpu"
    assert result["command"] == f"python -m sb3_course.benchmarks.gpu_check --out {tmp_path} --device cpu --quick"
    # pytest -m cuda: every test of the cuda marker collected (skipped without CUDA), none failed
    assert result["tests"]["tests"] > 0 and result["tests"]["failed"] == result["tests"]["errors"] == 0
    (bench,) = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert bench["pair"] == "course_sac" and bench["course_runs"][0]["steps_per_second"] > 0
    assert result["bench_table"][2].startswith("| course_sac / sac |")
    evaluation = result["evaluation"]
    assert evaluation["device"] == "cpu" and evaluation["model"].endswith("Pendulum-v1.zip")
    # Pendulum's reward per step lies in [-16.3, 0]; 200 steps an episode
    assert len(evaluation["returns"]) == evaluation["episodes"] == 2 and all(-3300 < r <= 0 for r in evaluation["returns"])
    assert result["train"]["steps"] == 300 and result["train"]["wall_s"] > 0
    summary = (tmp_path / "summary.md").read_text()
    assert "final return: " in summary and "| evaluate | passed |" in summary and summary in capsys.readouterr().out


def test_gpu_check_step_that_fails_or_hangs_leaves_the_others_to_run(tmp_path, monkeypatch):
    python = sys.executable
    # The hanging step's child starts a grandchild: the whole process group is stopped at the limit
    hang = "import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    hang += "print(p.pid, flush=True); time.sleep(60)"
    commands = {"tests": [python, "-c", "raise SystemExit(3)"], "bench": [python, "-c", hang], "train": [python, "-c", ""]}
    monkeypatch.setattr(gpu_check, "step_commands", lambda *args: commands)
    monkeypatch.setattr(gpu_check, "QUICK", dataclasses.replace(gpu_check.QUICK, limits_s={**gpu_check.LIMITS_S, "bench": 5}))
    assert gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--quick"]) == 1
    result = json.loads((tmp_path / "summary.json").read_text())
    statuses = [gpu_check.status(step) for step in result["steps"]]
    assert statuses == [
        "failed (exit status 3)",
        "timed out after 5 s",
        "passed",
        "skipped (the train step saved no final model)",
    ]
    assert result["steps"][1]["wall_s"] < 5 + gpu_check.GRACE_S and not result["passed"]
    grandchild = int((tmp_path / "bench.log").read_text().splitlines()[-1])
    time.sleep(0.5)
    status = Path(f"/proc/{grandchild}/status")
    assert not status.exists() or "State:\tZ" in status.read_text()

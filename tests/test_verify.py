"""``sb3-course verify``: recipe blocks trained over seeds, a report with per-seed returns, resume, bad input."""

import csv

import pytest

from sb3_course.experiments.store import RunStore
from sb3_course.verify import jobs_of, main, parse_args, recipe_blocks

TINY = ["--algos", "reinforce", "--envs", "CartPole-v1", "--seeds", "2", "-n", "200", "--evaluations", "2"]
TINY += ["--eval-episodes", "2", "--jobs", "2"]


def test_verify_writes_report_and_resumes(tmp_path, capsys):
    out = str(tmp_path / "out")
    main([*TINY, "--out", out])
    report = (tmp_path / "out" / "report.md").read_text()
    (row,) = [line for line in report.splitlines() if line.startswith("| reinforce | CartPole-v1 |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2] == "200" and cells[3] == "2"
    finals = [float(value) for value in cells[4].split(",")]
    assert len(finals) == 2 and all(0 < value <= 500 for value in finals)
    with open(tmp_path / "out" / "curves.csv") as file:
        rows = list(csv.DictReader(file))
    assert {row["seed"] for row in rows} == {"0", "1"} and {row["timesteps"] for row in rows} == {"100", "200"}
    assert (tmp_path / "out" / "curves.png").stat().st_size > 0
    # A second run finds both runs saved and trains nothing
    capsys.readouterr()
    main([*TINY, "--out", out])
    assert "2 already finished" in capsys.readouterr().out


def test_run_key_follows_the_block(tmp_path):
    args = parse_args([*TINY, "--out", str(tmp_path)])
    block = recipe_blocks("reinforce")["CartPole-v1"]
    keys = {job.key for job in jobs_of(args, "reinforce", "CartPole-v1", block)}
    edited = {job.key for job in jobs_of(args, "reinforce", "CartPole-v1", {**block, "learning_rate": 0.5})}
    assert len(keys) == 2 and not keys & edited
    assert not any(RunStore(str(tmp_path / "runs")).has(job) for job in jobs_of(args, "reinforce", "CartPole-v1", block))


# The options verify shares with parity (their type is zoo.checks.positive_int); test_parity refuses them too
RUN_OPTIONS_REFUSED = {
    "no seeds": (["--seeds", "0"], "argument --seeds: expected a positive integer, got 0"),
    "negative budget": (["-n", "-5"], "argument -n/--n-timesteps: expected a positive integer, got -5"),
    "no jobs": (["--jobs", "0"], "argument --jobs: expected a positive integer, got 0"),
}
# Bad input: exit 2 with one line before anything is trained or written
NOT_VERIFIED = {
    **RUN_OPTIONS_REFUSED,
    "no recipe block": (
        ["--algos", "course_dqn", "--envs", "Pendulum-v1"],
        "hyperparams/course_dqn.yml has no Pendulum-v1 block",
    ),
    "not a course key": (["--algos", "dqn"], "invalid choice: 'dqn'"),
    "no evaluations": (["--evaluations", "0"], "argument --evaluations: expected a positive integer, got 0"),
    "out is a file": (["--out", "{tmp}/a_file"], "a_file is a file, not a folder"),
}


@pytest.mark.parametrize("case", sorted(NOT_VERIFIED))
def test_bad_input_exits_before_training(case, tmp_path, refused):
    (tmp_path / "a_file").write_text("not a folder")
    argv, message = NOT_VERIFIED[case]
    command = ["--algos", "reinforce", "--envs", "CartPole-v1", "--out", str(tmp_path / "out")]
    command += [arg.format(tmp=tmp_path) for arg in argv]
    refused(lambda: main(command), "sb3-course verify: error: ", message)
    assert [path.name for path in tmp_path.iterdir()] == ["a_file"], "something was written"

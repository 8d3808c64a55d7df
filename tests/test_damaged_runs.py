"""
Stored runs that parse but hold values no training run writes (issue 27): ``RunStore.load`` refuses them with one
message naming the run and its archive, and ``verify`` / ``parity --report-only`` turn it into one line and exit status 2.
"""

import json
import os

import numpy as np
import pytest

from sb3_course.experiments.jobs import Job
from sb3_course.experiments.store import DamagedRunError, RunStore

JOB = Job("course_dqn", "CartPole-v1", 0, 400, 200, 2)
GOOD = {"timesteps": [200, 400], "returns": [[9.0, 10.0], [20.0, 22.0]], "wall_time": 3.5}

# name: (what is written into the run, part of the message)
DAMAGED = {
    "wall_time 0": ({"wall_time": 0}, "wall_time must be a positive number of seconds, got 0"),
    "wall_time string": ({"wall_time": "12"}, "wall_time must be a positive number of seconds, got '12'"),
    "wall_time NaN": ({"wall_time": float("nan")}, "got nan"),
    "wall_time bool": ({"wall_time": True}, "got True"),
    "wall_time missing": ({"wall_time": None}, "KeyError: 'wall_time'"),
    "1-D returns": ({"returns": [9.0, 20.0]}, "returns must be a non-empty 2-D array of numbers, got shape (2,)"),
    "empty arrays": ({"timesteps": [], "returns": np.zeros((0, 2))}, "timesteps must be a non-empty 1-D array"),
    "text returns": ({"returns": [["a", "b"], ["c", "d"]]}, "returns must be a non-empty 2-D array of numbers"),
    "NaN return": ({"returns": [[9.0, float("nan")], [20.0, 22.0]]}, "returns holds NaN or infinite values"),
    "negative steps": ({"timesteps": [-200, 400]}, "timesteps must be non-negative and increasing, got [-200, 400]"),
    "steps going back": ({"timesteps": [400, 200]}, "timesteps must be non-negative and increasing"),
    "mismatched lengths": ({"timesteps": [200, 400, 600]}, "got shape (2, 2) for 3 evaluations"),
    "episodes not the job's": ({"returns": [[9.0], [20.0]]}, "2 episodes per row (the job's eval_episodes), got shape (2, 1)"),
}


def write_run(folder: str, job: Job, **changes) -> None:
    """A run of ``job`` in ``folder`` as ``RunStore.save`` writes it, with ``changes`` to its values in the archive."""
    store = RunStore(folder)
    store.save(job, GOOD)
    with open(store.path) as file:
        records = [json.loads(line) for line in file]
    for record in records:
        if record["key"] == job.key:
            for name, value in changes.items():
                record[name] = np.asarray(value).tolist() if isinstance(value, np.ndarray) else value
            if record["wall_time"] is None:
                del record["wall_time"]
    with open(store.path, "w") as file:
        file.writelines(json.dumps(record) + "\n" for record in records)


def test_a_good_run_loads(tmp_path):
    write_run(str(tmp_path), JOB)
    run = RunStore(str(tmp_path)).load(JOB)
    assert run.timesteps.tolist() == [200, 400] and run.returns.tolist() == GOOD["returns"] and run.wall_time == 3.5


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_run_with_wrong_values_names_the_run_and_its_archive(case, tmp_path):
    changes, message = DAMAGED[case]
    write_run(str(tmp_path), JOB, **changes)
    with pytest.raises(DamagedRunError) as error:
        RunStore(str(tmp_path)).load(JOB)
    text = str(error.value)
    assert text.startswith(f"run {JOB.key} in {tmp_path / 'runs.jsonl'} cannot be read (") and message in text, text
    assert text.endswith("; delete it to train it again") and "\n" not in text


def test_an_archive_line_that_is_not_an_object_names_the_line(tmp_path):
    write_run(str(tmp_path), JOB)
    (tmp_path / "runs.jsonl").write_text("[1, 2]\n")
    with pytest.raises(DamagedRunError, match=r"line 1 of .*runs.jsonl is not a run \(TypeError: .*delete that line"):
        RunStore(str(tmp_path)).load(JOB)


def test_verify_report_only_over_a_damaged_run(tmp_path, refused):
    from sb3_course.verify import jobs_of, main, parse_args, recipe_blocks

    argv = ["--algos", "reinforce", "--envs", "CartPole-v1", "--seeds", "2", "-n", "200", "--evaluations", "2"]
    argv += ["--eval-episodes", "2", "--out", str(tmp_path / "out"), "--report-only"]
    jobs = jobs_of(parse_args(argv), "reinforce", "CartPole-v1", recipe_blocks("reinforce")["CartPole-v1"])
    runs = str(tmp_path / "out" / "runs")
    write_run(runs, jobs[0])
    write_run(runs, jobs[1], returns=[1.0, 2.0])
    line = refused(lambda: main(argv), "sb3-course verify: error: run ", "returns must be a non-empty 2-D array")
    assert f"run {jobs[1].key} in {runs}/runs.jsonl cannot be read" in line and line.endswith("delete it to train it again")
    assert sorted(os.listdir(tmp_path / "out")) == ["runs"], "a report was written"


def test_parity_report_only_over_a_damaged_run(tmp_path, refused):
    from sb3_course.parity.cli import jobs_of, main, parse_args

    argv = ["--pairs", "course_dqn:dqn@CartPole-v1:400:200", "--mode", "matched", "--seeds", "2", "--eval-episodes", "2"]
    argv += ["--out", str(tmp_path), "--report-only"]
    args = parse_args(argv)
    course, sb3 = jobs_of(args.pairs[0], "matched", 2, 2)
    for job in [*course, *sb3]:
        write_run(args.runs, job)
    write_run(args.runs, sb3[1], wall_time="12")
    line = refused(lambda: main(argv), "sb3-course parity: error: run ", "wall_time must be a positive number")
    assert f"run {sb3[1].key} in {args.runs}/runs.jsonl cannot be read" in line
    assert sorted(os.listdir(tmp_path)) == ["runs"], "a report was written"


@pytest.mark.parametrize("verb", ["verify", "parity"])
def test_report_only_over_a_folder_without_runs(verb, tmp_path, refused):
    # A mistyped --out (or a sweep with other settings): one line naming the folder, nothing created
    if verb == "verify":
        from sb3_course.verify import main

        argv = ["--algos", "reinforce", "--envs", "CartPole-v1", "--seeds", "2", "--out", str(tmp_path / "out")]
    else:
        from sb3_course.parity.cli import main

        argv = ["--pairs", "course_dqn:dqn@CartPole-v1:400:200", "--seeds", "2", "--out", str(tmp_path / "out")]
    line = refused(lambda: main([*argv, "--report-only"]), f"sb3-course {verb}: error: ", "holds no finished run")
    assert str(tmp_path / "out" / "runs") in line
    assert list(tmp_path.iterdir()) == [], "something was created"

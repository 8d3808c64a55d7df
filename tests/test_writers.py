"""
Every writer of the package attacked as another process or user would: links, FIFOs and folders planted at the
target, concurrent writers, a kill in the middle of a write, a full disk, permissions (docs/reliability.md).
"""

import errno
import io
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN

from sb3_course import CourseDQN
from sb3_course.common import files
from sb3_course.common.files import atomic_path, remove_stale_temporaries, write_text_atomically
from sb3_course.experiments.jobs import Job
from sb3_course.experiments.store import RunStore, convert, record_of

JOB = Job("course_dqn", "CartPole-v1", 0, 400, 200, 2)


def small_model(seed: int = 0) -> CourseDQN:
    return CourseDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8]), buffer_size=100, seed=seed)


def same_weights(first: CourseDQN, second: CourseDQN) -> bool:
    return all(th.equal(a, b) for a, b in zip(first.policy.parameters(), second.policy.parameters(), strict=True))


def result(value: float) -> dict:
    return {"timesteps": [200, 400], "returns": [[value, value], [value, value]], "wall_time": value}


def only_files(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# -- something planted at the target ---------------------------------------------------------------------------


@pytest.mark.parametrize("planted", ["symlink", "hardlink"])
def test_save_replaces_a_planted_link_instead_of_writing_through_it(planted, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("another user's file")
    target = tmp_path / "model.zip"
    os.symlink(victim, target) if planted == "symlink" else os.link(victim, target)
    model = small_model()
    model.save(target)
    assert victim.read_text() == "another user's file"
    assert not target.is_symlink() and target.stat().st_ino != victim.stat().st_ino
    assert same_weights(CourseDQN.load(target), model)


def test_save_replaces_a_fifo_instead_of_blocking_on_it(tmp_path):
    target = tmp_path / "model.zip"
    os.mkfifo(target)  # a plain open(target, "wb") blocks until someone reads
    saver = threading.Thread(target=small_model().save, args=(target,), daemon=True)
    saver.start()
    saver.join(timeout=60)
    assert not saver.is_alive(), "save blocked on the FIFO"
    assert stat.S_ISREG(target.lstat().st_mode) and CourseDQN.load(target)


def test_directory_at_the_target(tmp_path):
    (tmp_path / "model.zip").mkdir()
    with pytest.raises(IsADirectoryError, match=r"could not write .*model\.zip: Is a directory; the previous file"):
        small_model().save(tmp_path / "model.zip")
    assert only_files(tmp_path) == ["model.zip"] and (tmp_path / "model.zip").is_dir()


def test_run_store_does_not_write_through_a_link_planted_at_its_archive(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("another user's file")
    store = RunStore(str(tmp_path / "runs"))
    os.symlink(victim, tmp_path / "runs" / "runs.jsonl")
    with pytest.raises(ValueError, match=r"line 1 of .*runs\.jsonl is not a run .*delete that line"):
        store.save(JOB, result(1.0))
    assert victim.read_text() == "another user's file"


# -- permissions -----------------------------------------------------------------------------------------------


def test_a_private_file_stays_private_and_the_umask_is_never_changed(tmp_path, monkeypatch):
    target = tmp_path / "model.zip"
    model = small_model()
    model.save(target)
    target.chmod(0o600)

    def no_umask_change(mask):
        raise AssertionError("os.umask changes the mask of every thread of the process")

    monkeypatch.setattr(os, "umask", no_umask_change)
    model.save(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    write_text_atomically(tmp_path / "report.md", "# report")
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o666 & ~current_umask()


def current_umask() -> int:
    with open("/proc/self/status") as file:
        return int(next(line for line in file if line.startswith("Umask:")).split()[1], 8)


NOBODY = 65534


def in_child(scenario, folder, as_nobody: bool) -> dict:
    """
    ``scenario(folder)`` (a dict of results) in a forked child process, as the user ``nobody`` when ``as_nobody``
    (the tests run as root, whom file modes do not stop; the child keeps this interpreter and its imported modules,
    which ``nobody`` could not read again), ended after 60 s at most.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read)
            signal.alarm(60)
            if as_nobody:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            os.write(write, json.dumps(scenario(folder)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        output = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(output)


def overwrite_read_only(folder: Path) -> dict:
    """Write each kind of file, make it read-only (chmod 444, as its owner), write it again: what happened."""
    model, sb3_model = small_model(), DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8]), buffer_size=100)
    writers = {
        "SB3 save": lambda path: sb3_model.save(path),
        "course save": lambda path: model.save(path),
        "course save_replay_buffer": lambda path: model.save_replay_buffer(path),
        "run store / report": lambda path: write_text_atomically(path, "text"),
    }
    results = {}
    for index, (name, write) in enumerate(writers.items()):
        path = folder / f"file{index}.zip"
        write(path)
        path.chmod(0o444)
        before = path.read_bytes()
        try:
            write(path)
            results[name] = "replaced"
        except PermissionError as error:
            results[name] = str(error) if path.read_bytes() == before else "PermissionError, but the file changed"
    results["files"] = sorted(os.listdir(folder))
    return results


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a child that drops its privileges")
@pytest.mark.parametrize("as_nobody", [True, False], ids=["a user", "root"])
def test_a_read_only_file_is_replaced_only_where_sb3_would_overwrite_it(as_nobody):
    small_model().save(io.BytesIO())  # SB3's lazy imports, done before the child drops its privileges
    folder = Path(tempfile.mkdtemp(prefix="read-only-"))
    try:
        folder.chmod(0o777)  # writable by nobody: the rename alone would replace the file
        results = in_child(overwrite_read_only, folder, as_nobody=as_nobody and os.geteuid() == 0)
    finally:
        shutil.rmtree(folder)
    assert results.pop("files") == [f"file{index}.zip" for index in range(4)], "a temporary file was left"
    if as_nobody or os.geteuid() != 0:
        # SB3's save opens the file, which the mode forbids: PermissionError; the course writers refuse it too
        assert results.pop("SB3 save").startswith("[Errno 13] Permission denied")
        for name, outcome in results.items():
            assert outcome.startswith("[Errno 13] could not write ") and "read-only for this user" in outcome, name
            assert outcome.endswith("; the previous file, if any, is unchanged"), name
    else:
        # Root's open() ignores modes, so SB3 overwrites the file; so do the course writers
        assert set(results.values()) == {"replaced"}, results


# -- concurrent writers ----------------------------------------------------------------------------------------


def test_concurrent_run_store_writers_leave_one_whole_run(tmp_path):
    store, errors = RunStore(str(tmp_path)), []

    def write(value: float) -> None:
        try:
            for _ in range(20):
                store.save(JOB, result(value))
                loaded = store.load(JOB)
                assert loaded.returns[0, 0] in (1.0, 2.0, 3.0, 4.0)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(float(value),)) for value in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert only_files(tmp_path) == ["runs.jsonl"]


def test_run_stores_of_one_folder_keep_each_others_runs(tmp_path):
    # Each store holds its own thread lock: only the lock on the folder keeps two writers from losing a run
    jobs = [Job("course_dqn", "CartPole-v1", seed, 400, 200, 2) for seed in range(8)]
    threads = [threading.Thread(target=RunStore(str(tmp_path)).save, args=(job, result(1.0))) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert RunStore(str(tmp_path)).keys() == sorted(job.key for job in jobs)


def test_concurrent_model_saves_leave_one_whole_model(tmp_path):
    target, models = tmp_path / "model.zip", [small_model(seed) for seed in range(3)]
    threads = [threading.Thread(target=lambda m=m: [m.save(target) for _ in range(5)]) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    loaded = CourseDQN.load(target)
    assert any(same_weights(loaded, model) for model in models)
    assert only_files(tmp_path) == ["model.zip"]


# -- a kill in the middle of a write ---------------------------------------------------------------------------

KILLED_WRITER = """
import sys, time
from stable_baselines3.common import base_class
from sb3_course import CourseDQN

def half_then_hang(path, *args, **kwargs):
    with open(path, "wb") as file:
        file.write(b"PK half a model")
        file.flush()
    print("writing", flush=True)
    time.sleep(600)

model = CourseDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8]), buffer_size=100, seed=1)
base_class.save_to_zip_file = half_then_hang
model.save(sys.argv[1])
"""


def test_killed_writer_leaves_the_previous_file_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "model.zip"
    model = small_model()
    model.save(target)
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_WRITER), str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=60) == -signal.SIGKILL
    finally:
        writer.kill()
    (leftover,) = [name for name in only_files(tmp_path) if name != "model.zip"]
    assert leftover.startswith(".model.zip.") and leftover.endswith(f".{writer.pid}@{socket.gethostname()}.tmp")
    assert same_weights(CourseDQN.load(target), model)  # the kill left the previous model whole
    # A live writer's temporary file is kept; the dead writer's goes with the next write of the target
    live = tmp_path / f".model.zip.0000.{os.getpid()}@{socket.gethostname()}.tmp"
    live.write_bytes(b"in progress")
    model.save(target)
    assert only_files(tmp_path) == sorted([live.name, "model.zip"])


def test_stale_temporaries_of_other_hosts_are_left_alone(tmp_path):
    other = tmp_path / ".model.zip.0000.1@another-host.tmp"
    other.write_bytes(b"maybe in progress on another host sharing the folder")
    assert remove_stale_temporaries(tmp_path / "model.zip") == [] and other.exists()


# -- full disk, damaged store ----------------------------------------------------------------------------------


def test_run_store_on_a_full_disk_keeps_the_previous_runs(tmp_path, monkeypatch):
    store = RunStore(str(tmp_path))
    store.save(JOB, result(1.0))

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "_fsync", full)
    with pytest.raises(OSError, match=r"could not write .*runs\.jsonl: No space left on device") as error:
        store.save(JOB, result(2.0))
    assert error.value.errno == errno.ENOSPC
    assert store.load(JOB).wall_time == 1.0 and only_files(tmp_path) == ["runs.jsonl"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", r"line 2 of .*runs\.jsonl is not a run \(JSONDecodeError.*delete that line to train its run again"),
        ('{"returns": []}', r"line 2 of .*runs\.jsonl is not a run \(KeyError: 'key'\)"),
        (
            json.dumps({**record_of(JOB, result(1.0), ""), "returns": [1.0]}),
            rf"run {JOB.key} in .*runs\.jsonl cannot be read \(ValueError: returns must be a non-empty 2-D .*delete it",
        ),
        (
            json.dumps({**record_of(JOB, result(1.0), ""), "wall_time": "soon"}),
            r"cannot be read \(ValueError: wall_time must be a positive number of seconds, got 'soon'\)",
        ),
    ],
)
def test_damaged_run_names_the_archive_and_its_line(tmp_path, line, message):
    store = RunStore(str(tmp_path))
    store.save(Job("course_dqn", "CartPole-v1", 1, 400, 200, 2), result(1.0))
    with open(tmp_path / "runs.jsonl", "a") as file:
        file.write(line + "\n")
    with pytest.raises(ValueError, match=message):
        store.load(JOB)


def test_per_run_files_of_an_older_store_are_converted_bit_for_bit(tmp_path):
    returns = np.random.default_rng(0).normal(size=(2, 2))
    np.savez(tmp_path / f"{JOB.key}.npz", timesteps=np.array([200, 400]), returns=returns)
    meta = {"job": {name: value for name, value in asdict(JOB).items() if name != "extra_args"}, "wall_time": 0.1}
    (tmp_path / f"{JOB.key}.json").write_text(json.dumps({**meta, "finished": "2026-01-01T00:00:00"}))
    with pytest.raises(ValueError, match=rf"{tmp_path} holds the per-run files .*python -m sb3_course\.experiments\.store"):
        RunStore(str(tmp_path))
    assert convert(str(tmp_path)) == 1
    assert only_files(tmp_path) == ["runs.jsonl"]
    run = RunStore(str(tmp_path)).load(JOB)
    assert run.returns.dtype == returns.dtype and np.array_equal(run.returns, returns) and run.wall_time == 0.1


def test_atomic_path_removes_its_temporary_file_when_the_body_fails(tmp_path):
    with pytest.raises(RuntimeError, match="writer failed"), atomic_path(tmp_path / "out.csv") as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert only_files(tmp_path) == []  # no file under the final name, no temporary file

"""
A sweep killed by SIGKILL cannot delete the temporary folder of the run it was training (issue 27): the folder is
named after the job and its owner process, and the resumed sweep removes those of its jobs whose owner is gone.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sb3_course.verify import jobs_of, parse_args, recipe_blocks

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SWEEP = ["--algos", "reinforce", "--envs", "CartPole-v1", "--seeds", "2", "-n", "200", "--evaluations", "2"]
SWEEP += ["--eval-episodes", "2", "--jobs", "1"]


def processes_using(folder: Path) -> list[int]:
    """The processes whose command line names ``folder`` (the training subprocess logs under it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and str(folder) in command:
            pids.append(int(entry.name))
    return pids


def test_a_sweep_killed_by_sigkill_leaves_run_folders_that_the_resumed_sweep_removes(tmp_path):
    tmp, out = tmp_path / "tmp", tmp_path / "out"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "sb3_course.verify", *SWEEP, "--out", str(out)]
    sweep = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp.glob("run-*")):
            assert sweep.poll() is None and time.monotonic() < deadline, "no run started"
            time.sleep(0.05)
        sweep.send_signal(signal.SIGKILL)
        sweep.wait(timeout=30)
    finally:
        sweep.kill()
        sweep.wait()
    (left,) = tmp.glob("run-*")
    assert left.name.startswith("run-reinforce_CartPole-v1_") and f".{sweep.pid}@" in left.name
    # Its training subprocess ends with it (SIGTERM at its parent's death)
    deadline = time.monotonic() + 30
    while processes_using(left) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_using(left), "the killed sweep's training process is still running"

    # A folder of the same job whose owner is alive (this process): another sweep's run, kept
    job = jobs_of(
        parse_args([*SWEEP, "--out", str(out)]), "reinforce", "CartPole-v1", recipe_blocks("reinforce")["CartPole-v1"]
    )[0]
    live = tmp / f"run-{job.key}.{os.getpid()}@{socket.gethostname()}.live"
    live.mkdir()
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"removed {left}, left by a killed sweep" in resumed.stdout
    assert list(tmp.glob("run-*")) == [live]
    # SB3's logger folders (one per learn() without a log folder) went with the run folders (torch's caches stay)
    assert not list(tmp.glob("SB3-*"))
    assert (out / "report.md").is_file()

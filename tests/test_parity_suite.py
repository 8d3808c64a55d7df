"""
The parity suite (slow): each default pair, matched mode, at the learning tests' budgets, 5 seeds per side.

A pair whose course recipe uses settings SB3 has no argument for (``SB3_EXPRESSIBLE``: CourseDQN's harmonic
epsilon, CourseDDPG's two learning rates and SmoothL1 loss) is checked with those settings replaced by ones SB3 can
run, so that both sides train one configuration: 10 seeds per side for DQN (both sides then compute the same runs
bit for bit), 20 for DDPG, as about one seed in five never learns on either side. REINFORCE learns from whole
episodes, which A2C cannot: its implementation check is a unit test of its update against A2C's on the same batch
(``tests/test_reinforce.py::test_update_is_a2cs_on_the_same_whole_episodes``).

Runs land in ``$SB3_COURSE_PARITY_RUNS`` (default: the test's temporary folder), the report in the temporary
folder. Pointing the variable at a finished sweep's runs (e.g. ``docs/parity/runs``) reuses them, as an
interrupted sweep resumes, and re-judges them.
"""

import os

import pytest

from sb3_course.parity import DEFAULT_PAIRS
from sb3_course.parity.cli import main as parity
from sb3_course.zoo.matched import SB3_EXPRESSIBLE

SEEDS = {"course_dqn": 10, "course_ddpg": 20, "a3c": 20}
CHECKED_PAIRS = [pair for pair in DEFAULT_PAIRS if pair.course != "reinforce"]


@pytest.mark.slow
@pytest.mark.parametrize("pair", CHECKED_PAIRS, ids=lambda pair: f"{pair.course}-{pair.sb3}")
def test_matched_pair_is_at_parity(pair, tmp_path):
    runs = os.environ.get("SB3_COURSE_PARITY_RUNS", str(tmp_path / "runs"))
    spec = f"{pair.course}:{pair.sb3}@{pair.env_id}:{pair.n_timesteps}:{pair.eval_freq}"
    args = ["--pairs", spec, "--mode", "matched", "--out", str(tmp_path), "--runs", runs]
    args += ["--seeds", str(SEEDS.get(pair.course, 5))]
    if pair.course in SB3_EXPRESSIBLE:
        args += ["--course-params", *SB3_EXPRESSIBLE[pair.course]]
    (result,) = parity(args)
    assert result.verdict == "PARITY", [(c.metric, c.difference, c.difference_ci, c.verdict) for c in result.comparisons]

"""
The parity suite (slow): each default pair, matched mode, at the learning tests' budgets, 5 seeds per side.

Runs land in ``$SB3_COURSE_PARITY_RUNS`` (default: the test's temporary folder), the report in the temporary
folder. Pointing the variable at a finished sweep's runs (e.g. ``docs/parity/runs``) reuses them, as an
interrupted sweep resumes, and re-judges them.
"""

import os

import pytest

from sb3_course.parity import DEFAULT_PAIRS
from sb3_course.parity.cli import main as parity


@pytest.mark.slow
@pytest.mark.parametrize("pair", DEFAULT_PAIRS, ids=lambda pair: f"{pair.course}-{pair.sb3}")
def test_matched_pair_is_at_parity(pair, tmp_path):
    runs = os.environ.get("SB3_COURSE_PARITY_RUNS", str(tmp_path / "runs"))
    spec = f"{pair.course}:{pair.sb3}@{pair.env_id}:{pair.n_timesteps}:{pair.eval_freq}"
    (result,) = parity(["--pairs", spec, "--mode", "matched", "--out", str(tmp_path), "--runs", runs])
    assert result.verdict == "PARITY", [(c.metric, c.difference, c.difference_ci, c.verdict) for c in result.comparisons]

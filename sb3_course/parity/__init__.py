"""The parity suite: course algorithms against their SB3 counterparts, judged with rliable (``sb3-course parity``)."""

from sb3_course.parity.pairs import DEFAULT_PAIRS, Pair, matched_hyperparams
from sb3_course.parity.stats import compare, pair_verdict, verdict

__all__ = ["DEFAULT_PAIRS", "Pair", "compare", "matched_hyperparams", "pair_verdict", "verdict"]

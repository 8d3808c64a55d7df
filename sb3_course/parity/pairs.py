"""
The parity pairs: a course algorithm against an SB3 algorithm on one env, at a budget, in one of two modes of
configuring the SB3 side:

- ``recipe``: each side trains with its own tuned YAML recipe (the course recipe from ``hyperparams/``,
  rl-zoo3's own recipe for the SB3 key), at the same budget;
- ``matched``: the SB3 side is configured from the course side's recipe (:mod:`sb3_course.zoo.matched`).
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sb3_course.registry import ALGORITHMS
from sb3_course.zoo.matched import matched_block
from sb3_course.zoo.runs import recipe_budget

MODES = ("matched", "recipe")


@dataclass(frozen=True)
class Pair:
    """A course algorithm against an SB3 algorithm on one env, with the budget and evaluation frequency."""

    course: str
    sb3: str
    env_id: str
    n_timesteps: int
    eval_freq: int
    # Settings that replace the course recipe's (JSON object, ``--course-params``): an ablation such as the
    # course side configured like SB3 where the matched SB3 side cannot follow the course
    course_params: str = ""

    @property
    def overrides(self) -> dict[str, Any]:
        return json.loads(self.course_params) if self.course_params else {}

    @property
    def course_label(self) -> str:
        changed = ", ".join(f"{name}={value}" for name, value in self.overrides.items())
        return f"{self.course}[{changed}]" if changed else self.course

    @property
    def tag(self) -> str:
        """A file-name-safe name of the pair (with a short hash of the course overrides, if any)."""
        suffix = f"_{hashlib.sha1(self.course_params.encode()).hexdigest()[:8]}" if self.course_params else ""
        return f"{self.course}_{self.sb3}_{self.env_id}{suffix}"

    @property
    def name(self) -> str:
        return f"{self.course_label} vs {self.sb3} on {self.env_id}"


def default_pair(key: str) -> Pair:
    """``key`` against its SB3 counterpart on its check env, at the budget and evaluation frequency of its learning check."""
    algorithm = ALGORITHMS[key]
    budget = recipe_budget(key, algorithm.check_env)
    return Pair(key, algorithm.sb3_key, algorithm.check_env, budget, algorithm.learning_check.eval_freq)


DEFAULT_PAIRS = (
    default_pair("course_dqn"),
    default_pair("reinforce"),
    default_pair("a3c"),
    default_pair("course_ddpg"),
    default_pair("course_sac"),
)


def matched_hyperparams(pair: Pair) -> dict[str, Any]:
    """The rl-zoo3 YAML block that configures ``pair.sb3`` like the course side's recipe on ``pair.env_id``."""
    return matched_block(pair.course, pair.sb3, pair.env_id, pair.overrides)


def parse_pair(text: str) -> Pair:
    """``course:sb3[@env][:n_timesteps[:eval_freq]]``; the default pair of ``course`` fills what is left out."""
    head, _, env_id = text.partition("@")
    parts = env_id.split(":") if env_id else []
    course, _, sb3 = head.partition(":")
    env_id = parts[0] if parts else ""
    defaults = {pair.course: pair for pair in DEFAULT_PAIRS}
    if course not in ALGORITHMS:
        raise ValueError(f"--pairs {text!r}: unknown course algorithm {course!r}; expected one of {', '.join(ALGORITHMS)}")
    default = defaults[course]
    try:
        numbers = [int(float(part)) for part in parts[1:3]]
    except (ValueError, OverflowError):
        raise ValueError(f"--pairs {text!r}: n_timesteps and eval_freq must be numbers of steps") from None
    if any(number < 1 for number in numbers):
        raise ValueError(f"--pairs {text!r}: n_timesteps and eval_freq must be positive")
    return Pair(
        course,
        sb3 or default.sb3,
        env_id or default.env_id,
        numbers[0] if numbers else default.n_timesteps,
        numbers[1] if len(numbers) > 1 else default.eval_freq,
    )

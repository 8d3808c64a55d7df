"""rl-zoo3 glue: the course algorithms as entries of rl-zoo3's ``ALGOS`` table and their YAML recipes."""

from pathlib import Path
from typing import Any

import yaml
from rl_zoo3 import exp_manager, hyperparams_opt
from rl_zoo3.utils import ALGOS
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_course.a3c import A3C
from sb3_course.common.buffers import FrameStackReplayBuffer
from sb3_course.ddpg import CourseDDPG
from sb3_course.dqn import CourseDQN
from sb3_course.reinforce import REINFORCE
from sb3_course.sac import CourseSAC
from sb3_course.zoo.samplers import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

# rl-zoo3 key -> course algorithm
COURSE_ALGOS: dict[str, type[BaseAlgorithm]] = {
    "course_dqn": CourseDQN,
    "course_ddpg": CourseDDPG,
    "course_sac": CourseSAC,
    "reinforce": REINFORCE,
    "a3c": A3C,
}

# rl-zoo3 key of the course algorithm -> rl-zoo3 key of its SB3 counterpart
SB3_COUNTERPARTS: dict[str, str] = {
    "course_dqn": "dqn",
    "course_ddpg": "ddpg",
    "course_sac": "sac",
    "reinforce": "a2c",
    "a3c": "a2c",
}


def hyperparams_dir() -> Path:
    """The folder of the course YAML recipes: ``hyperparams/`` of a source checkout, else the installed copy."""
    checkout = Path(__file__).resolve().parents[2] / "hyperparams"
    if (checkout / "course_dqn.yml").is_file():
        return checkout
    # A wheel installs the top-level hyperparams/ as the data package sb3_course/hyperparams (pyproject.toml)
    return Path(__file__).resolve().parents[1] / "hyperparams"


def default_config(algo: str) -> Path | None:
    """The recipe file rl-zoo3 should read for ``algo``, or ``None`` to keep rl-zoo3's own (SB3 keys)."""
    if algo not in COURSE_ALGOS:
        return None
    return hyperparams_dir() / f"{algo}.yml"


def load_recipes(algo: str) -> dict[str, dict[str, Any]]:
    """The blocks of ``hyperparams/<algo>.yml`` of a course key (``default`` included), by env id."""
    with open(hyperparams_dir() / f"{algo}.yml") as file:
        return yaml.safe_load(file)


def register() -> None:
    """
    Add the course algorithms to rl-zoo3's ``ALGOS`` and their Optuna samplers to ``HYPERPARAMS_SAMPLER`` /
    ``HYPERPARAMS_CONVERTER``, and make ``FrameStackReplayBuffer`` a name recipes can use (idempotent).
    rl-zoo3's scripts import these dicts, so updating them in place is enough.
    """
    ALGOS.update(COURSE_ALGOS)
    hyperparams_opt.HYPERPARAMS_SAMPLER.update(HYPERPARAMS_SAMPLER)
    hyperparams_opt.HYPERPARAMS_CONVERTER.update(HYPERPARAMS_CONVERTER)
    # rl-zoo3 evaluates a recipe's ``replay_buffer_class: <name>`` in exp_manager's namespace (as HerReplayBuffer)
    exp_manager.FrameStackReplayBuffer = FrameStackReplayBuffer  # type: ignore[attr-defined]


__all__ = ["COURSE_ALGOS", "SB3_COUNTERPARTS", "default_config", "hyperparams_dir", "register"]

"""
The facts about the course algorithms and the envs they are measured on, each stated once and read everywhere else
(rl-zoo3 glue, parity, benchmarks, verify):

- per rl-zoo3 key (:data:`ALGORITHMS`): the course class, its SB3 counterpart, the action and observation spaces
  it takes and the course network sizes. The classes and the algorithm packages stay the owners of their own
  defaults: the action spaces are the class's ``supported_action_spaces``, the observation spaces the ones its
  construction check accepts (:data:`sb3_course.common.validation.SUPPORTED_OBSERVATION_SPACES`), the network
  sizes each package's ``COURSE_NET_ARCH``;
- per rl-zoo3 key, its learning check (:class:`LearningCheck`: ``tests/test_learning_*.py``,
  ``python -m sb3_course.benchmarks.learning --spec <key>``, parity's default pairs). Its budget is the
  ``n_timesteps`` of the course recipe for the check env (``hyperparams/<key>.yml``), the recipe's fact;
- per env id (:data:`SCORE_RANGES`): the return of a random policy and the reference return, the 0 and 1 of a
  normalised score; (:data:`SOLVED_RETURNS`) the return at which a learning check counts a final model solved.
"""

import copy
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from gymnasium import spaces
from stable_baselines3 import A2C, DDPG, DQN, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_course.a3c import A3C
from sb3_course.a3c.policies import COURSE_NET_ARCH as A3C_NET_ARCH
from sb3_course.a3c.policies import A3CPolicy
from sb3_course.common.validation import SUPPORTED_OBSERVATION_SPACES
from sb3_course.ddpg import CourseDDPG
from sb3_course.ddpg.policies import COURSE_ENCODER_DIM, CourseDDPGPolicy
from sb3_course.ddpg.policies import COURSE_NET_ARCH as DDPG_NET_ARCH
from sb3_course.dqn import CourseDQN
from sb3_course.dqn.policies import COURSE_NET_ARCH as DQN_NET_ARCH
from sb3_course.dqn.policies import CourseDQNPolicy
from sb3_course.reinforce import REINFORCE
from sb3_course.reinforce.policies import COURSE_NET_ARCH as REINFORCE_NET_ARCH
from sb3_course.sac import CourseSAC


@dataclass(frozen=True)
class LearningCheck:
    """
    What a course algorithm must learn with its recipe on its check env: on seeds ``0 .. n_seeds - 1``, the final
    model's mean deterministic return over ``final_episodes`` episodes reaches the env's solved return
    (:data:`SOLVED_RETURNS`) on at least ``min_solved`` seeds.

    :param eval_freq: steps between the evaluations during training (the learning curve)
    :param n_seeds: seeds 0 to ``n_seeds - 1``
    :param min_solved: how many final models must reach the solved return
    :param final_episodes: deterministic episodes of the final model's evaluation
    """

    eval_freq: int
    n_seeds: int
    min_solved: int
    final_episodes: int

    @property
    def seeds(self) -> list[int]:
        return list(range(self.n_seeds))


# The two off-policy recipes held on 9 of 10 seeds they were tuned on and 1 of 3 elsewhere: they are checked on 20
TWENTY_SEEDS: dict[str, Any] = {"n_seeds": 20, "min_solved": 19, "final_episodes": 20}
TEN_SEEDS: dict[str, Any] = {"n_seeds": 10, "min_solved": 9, "final_episodes": 10}


@dataclass(frozen=True, eq=False)
class Algorithm:
    """
    A course algorithm as rl-zoo3 knows it, with its SB3 counterpart.

    :param key: rl-zoo3 key of the course algorithm
    :param course_class: the course class
    :param sb3_key: rl-zoo3 key of the SB3 counterpart
    :param sb3_class: the SB3 counterpart
    :param course_policy_kwargs: the ``policy_kwargs`` of the course network (what the course policy builds
        by default)
    :param check_env: the env of the algorithm's learning check (``tests/test_learning_*.py``), default parity pair
        and bench matchup
    :param learning_check: the learning check on ``check_env``
    :param sb3_trainable_policy: a course policy that the SB3 counterpart can train itself (the matched parity
        side uses it), or ``None``
    """

    key: str
    course_class: type[BaseAlgorithm]
    sb3_key: str
    sb3_class: type[BaseAlgorithm]
    course_policy_kwargs: dict[str, Any]
    check_env: str
    learning_check: LearningCheck
    sb3_trainable_policy: type[BasePolicy] | None = None

    @property
    def action_spaces(self) -> tuple[type[spaces.Space], ...]:
        """The action space classes the course class takes."""
        return self.course_class.supported_action_spaces  # type: ignore[attr-defined]

    @property
    def observation_spaces(self) -> tuple[type[spaces.Space], ...]:
        """The observation space classes the course class takes (``Dict`` with ``MultiInputPolicy``)."""
        return SUPPORTED_OBSERVATION_SPACES

    def course_net_arch(self) -> Any:
        """The course network's ``net_arch`` in the course policy's format (a copy)."""
        return copy.deepcopy(self.course_policy_kwargs["net_arch"])

    def course_kwargs(self) -> dict[str, Any]:
        """The course network's ``policy_kwargs`` (a copy)."""
        return copy.deepcopy(self.course_policy_kwargs)


ALGORITHMS: dict[str, Algorithm] = {
    algorithm.key: algorithm
    for algorithm in (
        Algorithm(
            "course_dqn",
            CourseDQN,
            "dqn",
            DQN,
            {"net_arch": DQN_NET_ARCH},
            "CartPole-v1",
            LearningCheck(5_000, **TWENTY_SEEDS),
            CourseDQNPolicy,
        ),
        Algorithm(
            "course_ddpg",
            CourseDDPG,
            "ddpg",
            DDPG,
            {"net_arch": DDPG_NET_ARCH, "state_encoder_dim": COURSE_ENCODER_DIM, "action_encoder_dim": COURSE_ENCODER_DIM},
            "Pendulum-v1",
            LearningCheck(2_000, **TWENTY_SEEDS),
            CourseDDPGPolicy,
        ),
        # The course SAC's hidden sizes (256, 256) are SACPolicy's default, which CourseSACPolicy keeps
        Algorithm(
            "course_sac", CourseSAC, "sac", SAC, {"net_arch": [256, 256]}, "Pendulum-v1", LearningCheck(2_000, **TEN_SEEDS)
        ),
        Algorithm(
            "reinforce",
            REINFORCE,
            "a2c",
            A2C,
            {"net_arch": REINFORCE_NET_ARCH},
            "CartPole-v1",
            LearningCheck(10_000, **TEN_SEEDS),
        ),
        Algorithm(
            "a3c", A3C, "a2c", A2C, {"net_arch": A3C_NET_ARCH}, "CartPole-v1", LearningCheck(10_000, **TEN_SEEDS), A3CPolicy
        ),
    )
}


def algorithm_of(key: str) -> Algorithm:
    """The entry of a course key, or a ``ValueError`` naming the known keys."""
    if key not in ALGORITHMS:
        raise ValueError(f"unknown course algorithm {key!r}; expected one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[key]


# SB3's DQN settings that reproduce CourseDQN without a target network (use_target_network=False): a target copied
# from the online network after every step (tau 1, interval 1) is the online network at each gradient step
SB3_DQN_WITHOUT_TARGET_NETWORK: dict[str, Any] = {"tau": 1.0, "target_update_interval": 1}


class ScoreRange(NamedTuple):
    """The returns that a normalised score maps to 0 and 1."""

    random: float
    reference: float


# Random-policy return (200 episodes, 20 for HalfCheetah: `python -m sb3_course.registry`) and the reference
# return: the env's registered reward_threshold, or for Pendulum (none registered) -150, near optimal.
SCORE_RANGES: dict[str, ScoreRange] = {
    "CartPole-v1": ScoreRange(22.7, 475.0),
    "Acrobot-v1": ScoreRange(-497.4, -100.0),
    "MountainCar-v0": ScoreRange(-200.0, -110.0),
    "LunarLander-v3": ScoreRange(-185.5, 200.0),
    "Pendulum-v1": ScoreRange(-1255.5, -150.0),
    "MountainCarContinuous-v0": ScoreRange(-33.2, 90.0),
    "LunarLanderContinuous-v3": ScoreRange(-212.5, 200.0),
    "HalfCheetah-v5": ScoreRange(-260.8, 4800.0),
    "InvertedPendulum-v5": ScoreRange(5.1, 950.0),
    "Reacher-v5": ScoreRange(-42.9, -3.75),
}


# The return at which a learning check counts a final model solved: CartPole's registered reward_threshold (its
# reference return); for Pendulum (none registered) -200, a swing-up held from most start states
SOLVED_RETURNS: dict[str, float] = {"CartPole-v1": SCORE_RANGES["CartPole-v1"].reference, "Pendulum-v1": -200.0}


def score_range(env_id: str) -> ScoreRange:
    """The score range of ``env_id``, or a ``KeyError`` saying where to add one."""
    if env_id not in SCORE_RANGES:
        raise KeyError(
            f"no score range for {env_id} (known: {', '.join(SCORE_RANGES)}); add (random return, reference return) "
            "to SCORE_RANGES in sb3_course/registry.py"
        )
    return SCORE_RANGES[env_id]


def normalise(returns: np.ndarray, env_id: str) -> np.ndarray:
    """Map returns to 0 (random policy) .. 1 (the env's reference return)."""
    low, high = score_range(env_id)
    return (np.asarray(returns, dtype=float) - low) / (high - low)


def random_returns(env_id: str, episodes: int, seed: int = 0) -> float:
    """Mean return of uniformly random actions (how the random returns of ``SCORE_RANGES`` were measured)."""
    import gymnasium as gym

    env = gym.make(env_id)
    env.action_space.seed(seed)
    total = 0.0
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
    return total / episodes


if __name__ == "__main__":
    for env_id in SCORE_RANGES:
        print(f"{env_id}: {random_returns(env_id, 20 if env_id.startswith('HalfCheetah') else 200):.1f}")

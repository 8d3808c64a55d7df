"""
The matched configurations of ``sb3-course bench``: for each course algorithm, its SB3 counterpart with the same
settings (keyword arguments of the two classes) at the course's network sizes and at SB3's default sizes, and the
SBX (sbx-rl, SB3's algorithms in JAX) class configured as the SB3 side for ``--peers sbx``.
"""

from dataclasses import dataclass
from typing import Any

from sb3_course.registry import ALGORITHMS, SB3_DQN_WITHOUT_TARGET_NETWORK

OFF_POLICY_STEPS = 3_000
ON_POLICY_STEPS = 30_000
NET_SIZES = {"course": ("course",), "sb3": ("sb3",), "both": ("course", "sb3")}


@dataclass(frozen=True)
class Matchup:
    """
    A course algorithm and its SB3 counterpart on one env with matched settings (keyword arguments), and SBX's
    class with the SB3 side's settings (``None`` where SBX has no counterpart).
    """

    pair: str
    env_id: str
    sizes: str
    course: tuple[str, dict[str, Any]]
    sb3: tuple[str, dict[str, Any]]
    steps: int
    sbx: tuple[str, dict[str, Any]] | None = None


def _matchup(
    pair: str, sizes: str, course: dict[str, Any], sb3: dict[str, Any], steps: int, sbx: dict[str, Any] | None = None
) -> Matchup:
    """The course algorithm ``pair`` against its SB3 counterpart on its check env (``sb3_course.registry``)."""
    algorithm = ALGORITHMS[pair]
    sbx_side = None if sbx is None else (f"sbx_{algorithm.sb3_key}", sbx)
    return Matchup(pair, algorithm.check_env, sizes, (pair, course), (algorithm.sb3_key, sb3), steps, sbx_side)


def dqn(sizes: str, learning_starts: int) -> Matchup:
    # Course defaults; SB3 without a target network as CourseDQN trains; both explore with SB3's linear epsilon
    # schedule so that both evaluate the network equally often.
    net_arch = ALGORITHMS["course_dqn"].course_net_arch() if sizes == "course" else [64, 64]
    common = dict(
        learning_rate=1e-4, buffer_size=10_000, learning_starts=learning_starts, batch_size=32, gamma=0.99,
        train_freq=1, gradient_steps=1, exploration_fraction=0.1, exploration_initial_eps=1.0,
        exploration_final_eps=0.05, max_grad_norm=float("inf"), policy_kwargs={"net_arch": net_arch},
    )  # fmt: skip
    course = dict(common, exploration_decay="linear")
    sb3 = dict(common, **SB3_DQN_WITHOUT_TARGET_NETWORK)
    # SBX's DQN has no gradient clipping (the same as max_grad_norm=inf)
    sbx = {name: value for name, value in sb3.items() if name != "max_grad_norm"}
    return _matchup("course_dqn", sizes, course, sb3, OFF_POLICY_STEPS, sbx)


def ddpg(sizes: str, learning_starts: int) -> Matchup:
    # The course critic encodes state and action before its hidden layers: SB3's concat critic with a first layer
    # as wide as both encoders together, then the course's hidden layers, has the same widths. At SB3's sizes
    # ([400, 300]) the course critic gets 200 + 200 encoder units and a hidden layer of 300, SB3's [400, 300] FLOP
    # for FLOP. Both use the course's Ornstein-Uhlenbeck noise.
    common = dict(
        buffer_size=50_000, learning_starts=learning_starts, batch_size=256, tau=0.005, gamma=0.98, train_freq=1,
        gradient_steps=1,
    )  # fmt: skip
    if sizes == "course":
        course_policy = ALGORITHMS["course_ddpg"].course_kwargs()
        encoders = course_policy["state_encoder_dim"] + course_policy["action_encoder_dim"]
        sb3_policy: dict[str, Any] = {
            "net_arch": {"pi": course_policy["net_arch"]["pi"], "qf": [encoders, *course_policy["net_arch"]["qf"]]}
        }
    else:
        course_policy = {"net_arch": {"pi": [400, 300], "qf": [300]}, "state_encoder_dim": 200, "action_encoder_dim": 200}
        sb3_policy = {"net_arch": [400, 300]}
    course = dict(common, actor_learning_rate=1e-4, critic_learning_rate=1e-3, policy_kwargs=course_policy)
    sb3 = dict(common, learning_rate=1e-3, action_noise="course_ou", policy_kwargs=sb3_policy)
    # SBX's DDPG gives its critic a learning rate of its own (default 1e-3); SB3's one learning rate serves both
    return _matchup("course_ddpg", sizes, course, sb3, OFF_POLICY_STEPS, dict(sb3, qf_learning_rate=1e-3))


def sac(sizes: str, learning_starts: int) -> Matchup:
    # The course's sizes are SB3's default sizes: one matchup for both; alpha fixed at 0.2 on both sides.
    common = dict(
        learning_rate=1e-3, buffer_size=1_000_000, learning_starts=learning_starts, batch_size=256, tau=0.005,
        gamma=0.99, ent_coef=0.2, train_freq=1, gradient_steps=1, policy_kwargs=ALGORITHMS["course_sac"].course_kwargs(),
    )  # fmt: skip
    return _matchup("course_sac", "course = sb3", common, common, OFF_POLICY_STEPS, common)


def reinforce(sizes: str, learning_starts: int) -> Matchup:
    # The settings of REINFORCE's CartPole-v1 recipe (hyperparams/reinforce.yml; a constant learning rate here)
    # against A2C's defaults, one env each. SBX has no A2C.
    course = dict(learning_rate=1e-3, n_episodes=4, gamma=0.99, normalize_advantage=True)
    return _matchup("reinforce", "recipe vs A2C defaults", course, {}, ON_POLICY_STEPS)


MATCHUPS = {"course_dqn": dqn, "course_ddpg": ddpg, "course_sac": sac, "reinforce": reinforce}


def matchups(algos: list[str], net_sizes: str, learning_starts: int) -> list[Matchup]:
    """The matchups of ``algos`` at the requested sizes (a pair whose sizes do not differ appears once)."""
    chosen: list[Matchup] = []
    for algo in algos:
        for sizes in NET_SIZES[net_sizes]:
            matchup = MATCHUPS[algo](sizes, learning_starts)
            if matchup not in chosen:
                chosen.append(matchup)
    return chosen

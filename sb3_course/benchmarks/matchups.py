"""
The matched configurations of ``sb3-course bench``: for each course algorithm, its SB3 counterpart with the same
settings (keyword arguments of the two classes) at the course's network sizes and at SB3's default sizes.
"""

from dataclasses import dataclass
from typing import Any

OFF_POLICY_STEPS = 3_000
ON_POLICY_STEPS = 30_000
THRESHOLDS = {"CartPole-v1": 475.0, "Pendulum-v1": -200.0}
NET_SIZES = {"course": ("course",), "sb3": ("sb3",), "both": ("course", "sb3")}


@dataclass(frozen=True)
class Matchup:
    """A course algorithm and its SB3 counterpart on one env with matched settings (keyword arguments)."""

    pair: str
    env_id: str
    sizes: str
    course: tuple[str, dict[str, Any]]
    sb3: tuple[str, dict[str, Any]]
    steps: int


def dqn(sizes: str, learning_starts: int) -> Matchup:
    # Course defaults; no target network = SB3's target copied after every step (tau 1, interval 1); both
    # explore with SB3's linear epsilon schedule so that both evaluate the network equally often.
    net_arch = {"course": [32, 32], "sb3": [64, 64]}[sizes]
    common = dict(
        learning_rate=1e-4, buffer_size=10_000, learning_starts=learning_starts, batch_size=32, gamma=0.99,
        train_freq=1, gradient_steps=1, exploration_fraction=0.1, exploration_initial_eps=1.0,
        exploration_final_eps=0.05, max_grad_norm=float("inf"), policy_kwargs={"net_arch": net_arch},
    )  # fmt: skip
    course = ("course_dqn", dict(common, exploration_decay="linear"))
    sb3 = ("dqn", dict(common, target_update_interval=1, tau=1.0))
    return Matchup("course_dqn", "CartPole-v1", sizes, course, sb3, OFF_POLICY_STEPS)


def ddpg(sizes: str, learning_starts: int) -> Matchup:
    # The course critic encodes state and action (64 + 64 units) before its hidden layer [32]: SB3's concat critic
    # [128, 32] has the same widths. At SB3's sizes ([400, 300]) the course critic gets 200 + 200 encoder units
    # and a hidden layer of 300, SB3's [400, 300] FLOP for FLOP. Both use the course's Ornstein-Uhlenbeck noise.
    common = dict(
        buffer_size=50_000, learning_starts=learning_starts, batch_size=256, tau=0.005, gamma=0.98, train_freq=1,
        gradient_steps=1,
    )  # fmt: skip
    if sizes == "course":
        course_policy = {"net_arch": {"pi": [128, 64], "qf": [32]}, "state_encoder_dim": 64, "action_encoder_dim": 64}
        sb3_policy: dict[str, Any] = {"net_arch": {"pi": [128, 64], "qf": [128, 32]}}
    else:
        course_policy = {"net_arch": {"pi": [400, 300], "qf": [300]}, "state_encoder_dim": 200, "action_encoder_dim": 200}
        sb3_policy = {"net_arch": [400, 300]}
    course = dict(common, actor_learning_rate=1e-4, critic_learning_rate=1e-3, policy_kwargs=course_policy)
    sb3 = dict(common, learning_rate=1e-3, action_noise="course_ou", policy_kwargs=sb3_policy)
    return Matchup("course_ddpg", "Pendulum-v1", sizes, ("course_ddpg", course), ("ddpg", sb3), OFF_POLICY_STEPS)


def sac(sizes: str, learning_starts: int) -> Matchup:
    # The course's (256, 256) are SB3's default sizes: one matchup for both; alpha fixed at 0.2 on both sides.
    common = dict(
        learning_rate=1e-3, buffer_size=1_000_000, learning_starts=learning_starts, batch_size=256, tau=0.005,
        gamma=0.99, ent_coef=0.2, train_freq=1, gradient_steps=1, policy_kwargs={"net_arch": [256, 256]},
    )  # fmt: skip
    return Matchup("course_sac", "Pendulum-v1", "course = sb3", ("course_sac", common), ("sac", common), OFF_POLICY_STEPS)


def reinforce(sizes: str, learning_starts: int) -> Matchup:
    # The REINFORCE CartPole-v1 recipe (hyperparams/reinforce.yml) against A2C's defaults, one env each.
    course = dict(learning_rate=1e-3, n_episodes=4, gamma=0.99, normalize_advantage=True)
    return Matchup("reinforce", "CartPole-v1", "recipe vs A2C defaults", ("reinforce", course), ("a2c", {}), ON_POLICY_STEPS)


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

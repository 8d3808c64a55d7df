"""
Scores of a run on the scale of its env: 0 for a random policy, 1 for the env's reference return.

``SCORE_RANGES`` gives per env id the (random-policy return, reference return) pair; the parity suite and
``sb3-course verify`` normalise with it.
"""

import numpy as np

# Random-policy return (200 episodes, 20 for HalfCheetah: `python -m sb3_course.experiments.scores`) and the
# reference return: the env's registered reward_threshold, or for Pendulum (none registered) -150, near optimal.
SCORE_RANGES: dict[str, tuple[float, float]] = {
    "CartPole-v1": (22.7, 475.0),
    "Acrobot-v1": (-497.4, -100.0),
    "MountainCar-v0": (-200.0, -110.0),
    "LunarLander-v3": (-185.5, 200.0),
    "Pendulum-v1": (-1255.5, -150.0),
    "MountainCarContinuous-v0": (-33.2, 90.0),
    "LunarLanderContinuous-v3": (-212.5, 200.0),
    "HalfCheetah-v5": (-260.8, 4800.0),
    "InvertedPendulum-v5": (5.1, 950.0),
    "Reacher-v5": (-42.9, -3.75),
}


def normalise(returns: np.ndarray, env_id: str) -> np.ndarray:
    """Map returns to 0 (random policy) .. 1 (the env's reference return)."""
    if env_id not in SCORE_RANGES:
        raise KeyError(f"no score range for {env_id}; add (random return, reference return) to SCORE_RANGES")
    low, high = SCORE_RANGES[env_id]
    return (np.asarray(returns, dtype=float) - low) / (high - low)


def random_returns(env_id: str, episodes: int, seed: int = 0) -> float:
    """Mean return of uniformly random actions (how the ``low`` ends of ``SCORE_RANGES`` were measured)."""
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

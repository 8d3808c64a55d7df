"""
``sb3-course enjoy``: rl-zoo3's ``enjoy`` script, reporting each episode's return as ``Monitor`` records it (the
env's own reward, before the reward shaping of a recipe's ``env_wrapper``), and one line for a missing model.
"""

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

RETURN_NOTE = (
    "sb3-course enjoy: episode rewards are the env's own returns (Monitor's), before any reward shaping of the recipe's"
    " env_wrapper"
)


class VecMonitorReturn(VecEnvWrapper):
    """
    Rewards whose sum over an episode is the return ``Monitor`` recorded for it (``info["episode"]["r"]``): each step
    passes its reward through, and the step that ends the episode adds the difference between Monitor's return and
    the rewards passed so far. A recipe's ``env_wrapper`` sits outside Monitor (rl-zoo3's ``create_test_env`` and
    SB3's ``make_vec_env`` wrap it so), so its shaped rewards do not change what the episode counts.
    """

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.passed = np.zeros(self.num_envs)

    def reset(self) -> VecEnvObs:
        self.passed[:] = 0.0
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        rewards = np.asarray(rewards, dtype=np.float64).copy()
        for index, info in enumerate(infos):
            episode = info.get("episode")
            if episode is None:
                self.passed[index] += rewards[index]
            else:  # Monitor's episode ended (an Atari life lost ends rl-zoo3's episode, not Monitor's)
                rewards[index] = float(episode["r"]) - self.passed[index]
                self.passed[index] = 0.0
        return obs, rewards, dones, infos


def enjoy() -> None:
    """rl-zoo3's ``enjoy`` with :class:`VecMonitorReturn` around its test env."""
    from rl_zoo3 import enjoy as zoo_enjoy

    create_test_env = zoo_enjoy.create_test_env

    def monitored_test_env(*args: Any, **kwargs: Any) -> VecEnv:
        return VecMonitorReturn(create_test_env(*args, **kwargs))

    print(RETURN_NOTE)
    # rl_zoo3.enjoy imported create_test_env into its namespace; enjoy() looks it up there when it runs
    zoo_enjoy.create_test_env = monitored_test_env
    try:
        zoo_enjoy.enjoy()
    finally:
        zoo_enjoy.create_test_env = create_test_env

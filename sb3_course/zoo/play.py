"""
``sb3-course enjoy``: rl-zoo3's ``enjoy`` script, reporting each episode's return as ``Monitor`` records it (the
env's own reward, before the reward shaping of a recipe's ``env_wrapper``), and one line for a missing model.
"""

import argparse
import contextlib
import io
import sys
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


def check_model_path(argv: list[str]) -> str | None:
    """
    What is wrong with the model ``enjoy`` would load (rl-zoo3's ``get_model_path`` with the same flags), or ``None``;
    a folder named ``rl-trained-agents`` is left to rl-zoo3, which downloads a missing model from the Hub.
    """
    from rl_zoo3.utils import get_model_path

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("-f", "--folder", default="rl-trained-agents")
    parser.add_argument("--exp-id", type=int, default=0)
    parser.add_argument("--load-best", action="store_true")
    parser.add_argument("--load-checkpoint", default=None)
    parser.add_argument("--load-last-checkpoint", action="store_true")
    known, _ = parser.parse_known_args(argv)
    if "rl-trained-agents" in known.folder:
        return None
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # "Loading latest experiment": rl-zoo3 prints it again
            get_model_path(
                known.exp_id, known.folder, known.algo, known.env, known.load_best, known.load_checkpoint,
                known.load_last_checkpoint,
            )  # fmt: skip
    except (AssertionError, ValueError) as error:
        return f"{error} (train with: sb3-course train --algo {known.algo} --env {known.env} -f {known.folder})"
    return None


def enjoy(prog: str) -> None:
    """rl-zoo3's ``enjoy`` with :class:`VecMonitorReturn` around its test env."""
    from rl_zoo3 import enjoy as zoo_enjoy

    problem = None if {"-h", "--help"} & set(sys.argv) else check_model_path(sys.argv[1:])
    if problem is not None:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        sys.exit(2)
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

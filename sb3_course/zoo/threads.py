"""
The torch threads of ``sb3-course train``: one for an MLP policy on the CPU, unless ``--num-threads`` says otherwise.

rl-zoo3's ``--num-threads`` defaults to -1, torch's own default (a thread per core). A small MLP's matrix products
are too small to gain from threads, and on a machine whose cores other processes use, threads that wait for each
other make CourseDQN and SB3's DQN many times slower (docs/benchmarks.md); a CNN on the CPU keeps torch's default.
"""

import argparse
from pathlib import Path

import gymnasium as gym
import rl_zoo3
import yaml
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3.common.utils import get_device


def recipe_policy(config: Path, env_id: str) -> object:
    """The ``policy`` of the block rl-zoo3 reads for ``env_id`` in the YAML file ``config`` (``None`` when unknown)."""
    try:
        with open(config) as file:
            recipes = yaml.safe_load(file)
    except (OSError, yaml.YAMLError):
        return None  # the recipe checks name the problem
    if not isinstance(recipes, dict):
        return None
    atari = "atari" in recipes and env_id in gym.registry and ExperimentManager.is_atari(env_id)
    block = recipes.get(env_id, recipes.get("atari") if atari else recipes.get("default"))
    return block.get("policy") if isinstance(block, dict) else None


def with_default_threads(argv: list[str]) -> list[str]:
    """
    Append ``--num-threads 1`` to an rl-zoo3 ``train`` command line that trains an MLP policy on the CPU and sets
    no ``--num-threads``.
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("-conf", "--conf-file", default=None)
    parser.add_argument("-params", "--hyperparams", nargs="+", default=[])
    parser.add_argument("--num-threads", default=None)
    parser.add_argument("--device", default="auto")
    known, _ = parser.parse_known_args(argv)
    # without --conf-file rl-zoo3 reads its own hyperparams/<algo>.yml
    config = Path(known.conf_file) if known.conf_file else Path(rl_zoo3.__file__).parent / "hyperparams" / f"{known.algo}.yml"
    if known.num_threads is not None or config.suffix not in (".yml", ".yaml"):
        return argv
    try:
        on_cpu = get_device(known.device).type == "cpu"
    except RuntimeError:
        return argv  # the device check names it
    policy = recipe_policy(config, known.env)
    # -params policy:'CnnPolicy' replaces the recipe's (read as text: rl-zoo3 evaluates -params itself)
    policy = next((item.partition(":")[2] for item in known.hyperparams if item.startswith("policy:")), policy)
    if on_cpu and isinstance(policy, str) and "Mlp" in policy:
        return [*argv, "--num-threads", "1"]
    return argv

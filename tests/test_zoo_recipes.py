"""Every block of every course recipe file passes the recipe checks and trains a few hundred steps through rl-zoo3."""

import argparse
import importlib.util

import pytest
import yaml
from rl_zoo3.exp_manager import ExperimentManager

from sb3_course.registry import ALGORITHMS
from sb3_course.zoo import COURSE_ALGOS, hyperparams_dir, register
from sb3_course.zoo.checks import check_recipe, constructor_arguments

# A few hundred steps: small replay buffers, updates from step 100
SMOKE_OVERRIDES = {"buffer_size": 1000, "learning_starts": 100}
# Env ids that need an optional package
ENV_PACKAGES = {"LunarLander": "Box2D", "BipedalWalker": "Box2D", "HalfCheetah": "mujoco"}


def recipe_blocks() -> list[tuple[str, str]]:
    blocks = []
    for key in COURSE_ALGOS:
        with open(hyperparams_dir() / f"{key}.yml") as file:
            blocks += [(key, block) for block in yaml.safe_load(file)]
    return blocks


@pytest.mark.parametrize(("key", "block"), recipe_blocks())
def test_recipe_block_builds_and_trains(key, block, tmp_path):
    # The `default` block is tried on the algorithm's check env
    env_id = ALGORITHMS[key].check_env if block == "default" else block
    package = next((package for prefix, package in ENV_PACKAGES.items() if env_id.startswith(prefix)), None)
    if package is not None and importlib.util.find_spec(package) is None:
        pytest.skip(f"{env_id} needs {package}")
    with open(hyperparams_dir() / f"{key}.yml") as file:
        recipe = yaml.safe_load(file)[block]
    # The block under the env id it is tried on, so rl-zoo3 reads exactly this block
    config = tmp_path / f"{key}.yml"
    config.write_text(yaml.safe_dump({env_id: recipe}))
    check_recipe(key, env_id, config, [])

    register()
    overrides = {name: value for name, value in SMOKE_OVERRIDES.items() if name in constructor_arguments(key)}
    manager = ExperimentManager(
        argparse.Namespace(),
        key,
        env_id,
        str(tmp_path / "logs"),
        n_timesteps=200,
        eval_freq=0,
        log_interval=-1,
        hyperparams=overrides,
        config=str(config),
        seed=0,
        verbose=0,
        device="cpu",
    )
    model, _ = manager.setup_experiment()
    assert isinstance(model, COURSE_ALGOS[key])
    assert isinstance(model.action_space, ALGORITHMS[key].action_spaces)
    manager.learn(model)
    assert model.num_timesteps >= 200

"""
The registry (sb3_course.registry) agrees with the classes it describes, and no other module of the package states
one of its facts again: an env's reference returns, the list of algorithm keys, a key's class, counterpart or
spaces, a course network size.
"""

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from test_conformance import SpaceEnv

import sb3_course
from sb3_course.benchmarks import learning
from sb3_course.benchmarks.learning import LearningRun
from sb3_course.common.validation import UnsupportedSpaceError
from sb3_course.registry import ALGORITHMS, SCORE_RANGES, SOLVED_RETURNS, algorithm_of, normalise, score_range
from sb3_course.zoo import load_recipes

PACKAGE = Path(sb3_course.__file__).parent
# The packages that own the course network sizes the registry reads
ALGORITHM_PACKAGES = ("a3c", "ddpg", "dqn", "reinforce", "sac")

# One instance of each space class a test env offers
ACTION_SPACES = {
    spaces.Box: spaces.Box(-1, 1, (2,), np.float32),
    spaces.Discrete: spaces.Discrete(3),
    spaces.MultiDiscrete: spaces.MultiDiscrete([3, 2]),
    spaces.MultiBinary: spaces.MultiBinary(3),
    spaces.Tuple: spaces.Tuple((spaces.Discrete(2), spaces.Discrete(2))),
}
OBSERVATION_SPACES = {
    spaces.Box: spaces.Box(-1, 1, (4,), np.float32),
    spaces.Discrete: spaces.Discrete(5),
    spaces.MultiDiscrete: spaces.MultiDiscrete([3, 2]),
    spaces.MultiBinary: spaces.MultiBinary(3),
    spaces.Dict: spaces.Dict({"position": spaces.Box(-1, 1, (3,), np.float32), "mode": spaces.Discrete(2)}),
    spaces.Tuple: spaces.Tuple((spaces.Box(-1, 1, (2,), np.float32), spaces.Discrete(2))),
}
# Tiny networks and no A3C worker beyond one (none starts before learn())
TINY = {
    "course_dqn": dict(policy_kwargs=dict(net_arch=[4])),
    "course_ddpg": dict(policy_kwargs=dict(net_arch=[4], state_encoder_dim=4, action_encoder_dim=4)),
    "course_sac": dict(policy_kwargs=dict(net_arch=[4])),
    "reinforce": dict(policy_kwargs=dict(net_arch=[4])),
    "a3c": dict(policy_kwargs=dict(net_arch=dict(trunk=[4], vf=[4])), n_workers=1),
}


def takes(key: str, observation_space: spaces.Space, action_space: spaces.Space) -> bool:
    """Whether the course class of ``key`` builds on an env of these spaces and predicts an action for it."""
    algorithm = ALGORITHMS[key]
    env: Any = SpaceEnv(observation_space, action_space)
    if key == "a3c":
        # A3C's workers build their own envs from a factory
        env = lambda: SpaceEnv(observation_space, action_space)  # noqa: E731
    policy = "MultiInputPolicy" if isinstance(observation_space, spaces.Dict) else "MlpPolicy"
    try:
        model = algorithm.course_class(policy, env, device="cpu", **TINY[key])
    except UnsupportedSpaceError:
        return False
    except AssertionError as error:
        # SB3's own check of supported_action_spaces (BaseAlgorithm.__init__)
        assert "only supports" in str(error), error
        return False
    action, _ = model.predict(observation_space.sample(), deterministic=True)
    assert action_space.contains(np.asarray(action, dtype=action_space.dtype).reshape(action_space.shape))
    return True


@pytest.mark.parametrize("space", list(ACTION_SPACES), ids=lambda space: space.__name__)
@pytest.mark.parametrize("key", list(ALGORITHMS))
def test_class_takes_exactly_the_registry_action_spaces(key, space):
    expected = space in ALGORITHMS[key].action_spaces
    assert takes(key, OBSERVATION_SPACES[spaces.Box], ACTION_SPACES[space]) is expected


@pytest.mark.parametrize("space", list(OBSERVATION_SPACES), ids=lambda space: space.__name__)
@pytest.mark.parametrize("key", list(ALGORITHMS))
def test_class_takes_exactly_the_registry_observation_spaces(key, space):
    expected = space in ALGORITHMS[key].observation_spaces
    action_space = ACTION_SPACES[ALGORITHMS[key].action_spaces[0]]
    assert takes(key, OBSERVATION_SPACES[space], action_space) is expected


@pytest.mark.parametrize("key", list(ALGORITHMS))
def test_course_network_sizes_are_what_the_policy_builds_by_default(key):
    algorithm = ALGORITHMS[key]
    model = algorithm.course_class(
        "MlpPolicy", algorithm.check_env, device="cpu", **({"n_workers": 1} if key == "a3c" else {})
    )
    for name, value in algorithm.course_kwargs().items():
        assert getattr(model.policy, name) == value, name
    # the copies handed out are the caller's to change
    algorithm.course_net_arch().clear()
    assert algorithm.course_net_arch()


@pytest.mark.parametrize("key", list(ALGORITHMS))
def test_counterpart_is_the_rl_zoo3_class_of_its_key(key):
    from rl_zoo3.utils import ALGOS

    algorithm = ALGORITHMS[key]
    assert ALGOS[algorithm.sb3_key] is algorithm.sb3_class
    assert algorithm.check_env in SCORE_RANGES


@pytest.mark.parametrize("env_id", list(SCORE_RANGES))
def test_reference_return_is_the_registered_reward_threshold(env_id):
    registered = gym.spec(env_id).reward_threshold
    random, reference = SCORE_RANGES[env_id]
    assert random < reference
    # Pendulum has none registered: its reference is the near-optimal -150 of the committed parity reports
    assert reference == (registered if registered is not None else -150.0)


def test_normalise_and_unknown_names():
    random, reference = SCORE_RANGES["CartPole-v1"]
    assert normalise(np.array([random, reference]), "CartPole-v1").tolist() == [0.0, 1.0]
    with pytest.raises(KeyError, match=r"no score range for Foo-v0 .*sb3_course/registry\.py"):
        score_range("Foo-v0")
    with pytest.raises(ValueError, match="unknown course algorithm 'foo'; expected one of course_dqn"):
        algorithm_of("foo")


@pytest.mark.parametrize("key", list(ALGORITHMS))
@pytest.mark.parametrize("unsolved", [1, 2])
def test_learning_check_trains_the_registry_spec_at_the_recipe_budget(key, unsolved, monkeypatch):
    algorithm = ALGORITHMS[key]
    check, solved_return = algorithm.learning_check, SOLVED_RETURNS[algorithm.check_env]
    calls = []

    def train_seeds(algo, env_id, seeds, n_timesteps, eval_freq, jobs, **kwargs):
        calls.append((algo, env_id, seeds, n_timesteps, eval_freq, jobs, kwargs["final_episodes"]))
        finals = {seed: solved_return - (seed < unsolved) for seed in seeds}
        return [
            LearningRun(seed, np.array([eval_freq]), np.array([final]), np.array([final]), 1.0)
            for seed, final in finals.items()
        ]

    monkeypatch.setattr(learning, "train_seeds", train_seeds)
    table, passed = learning.learning_check(key)
    budget = int(float(load_recipes(key)[algorithm.check_env]["n_timesteps"]))
    # A3C's recipe runs 2 worker processes: one seed at a time on 2 CPU slots
    jobs = 1 if key == "a3c" else 2
    assert calls == [(key, algorithm.check_env, check.seeds, budget, check.eval_freq, jobs, check.final_episodes)]
    assert check.seeds == list(range(check.n_seeds)) and check.min_solved == check.n_seeds - 1
    assert passed is (unsolved == 1), table
    assert f"{check.n_seeds - unsolved} of {check.n_seeds} final models reach {solved_return}" in table


# --- one statement per fact ----------------------------------------------------------------------------------------

ENV_ID = re.compile(r"^[A-Za-z][\w./:-]*-v\d+$")
SB3_KEYS = {algorithm.sb3_key for algorithm in ALGORITHMS.values()}


def _strings(nodes: list[ast.expr | None]) -> list[str]:
    return [node.value for node in nodes if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def _names_a_class_or_key(node: ast.expr) -> bool:
    """A class (``CourseDQN``, ``spaces.Box``), an SB3 key (``"dqn"``) or a tuple of those: a registry fact."""
    if isinstance(node, ast.Tuple | ast.List):
        return bool(node.elts) and all(_names_a_class_or_key(element) for element in node.elts)
    if isinstance(node, ast.Constant):
        return node.value in SB3_KEYS
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    # a class name starts upper-case (A3C, SAC); a constant is upper-case with underscores (COURSE_NET_ARCH)
    return name[:1].isupper() and not (name.isupper() and "_" in name)


@functools.cache
def course_net_archs() -> tuple[Any, ...]:
    """
    The course network sizes that are the course's own: a size equal to the default of an SB3 counterpart (the
    course SAC's) is SB3's fact as well, and a size choice elsewhere (a sampler's "medium").
    """
    sb3_defaults = [a.sb3_class("MlpPolicy", a.check_env, device="cpu").policy.net_arch for a in ALGORITHMS.values()]
    course = [algorithm.course_net_arch() for algorithm in ALGORITHMS.values()]
    return tuple(arch for arch in course if arch not in sb3_defaults)


def _literal(node: ast.expr) -> Any:
    """The value of a literal, ``dict(name=literal, ...)`` included, else ``None``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        values = {keyword.arg: _literal(keyword.value) for keyword in node.keywords}
        return None if None in values.values() else values
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def restated_facts(source: str, net_archs: tuple[Any, ...]) -> Iterator[tuple[int, str]]:
    """
    (line, what) of each literal in ``source`` that states a registry fact: a table keyed by env ids, a list of
    algorithm keys, a table of a class / counterpart / spaces per key, a course network size, and a statement
    (a function, a module-level assignment) that names a course key with its SB3 counterpart's key.
    """
    tree = ast.parse(source)
    for statement in tree.body:
        named = set(_strings([node for node in ast.walk(statement) if isinstance(node, ast.Constant)]))
        pairs = sorted(
            f"{key}: {ALGORITHMS[key].sb3_key}" for key in named & set(ALGORITHMS) if ALGORITHMS[key].sb3_key in named
        )
        if pairs:
            yield statement.lineno, f"a course key with its counterpart ({', '.join(pairs)})"
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = _strings(node.keys)
            if sum(bool(ENV_ID.match(key)) for key in keys) >= 2:
                yield node.lineno, f"a table keyed by env ids ({', '.join(keys)})"
            if len(set(keys) & set(ALGORITHMS)) >= 2 and all(_names_a_class_or_key(value) for value in node.values):
                yield node.lineno, f"a table of classes, counterparts or spaces per algorithm key ({', '.join(keys)})"
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            keys = set(_strings(node.elts)) & set(ALGORITHMS)  # type: ignore[arg-type]
            if len(keys) >= 2:
                yield node.lineno, f"a list of algorithm keys ({', '.join(sorted(keys))})"
        if isinstance(node, ast.List | ast.Dict | ast.Call) and net_archs:
            value = _literal(node)
            if value is not None and value in net_archs:
                yield node.lineno, f"a course network size ({value})"


def package_modules() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE.parent).as_posix(), path.read_text()


def test_no_module_restates_a_registry_fact():
    found = []
    for name, source in package_modules():
        if name == "sb3_course/registry.py":
            continue
        # the algorithm packages own their network sizes (the registry reads them there)
        owner = name.split("/")[1] in ALGORITHM_PACKAGES
        found += [f"{name}:{line}: {what}" for line, what in restated_facts(source, () if owner else course_net_archs())]
    assert not found, "state these once, in sb3_course/registry.py, and read them there:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        'SCORES = {"CartPole-v1": (0, 475), "Pendulum-v1": (-1200, -150)}',
        'KEYS = ("course_dqn", "reinforce", "a3c")',
        'COUNTERPARTS = {"course_dqn": "dqn", "course_sac": "sac"}',
        'CLASSES = {"course_dqn": CourseDQN, "reinforce": REINFORCE}',
        'SPACES = {"course_dqn": (spaces.Discrete,), "course_sac": (spaces.Box,)}',
        'kwargs = {"net_arch": [32, 32]}',
        'arch = {"trunk": [25, 50], "vf": [25]}',
        'ARCHS = {"course": dict(trunk=[25, 50], vf=[25])}',
        'PAIRS = (Pair("course_dqn", "dqn", "CartPole-v1"),)',
        'def ddpg():\n    course = ("course_ddpg", {})\n    sb3 = ("ddpg", {})',
    ],
)
def test_the_check_finds_a_restated_fact(source):
    assert list(restated_facts(source, course_net_archs()))


def test_the_check_leaves_other_tables_alone():
    source = (
        'MATCHERS = {"course_dqn": _matched_dqn, "reinforce": _matched_reinforce}\n'
        'GAPS = {"course_dqn": "epsilon: SB3 decays linearly", "a3c": "asynchronous"}\n'
        'SIZES = {"small": [64, 64], "medium": [256, 256]}\n'
    )
    assert not list(restated_facts(source, course_net_archs()))

"""
Matched settings: an SB3 counterpart configured like a course algorithm, for the two tools that compare them.

- ``sb3-course parity --mode matched`` (:func:`matched_block`): the rl-zoo3 YAML block of the SB3 side, from the
  course side's recipe resolved against the course class defaults (so it follows the recipe when the recipe
  changes), as closely as SB3's arguments allow. What SB3 cannot express is listed per algorithm in
  ``MATCHING_GAPS`` and printed in the report; ``SB3_EXPRESSIBLE`` gives the course settings that close the gap;
- ``sb3-course bench`` (:func:`matchups`): the keyword arguments of both classes with the same settings, at the
  course's network sizes and at SB3's default sizes, and the SBX (sbx-rl, SB3's algorithms in JAX) class configured
  as the SB3 side for ``--peers sbx``.
"""

import inspect
from dataclasses import dataclass
from typing import Any

import torch as th

from sb3_course.common.fast_path import with_fused_adam
from sb3_course.ddpg.ddpg import learning_rates
from sb3_course.registry import ALGORITHMS, SB3_DQN_WITHOUT_TARGET_NETWORK, algorithm_of
from sb3_course.zoo import recipe_block

# A2C's rollout length where a course side learns from whole episodes (REINFORCE, A3C by default): CartPole-v1's
# longest episode
WHOLE_EPISODE_STEPS = 500

# What the matched SB3 side cannot reproduce (SB3 has no argument for it)
MATCHING_GAPS = {
    "course_dqn": "epsilon: SB3 decays linearly (0.5 -> the course's exploration_min_eps, at least 0.01, over the "
    "first 2% of steps) where the course decays harmonically per episode, max(0.5 / (episodes + 1), "
    "exploration_min_eps) (with exploration_decay=linear on the course side, nothing: "
    "SB3's DQN then trains the course network to the same weights bit for bit)",
    "reinforce": "A2C learns from fixed 500-step rollouts bootstrapped from its critic (gae_lambda 1) where "
    "REINFORCE learns from whole episodes without a baseline; A2C's value loss also trains its separate critic "
    "(on the same batch of whole episodes both take the same update: "
    "tests/test_reinforce.py::test_update_is_a2cs_on_the_same_whole_episodes)",
    "a3c": "A2C (training the course's A3CPolicy network) steps its envs synchronously, takes one Adam step "
    "per rollout of all envs (500 steps where A3C's rollouts are whole episodes) and averages the loss over it, "
    "where A3C's workers update the shared weights asynchronously, each with its own Adam, from their own "
    "rollouts with summed losses (so gradient clipping at max_grad_norm bites at a different scale) that end at "
    "every episode end (with n_workers=1 and the A2CUpdates callback on the course side, nothing: one worker "
    "then takes A2C's update on A2C's rollouts)",
    "course_ddpg": "SB3's DDPG (training the course's CourseDDPGPolicy network) has one learning rate (the course "
    "critic's is used for the actor too, where the course actor's is lower), an MSE critic loss (course: "
    "SmoothL1) and rl-zoo3's OU noise theta 0.15 (course: 0.1)",
    "course_sac": "SB3 clips the log-std to [-20, 2] where the course bounds it with tanh",
}

# For a pair whose course recipe uses settings SB3 has no argument for, the ``--course-params`` that replace them
# with settings SB3 can run, so that both sides of the matched comparison train one configuration and a deviation
# can only come from the implementation: the implementation check (tests/test_parity_suite.py). CourseDDPG's
# recipe trains its clamped actor at a lower learning rate than its critic (hyperparams/course_ddpg.yml); with SB3's
# one learning rate (1e-3) the clamped actor saturates on both sides and neither learns, so the check uses the tanh
# actor CourseDDPGPolicy also offers.
SB3_EXPRESSIBLE: dict[str, tuple[str, ...]] = {
    "course_dqn": ("exploration_decay:linear",),
    "course_ddpg": (
        "critic_loss:mse",
        "actor_learning_rate:1e-3",
        "noise_type:ornstein-uhlenbeck",
        "noise_std:0.1",
        "policy_kwargs:dict(actor_output='tanh')",
    ),
    # One worker (no asynchrony) taking A2C's update (A2CUpdates: fixed 20-step rollouts across episode ends, mean
    # loss, where the recipe's workers learn from whole episodes); no clipping, as the recipe
    "a3c": ("n_workers:1", "n_steps:20", "max_grad_norm:1e309", "callback:sb3_course.parity.a2c_updates.A2CUpdates"),
}


def _eval_kwargs(value: Any) -> dict[str, Any]:
    # rl-zoo3 evaluates string policy_kwargs with torch's nn in scope
    return eval(value, {"nn": th.nn, "th": th}) if isinstance(value, str) else dict(value or {})


def _source(value: Any) -> str:
    """Python source of a policy_kwargs value (torch.nn classes by their name in rl-zoo3's eval scope)."""
    name = getattr(value, "__name__", "")
    if isinstance(value, type) and issubclass(value, th.nn.Module) and getattr(th.nn, name, None) is value:
        return f"nn.{name}"
    return repr(value)


def _kwargs_source(kwargs: dict[str, Any]) -> str:
    """``policy_kwargs`` as the string rl-zoo3 evaluates."""
    return "dict(" + ", ".join(f"{arg}={_source(item)}" for arg, item in kwargs.items()) + ")"


def course_recipe(key: str, env_id: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """
    The course recipe block for ``env_id`` (else ``default``), with ``overrides`` replacing its settings; a
    ``policy_kwargs`` override is merged into the recipe's policy_kwargs (a string then, as rl-zoo3 reads it).
    """
    algorithm_of(key)
    recipe = recipe_block(key, env_id)
    for name, value in (overrides or {}).items():
        if name == "policy_kwargs":
            value = _kwargs_source({**_eval_kwargs(recipe.get("policy_kwargs")), **_eval_kwargs(value)})
        recipe[name] = value
    return recipe


def class_defaults(cls: type) -> dict[str, Any]:
    """The default arguments of ``cls.__init__`` (where a default is stated once: in the signature)."""
    parameters = inspect.signature(cls).parameters
    return {name: p.default for name, p in parameters.items() if p.default is not inspect.Parameter.empty}


def course_settings(key: str, env_id: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The course recipe block for ``env_id`` (see :func:`course_recipe`) on top of the class's default arguments."""
    settings = class_defaults(ALGORITHMS[key].course_class)
    settings.update(course_recipe(key, env_id, overrides))
    settings["policy_kwargs"] = _eval_kwargs(settings.get("policy_kwargs"))
    return settings


REPLAY_KEYS = ("buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq", "gradient_steps")


def _common_off_policy(s: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: s[name] for name in names}


def _matched_dqn(s: dict[str, Any]) -> dict[str, Any]:
    block = _common_off_policy(
        s, ("learning_rate", "buffer_size", "learning_starts", "batch_size", "gamma", "train_freq", "gradient_steps")
    )
    if s["use_target_network"]:
        block.update(tau=s["tau"], target_update_interval=s["target_update_interval"])
    else:
        block.update(SB3_DQN_WITHOUT_TARGET_NETWORK)
    if s["exploration_decay"] == "linear":
        block.update(
            exploration_initial_eps=s["exploration_initial_eps"],
            exploration_final_eps=s["exploration_final_eps"],
            exploration_fraction=s["exploration_fraction"],
        )
    else:
        # the harmonic schedule is near 0.01 after 50 episodes; with a floor, it ends at the floor
        final_eps = max(s["exploration_min_eps"], 0.01)
        block.update(exploration_initial_eps=s["exploration_initial_eps"], exploration_final_eps=final_eps)
        block.update(exploration_fraction=0.02)
    # SB3's DQN trains the course network (CourseDQNPolicy) with the course side's Adam (fused unless the recipe
    # chose): with linear exploration both sides then compute the same runs bit for bit
    policy_kwargs = with_fused_adam(
        {"net_arch": ALGORITHMS["course_dqn"].course_net_arch(), **s["policy_kwargs"]}, th.device("cpu")
    )
    block.update(max_grad_norm=s["max_grad_norm"], policy="CourseDQNPolicy", policy_kwargs=_kwargs_source(policy_kwargs))
    return block


def _matched_a2c(s: dict[str, Any], **rollout: Any) -> dict[str, Any]:
    """A2C with Monte-Carlo returns inside its rollout, Adam, and the course side's optimisation settings."""
    return {
        "gae_lambda": 1.0,
        "use_rms_prop": False,  # Adam with SB3's eps 1e-5, as the course algorithms' ActorCriticPolicy
        **{name: s[name] for name in ("learning_rate", "gamma", "ent_coef", "vf_coef", "max_grad_norm")},
        **rollout,
    }


def _matched_reinforce(s: dict[str, Any]) -> dict[str, Any]:
    net_arch = s["policy_kwargs"].get("net_arch", ALGORITHMS["reinforce"].course_net_arch())
    return _matched_a2c(
        s,
        n_envs=1,
        n_steps=WHOLE_EPISODE_STEPS,
        normalize_advantage=s["normalize_advantage"],
        policy_kwargs=f"dict(net_arch=dict(pi={net_arch}, vf={net_arch}), activation_fn=nn.ReLU)",
    )


def _matched_a3c(s: dict[str, Any]) -> dict[str, Any]:
    # A2C trains the course network itself (A3CPolicy: shared trunk, detached critic branch, L2-normalised input)
    return _matched_a2c(
        s,
        n_envs=s["n_workers"],
        n_steps=s["n_steps"] or WHOLE_EPISODE_STEPS,
        normalize_advantage=False,
        policy="A3CPolicy",
        policy_kwargs=_kwargs_source(s["policy_kwargs"]),
    )


def _matched_ddpg(s: dict[str, Any]) -> dict[str, Any]:
    # SB3's DDPG trains the course network itself (CourseDDPGPolicy: clamped actor, encoder critic)
    block = _common_off_policy(s, REPLAY_KEYS)
    block.update(
        learning_rate=learning_rates(s["learning_rate"], s["actor_learning_rate"], s["critic_learning_rate"])[1],
        noise_type="ornstein-uhlenbeck",
        noise_std=0.1,
        policy="CourseDDPGPolicy",
        policy_kwargs=_kwargs_source(s["policy_kwargs"]),
    )
    return block


def _matched_sac(s: dict[str, Any]) -> dict[str, Any]:
    net_arch = s["policy_kwargs"].get("net_arch", ALGORITHMS["course_sac"].course_net_arch())
    block = _common_off_policy(s, ("learning_rate", *REPLAY_KEYS))
    block.update(ent_coef=s["ent_coef"], policy_kwargs=f"dict(net_arch={net_arch})")
    return block


MATCHERS = {
    "course_dqn": _matched_dqn,
    "reinforce": _matched_reinforce,
    "a3c": _matched_a3c,
    "course_ddpg": _matched_ddpg,
    "course_sac": _matched_sac,
}


def matched_block(course: str, sb3: str, env_id: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """
    The rl-zoo3 YAML block that configures ``sb3`` like the recipe of ``course`` on ``env_id`` (with ``overrides``
    replacing its settings).
    """
    counterpart = algorithm_of(course).sb3_key
    if counterpart != sb3:
        raise ValueError(
            f"matched mode needs the SB3 counterpart of {course} ({counterpart}), not {sb3}; use --mode recipe for other pairs"
        )
    settings = course_settings(course, env_id, overrides)
    block = {"policy": "MlpPolicy", **MATCHERS[course](settings)}
    if "env_wrapper" in settings:
        block["env_wrapper"] = settings["env_wrapper"]
    return block


# --- sb3-course bench ------------------------------------------------------------------------------------------

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


def dqn_matchup(sizes: str, learning_starts: int) -> Matchup:
    # Course defaults; SB3 without a target network as CourseDQN trains; both explore with SB3's linear epsilon
    # schedule (its defaults) so that both evaluate the network equally often.
    algorithm = ALGORITHMS["course_dqn"]
    course_defaults, sb3_defaults = class_defaults(algorithm.course_class), class_defaults(algorithm.sb3_class)
    common: dict[str, Any] = {
        name: course_defaults[name]
        for name in ("learning_rate", "buffer_size", "batch_size", "gamma", "train_freq", "gradient_steps", "max_grad_norm")
    }
    common.update(
        {name: sb3_defaults[name] for name in ("exploration_fraction", "exploration_initial_eps", "exploration_final_eps")}
    )
    net_arch = algorithm.course_net_arch() if sizes == "course" else [64, 64]
    common.update(learning_starts=learning_starts, policy_kwargs={"net_arch": net_arch})
    course = dict(common, exploration_decay="linear")
    sb3 = dict(common, **SB3_DQN_WITHOUT_TARGET_NETWORK)
    # SBX's DQN has no gradient clipping (the same as max_grad_norm=inf)
    sbx = {name: value for name, value in sb3.items() if name != "max_grad_norm"}
    return _matchup("course_dqn", sizes, course, sb3, OFF_POLICY_STEPS, sbx)


def ddpg_matchup(sizes: str, learning_starts: int) -> Matchup:
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


def sac_matchup(sizes: str, learning_starts: int) -> Matchup:
    # The course's sizes are SB3's default sizes: one matchup for both; alpha fixed at 0.2 on both sides.
    common = dict(
        learning_rate=1e-3, buffer_size=1_000_000, learning_starts=learning_starts, batch_size=256, tau=0.005,
        gamma=0.99, ent_coef=0.2, train_freq=1, gradient_steps=1, policy_kwargs=ALGORITHMS["course_sac"].course_kwargs(),
    )  # fmt: skip
    return _matchup("course_sac", "course = sb3", common, common, OFF_POLICY_STEPS, common)


def reinforce_matchup(sizes: str, learning_starts: int) -> Matchup:
    # The settings of REINFORCE's CartPole-v1 recipe (hyperparams/reinforce.yml; a constant learning rate here)
    # against A2C's defaults, one env each. SBX has no A2C.
    course = dict(learning_rate=1e-3, n_episodes=4, gamma=0.99, normalize_advantage=True)
    return _matchup("reinforce", "recipe vs A2C defaults", course, {}, ON_POLICY_STEPS)


MATCHUPS = {
    "course_dqn": dqn_matchup,
    "course_ddpg": ddpg_matchup,
    "course_sac": sac_matchup,
    "reinforce": reinforce_matchup,
}


def matchups(algos: list[str], net_sizes: str, learning_starts: int) -> list[Matchup]:
    """The matchups of ``algos`` at the requested sizes (a pair whose sizes do not differ appears once)."""
    chosen: list[Matchup] = []
    for algo in algos:
        for sizes in NET_SIZES[net_sizes]:
            matchup = MATCHUPS[algo](sizes, learning_starts)
            if matchup not in chosen:
                chosen.append(matchup)
    return chosen

"""
The parity pairs (course algorithm, SB3 counterpart, env, budget) and the two ways of configuring the SB3 side:

- ``recipe``: each side trains with its own tuned YAML recipe (the course recipe from ``hyperparams/``,
  rl-zoo3's own recipe for the SB3 key), at the same budget;
- ``matched``: the SB3 side is configured from the course side's recipe (resolved against the course class
  defaults, so it follows the recipe when the recipe changes) as closely as SB3's arguments allow. What
  SB3 cannot express is listed per pair in ``MATCHING_GAPS`` and printed in the report.
"""

import hashlib
import inspect
import json
from dataclasses import dataclass
from typing import Any

import torch as th

from sb3_course.common.fast_path import with_fused_adam
from sb3_course.ddpg.ddpg import learning_rates
from sb3_course.registry import ALGORITHMS, SB3_DQN_WITHOUT_TARGET_NETWORK, algorithm_of
from sb3_course.zoo import recipe_block
from sb3_course.zoo.runs import recipe_budget

MODES = ("matched", "recipe")


@dataclass(frozen=True)
class Pair:
    """A course algorithm against an SB3 algorithm on one env, with the budget and evaluation frequency."""

    course: str
    sb3: str
    env_id: str
    n_timesteps: int
    eval_freq: int
    # Settings that replace the course recipe's (JSON object, ``--course-params``): an ablation such as the
    # course side configured like SB3 where the matched SB3 side cannot follow the course
    course_params: str = ""

    @property
    def overrides(self) -> dict[str, Any]:
        return json.loads(self.course_params) if self.course_params else {}

    @property
    def course_label(self) -> str:
        changed = ", ".join(f"{name}={value}" for name, value in self.overrides.items())
        return f"{self.course}[{changed}]" if changed else self.course

    @property
    def tag(self) -> str:
        """A file-name-safe name of the pair (with a short hash of the course overrides, if any)."""
        suffix = f"_{hashlib.sha1(self.course_params.encode()).hexdigest()[:8]}" if self.course_params else ""
        return f"{self.course}_{self.sb3}_{self.env_id}{suffix}"

    @property
    def name(self) -> str:
        return f"{self.course_label} vs {self.sb3} on {self.env_id}"


def default_pair(key: str) -> Pair:
    """``key`` against its SB3 counterpart on its check env, at the budget and evaluation frequency of its learning check."""
    algorithm = ALGORITHMS[key]
    budget = recipe_budget(key, algorithm.check_env)
    return Pair(key, algorithm.sb3_key, algorithm.check_env, budget, algorithm.learning_check.eval_freq)


DEFAULT_PAIRS = (
    default_pair("course_dqn"),
    default_pair("reinforce"),
    default_pair("a3c"),
    default_pair("course_ddpg"),
    default_pair("course_sac"),
)

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
    "(with n_steps=500 and use_baseline=True on the course side, nothing: REINFORCE's fixed-batch mode then "
    "computes A2C's updates)",
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
# recipe trains its clamped actor at 1e-4 and its critic at 1e-3; with SB3's one learning rate (1e-3) the clamped
# actor saturates on both sides and neither learns, so the check uses the tanh actor CourseDDPGPolicy also offers.
SB3_EXPRESSIBLE: dict[str, tuple[str, ...]] = {
    "course_dqn": ("exploration_decay:linear",),
    "course_ddpg": (
        "critic_loss:mse",
        "actor_learning_rate:1e-3",
        "noise_type:ornstein-uhlenbeck",
        "noise_std:0.1",
        "policy_kwargs:dict(actor_output='tanh')",
    ),
    # REINFORCE's fixed-batch mode with the learned baseline: A2C's rollouts, advantages and losses
    "reinforce": ("n_steps:500", "use_baseline:True"),
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


def course_settings(key: str, env_id: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The course recipe block for ``env_id`` (see :func:`course_recipe`) on top of the class's default arguments."""
    recipe = course_recipe(key, env_id, overrides)
    signature = inspect.signature(ALGORITHMS[key].course_class.__init__)
    settings = {name: p.default for name, p in signature.parameters.items() if p.default is not inspect.Parameter.empty}
    settings.update(recipe)
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
        n_steps=s["n_steps"] or WHOLE_EPISODE_STEPS,
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


def matched_hyperparams(pair: Pair) -> dict[str, Any]:
    """The rl-zoo3 YAML block that configures ``pair.sb3`` like the course side's recipe on ``pair.env_id``."""
    counterpart = algorithm_of(pair.course).sb3_key
    if counterpart != pair.sb3:
        raise ValueError(
            f"matched mode needs the SB3 counterpart of {pair.course} ({counterpart}), not {pair.sb3}; use --mode recipe "
            "for other pairs"
        )
    settings = course_settings(pair.course, pair.env_id, pair.overrides)
    block = {"policy": "MlpPolicy", **MATCHERS[pair.course](settings)}
    if "env_wrapper" in settings:
        block["env_wrapper"] = settings["env_wrapper"]
    return block


def parse_pair(text: str) -> Pair:
    """``course:sb3[@env][:n_timesteps[:eval_freq]]``; the default pair of ``course`` fills what is left out."""
    head, _, env_id = text.partition("@")
    parts = env_id.split(":") if env_id else []
    course, _, sb3 = head.partition(":")
    env_id = parts[0] if parts else ""
    defaults = {pair.course: pair for pair in DEFAULT_PAIRS}
    if course not in ALGORITHMS:
        raise ValueError(f"--pairs {text!r}: unknown course algorithm {course!r}; expected one of {', '.join(ALGORITHMS)}")
    default = defaults[course]
    try:
        numbers = [int(float(part)) for part in parts[1:3]]
    except (ValueError, OverflowError):
        raise ValueError(f"--pairs {text!r}: n_timesteps and eval_freq must be numbers of steps") from None
    if any(number < 1 for number in numbers):
        raise ValueError(f"--pairs {text!r}: n_timesteps and eval_freq must be positive")
    return Pair(
        course,
        sb3 or default.sb3,
        env_id or default.env_id,
        numbers[0] if numbers else default.n_timesteps,
        numbers[1] if len(numbers) > 1 else default.eval_freq,
    )

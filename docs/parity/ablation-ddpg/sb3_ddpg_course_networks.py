"""
SB3's own DDPG (its training loop) with the course DDPG's networks (CourseDDPGPolicy, tanh actor), configured as
the matched SB3 side, against the matched SB3 DDPG runs of the committed sweep: does the course network alone
(separate state / action encoders) explain the gap? Same protocol as the suite: 20 000 steps on Pendulum-v1,
deterministic evaluation of 5 episodes every 2 000 steps on a separate env, seeds 0-4, one torch thread each.

    python docs/parity/ablation-ddpg/sb3_ddpg_course_networks.py   # ~6 min on 2 cores; writes sb3_ddpg_course_networks.json

With that file present, the script judges its saved curves again instead of training.
"""

import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = range(5)


def train(seed: int) -> list[float]:
    import torch as th
    from stable_baselines3 import DDPG
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise

    from sb3_course.ddpg.policies import CourseDDPGPolicy

    th.set_num_threads(1)
    # The matched SB3 block of docs/parity (sb3_course.parity.pairs._matched_ddpg), with the course networks
    model = DDPG(
        CourseDDPGPolicy, make_vec_env("Pendulum-v1", seed=seed), learning_rate=1e-3, buffer_size=50_000,
        learning_starts=1000, batch_size=256, tau=0.005, gamma=0.98, train_freq=1, gradient_steps=1,
        action_noise=OrnsteinUhlenbeckActionNoise(np.zeros(1), 0.1 * np.ones(1)),
        policy_kwargs=dict(actor_output="tanh"), seed=seed,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:  # EvalCallback keeps its results only when it writes them
        evaluation = EvalCallback(
            make_vec_env("Pendulum-v1", seed=seed + 10_000), n_eval_episodes=5, eval_freq=2000, log_path=folder, verbose=0
        )
        model.learn(20_000, callback=evaluation)
    return [float(np.mean(returns)) for returns in evaluation.evaluations_results]


def main() -> None:
    from sb3_course.parity.cli import jobs_of, parse_args
    from sb3_course.parity.runner import RunStore
    from sb3_course.parity.stats import compare, normalise

    saved = os.path.join(HERE, "sb3_ddpg_course_networks.json")
    if os.path.exists(saved):  # judge the saved runs again (delete the file to train anew)
        with open(saved) as file:
            earlier = json.load(file)
        # The SB3 side these runs were judged against: the matched SB3 DDPG of the time (SB3's own networks);
        # the matched side now trains the course network itself
        curves, sb3 = np.array(earlier["sb3_ddpg_course_networks"]), np.array(earlier["sb3_ddpg_matched"])
    else:
        with ProcessPoolExecutor(2) as pool:
            curves = np.array(list(pool.map(train, SEEDS)))
        args = parse_args(["--pairs", "course_ddpg:ddpg", "--mode", "matched"])
        _, sb3_jobs = jobs_of(args.pairs[0], "matched", len(SEEDS), 5)
        store = RunStore(os.path.join(HERE, "..", "runs"))
        sb3 = np.array([store.load(job).returns.mean(axis=1) for job in sb3_jobs])
    results = {"sb3_ddpg_course_networks": curves.tolist(), "sb3_ddpg_matched": sb3.tolist()}
    for metric, score in (("final", lambda c: c[:, -3:].mean(axis=1)), ("auc", lambda c: c.mean(axis=1))):
        ours, theirs = score(normalise(curves, "Pendulum-v1")), score(normalise(sb3, "Pendulum-v1"))
        comparison = compare(metric, ours, theirs, 0.1)
        low, high = (float(value) for value in comparison.difference_ci)
        results[metric] = {
            "course_networks": ours.tolist(), "sb3_networks": theirs.tolist(), "verdict": comparison.verdict,
            "difference": float(comparison.difference), "ci": [low, high],
        }  # fmt: skip
        print(
            f"{metric}: course networks {np.round(ours, 2)}, SB3 networks {np.round(theirs, 2)}: {comparison.verdict} "
            f"(difference {comparison.difference:.2f} [{low:.2f}, {high:.2f}])"
        )
    with open(saved, "w") as file:
        json.dump(results, file, indent=1)


if __name__ == "__main__":
    main()

"""
Where one environment step of an off-policy algorithm spends its CPU time, for the course class, SB3's and SBX's
(``--peers sbx`` of ``sb3-course bench``) at the bench's matched settings::

    python -m sb3_course.benchmarks.profile_step --algos course_dqn course_ddpg course_sac --net-sizes sb3

Each library's model trains ``--learning-starts`` + ``--warm-steps`` steps untimed (SBX compiles its update and
its ``predict`` there), then ``--steps`` more steps with the pieces of SB3's ``collect_rollouts`` / ``train`` loop
timed in CPU time of the process (``time.process_time``) by wrappers on the instance: acting (``_sample_action``:
the policy's ``predict`` and the exploration), the environment's step, the replay buffer's ``sample`` and the rest
of ``train`` (the update; for SBX the jitted ``_train`` apart from the conversion of the batch to JAX arrays).
What is left (storing the transition, callbacks, logging) is "rest". The libraries alternate, one thread each
(``OMP_NUM_THREADS=1`` and the XLA flags of the bench for the whole process; set them before JAX starts: run it as
a module as above). ``--torch-ops`` adds the torch profiler's ten operations with the most self CPU time in
``train()`` for the two torch sides (the profiler over-counts small operations next to large ones: read it as a
list of what runs, not as a split of the time).
"""

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from sb3_course.benchmarks.peers import PEER_ENVIRONMENT

# Before JAX starts its thread pools (torch: set_num_threads below)
os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **PEER_ENVIRONMENT})

import numpy as np
import torch as th

from sb3_course.benchmarks.speed import make_model
from sb3_course.zoo.matched import MATCHUPS, NET_SIZES, matchups

PIECES = ("act", "env step", "buffer sample", "update", "jitted update", "rest")


class Timers:
    """CPU seconds spent in each wrapped callable (nested calls are subtracted from their caller's piece)."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PIECES, 0.0)
        self.stack: list[float] = []

    def wrap(self, piece: str, function: Callable[..., Any], block: bool = False) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.stack.append(0.0)
            begin = time.process_time()
            result = function(*args, **kwargs)
            if block:  # JAX returns before the computation ends
                import jax

                jax.block_until_ready(result)
            spent = time.process_time() - begin
            inner = self.stack.pop()
            self.seconds[piece] += spent - inner
            if self.stack:
                self.stack[-1] += spent
            return result

        return timed


def instrument(model: Any) -> Timers:
    """Wrap the pieces of one environment step of ``model`` (instance attributes: the classes are not changed)."""
    timers = Timers()
    model._sample_action = timers.wrap("act", model._sample_action)
    model.env.step = timers.wrap("env step", model.env.step)
    model.replay_buffer.sample = timers.wrap("buffer sample", model.replay_buffer.sample)
    model.train = timers.wrap("update", model.train)
    # SBX's SAC and TD3 / DDPG call their jitted gradient steps ``_train`` as a function; its DQN runs ``_train``
    # inside ``jax.lax.scan``, which a wrapper would break: there all of ``train`` but the sample is the update
    if hasattr(model, "_train") and type(model).__name__ != "DQN":
        model._train = timers.wrap("jitted update", model._train, block=True)
    return timers


def profile(algo: str, env_id: str, kwargs: dict[str, Any], args: argparse.Namespace) -> dict[str, float]:
    """CPU microseconds per environment step in each piece (and ``total``) of one library's model."""
    model = make_model(algo, env_id, kwargs, seed=0)
    warm = args.learning_starts + args.warm_steps
    model.learn(warm)
    timers = instrument(model)
    begin = time.process_time()
    model.learn(args.steps, reset_num_timesteps=False)
    total = time.process_time() - begin
    timers.seconds["rest"] = total - sum(timers.seconds.values())
    per_step = {piece: 1e6 * seconds / args.steps for piece, seconds in timers.seconds.items()}
    if args.torch_ops and not algo.startswith("sbx_"):
        print_torch_ops(model, algo)
    return {**per_step, "total": 1e6 * total / args.steps}


def print_torch_ops(model: Any, algo: str) -> None:
    """The torch profiler's ten operations with the most self CPU time over 50 ``train(1)`` calls."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(50):
            model.train(1, model.batch_size)
    print(f"{algo}: torch profiler, 50 train(1) calls")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


def table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown: one row per library, CPU microseconds per step in each piece and its share of the total."""
    lines = ["| library | " + " | ".join(PIECES) + " | total us/step |", "|---|" + "---:|" * (len(PIECES) + 1)]
    for name, row in rows.items():
        cells = [f"{row[piece]:.0f} ({100 * row[piece] / row['total']:.0f} %)" for piece in PIECES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row['total']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_course.benchmarks.profile_step",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--algos", nargs="+", choices=[key for key in MATCHUPS if key != "reinforce"], default=["course_sac"])
    parser.add_argument("--net-sizes", choices=list(NET_SIZES), default="sb3")
    parser.add_argument("--steps", type=int, default=500, help="timed environment steps per library")
    parser.add_argument("--learning-starts", type=int, default=1_000)
    parser.add_argument("--warm-steps", type=int, default=100, help="untimed steps after --learning-starts")
    parser.add_argument("--repetitions", type=int, default=2, help="alternating rounds over the libraries (medians)")
    parser.add_argument("--no-sbx", action="store_true", help="leave SBX out")
    parser.add_argument("--torch-ops", action="store_true", help="also the torch profiler's top operations of train()")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    for matchup in matchups(args.algos, args.net_sizes, args.learning_starts):
        sides = {"course": matchup.course, "SB3": matchup.sb3}
        if matchup.sbx is not None and not args.no_sbx:
            sides["SBX"] = matchup.sbx
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
        for repetition in range(args.repetitions):
            for name, (algo, kwargs) in sides.items():
                args_now = argparse.Namespace(**{**vars(args), "torch_ops": args.torch_ops and repetition == 0})
                runs[name].append(profile(algo, matchup.env_id, kwargs, args_now))
        medians = {name: {key: float(np.median([run[key] for run in rows])) for key in rows[0]} for name, rows in runs.items()}
        print(f"\n{matchup.pair} on {matchup.env_id}, {matchup.sizes} sizes: CPU us per environment step (median of "
              f"{args.repetitions})")  # fmt: skip
        print(table(medians), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

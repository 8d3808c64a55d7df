"""
What the fast path (:mod:`sb3_course.common.fast_path`: fused Adam) is worth::

    python -m sb3_course.benchmarks.fast_path_worth

For CourseDQN (CartPole-v1), CourseDDPG and CourseSAC (Pendulum-v1) with the course-size settings of
``sb3-course bench``, two models are built from the same seed, one with every piece on and one with a single piece
off, and their replay buffers filled with ``learning_starts`` random steps. Then they take turns, call by call
(on, off, off, on, ...), so that a change of the machine's load meets both: ``train(1, batch_size)`` calls
(``--train-calls`` each), then ``learn()`` calls of ``--learn-block`` steps (``--learn-blocks`` each). Each call is
timed in CPU time of this process, with one torch thread. A piece's worth is ``median off / median on - 1``: how
much longer a ``train()`` call (a ``learn()`` step) takes without it. The first row switches nothing off: its
figures show the noise of the measurement.

Switching a piece off runs the code that runs where the piece does not apply: SB3's own code.
"""

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_course.benchmarks.speed import CLASSES
from sb3_course.common import fast_path
from sb3_course.registry import ALGORITHMS
from sb3_course.zoo.matched import matchups

# The algorithms that train through the fast path
ALGOS = tuple(key for key, algorithm in ALGORITHMS.items() if issubclass(algorithm.course_class, fast_path.FastOffPolicyMixin))


@dataclass(frozen=True)
class Piece:
    """
    A piece of the fast path and what switches it off.

    :param name: the piece
    :param optimizer_kwargs: ``optimizer_kwargs`` of the model without it
    """

    name: str
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)


PIECES = [
    Piece("none (noise of the measurement)"),
    Piece("fused Adam (fused=True)", optimizer_kwargs={"fused": False}),
]


def build(algo: str, piece: Piece | None, args: argparse.Namespace) -> BaseAlgorithm:
    """The course side of ``algo``'s bench matchup (course sizes), its buffer filled, with ``piece`` off."""
    (matchup,) = matchups([algo], "course", args.learning_starts)
    kwargs = dict(matchup.course[1], buffer_size=args.buffer_size)
    policy_kwargs = dict(kwargs.pop("policy_kwargs", {}))
    if piece is not None and piece.optimizer_kwargs:
        policy_kwargs["optimizer_kwargs"] = piece.optimizer_kwargs
    model = CLASSES[algo]("MlpPolicy", matchup.env_id, seed=0, device="cpu", policy_kwargs=policy_kwargs, **kwargs)
    model.learn(args.learning_starts)  # random steps; the gradient steps start after them
    return model


def median_ratio(models: list[BaseAlgorithm], run: Callable[[Any], Any], n: int) -> float:
    """``run`` on both models in turn, ``n`` timed times each (after ``n // 10`` untimed): median 1 / median 0 - 1."""
    times: list[list[float]] = [[], []]
    for index in range(-max(n // 10, 1), n):
        for side in (0, 1) if index % 2 == 0 else (1, 0):
            begin = time.process_time()
            run(models[side])
            spent = time.process_time() - begin
            if index >= 0:
                times[side].append(spent)
    return float(np.median(times[1]) / np.median(times[0]) - 1)


def worth(algo: str, piece: Piece, args: argparse.Namespace) -> tuple[float, float]:
    """How much longer a ``train(1, batch_size)`` call and a ``learn()`` step take with ``piece`` off (%)."""
    models = [build(algo, None, args), build(algo, piece, args)]
    train = median_ratio(models, lambda model: model.train(1, model.batch_size), args.train_calls)
    learn = float("nan")
    if args.learn_blocks > 0:
        run = lambda model: model.learn(args.learn_block, reset_num_timesteps=False)  # noqa: E731
        learn = median_ratio(models, run, args.learn_blocks)
    return 100 * train, 100 * learn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=os.path.basename(sys.argv[0]), description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algos", nargs="+", choices=ALGOS, default=list(ALGOS), help="algorithms to measure")
    parser.add_argument("--pieces", nargs="+", default=None, help="only the pieces whose name contains one of these")
    parser.add_argument("--train-calls", type=int, default=1_000, help="timed train(1, batch_size) calls per model")
    parser.add_argument("--learn-blocks", type=int, default=30, help="timed learn() calls per model (0: none)")
    parser.add_argument("--learn-block", type=int, default=20, help="environment steps per learn() call")
    parser.add_argument("--buffer-size", type=int, default=10_000, help="replay buffer size of every model")
    parser.add_argument("--learning-starts", type=int, default=1_000, help="random steps before the gradient steps")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    words = [word.lower() for word in args.pieces or []]
    pieces = [piece for piece in PIECES if not words or any(word in piece.name.lower() for word in words)]
    started = time.perf_counter()
    print("worth of each piece: % more time per train(1, batch_size) call / per learn() step without it")
    print(f"| piece | {' | '.join(f'{algo} train / learn' for algo in args.algos)} |")
    print(f"|---|{'---:|' * len(args.algos)}", flush=True)
    for piece in pieces:
        cells = []
        for algo in args.algos:
            train, learn = worth(algo, piece, args)
            cells.append(f"{train:+.1f} / {learn:+.1f}")
        print(f"| {piece.name} | {' | '.join(cells)} |", flush=True)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

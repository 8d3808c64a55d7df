"""
Replay buffer memory for stacked image observations: :class:`FrameStackReplayBuffer` against SB3's
``ReplayBuffer``, both filled through SB3's own pipeline (``CourseDQN`` with ``CnnPolicy`` collecting before
``learning_starts``: ``VecFrameStack``, ``VecTransposeImage``, ``_store_transition``) from random frames.

SB3's buffer at full size (12.7 GB for 100 000 transitions of 84x84x9) is computed from its arrays, not
allocated; at ``--compare`` transitions both buffers are filled with the same transitions, measured, timed
and checked to sample identical batches::

    python -m sb3_course.benchmarks.memory --transitions 100000 --episode-length 1000 --compare 10000
"""

import argparse
import gc
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from sb3_course.benchmarks.frames_env import RandomFramesEnv
from sb3_course.common.buffers import FrameStackReplayBuffer
from sb3_course.dqn import CourseDQN

GB = 1e9
# learning_starts that keeps the models collecting only (random actions, no gradient step)
NEVER = 10**12


def rss_bytes(field: str = "RssAnon") -> int:
    """
    Resident anonymous memory of this process (Linux ``/proc/self/status``), where numpy arrays live; ``VmRSS``
    also counts mapped library files (torch), which the kernel may drop from memory while the buffer grows.
    """
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def sb3_nbytes(buffer_size: int, obs_shape: tuple[int, ...], optimize_memory_usage: bool) -> int:
    """Bytes of SB3's ``ReplayBuffer`` arrays for uint8 observations and one Discrete action (its ``__init__``)."""
    obs = buffer_size * math.prod(obs_shape)
    # actions int64, rewards / dones / timeouts float32
    return obs * (1 if optimize_memory_usage else 2) + buffer_size * (8 + 3 * 4)


def fill(buffer_class: type[ReplayBuffer], args: argparse.Namespace, buffer_size: int, steps: int) -> tuple[CourseDQN, int]:
    """A CourseDQN whose buffer has collected ``steps`` transitions (seed 0), and the RSS growth while collecting."""
    th.set_num_threads(1)
    length = (args.episode_length, args.episode_length)
    env = VecFrameStack(DummyVecEnv([lambda: RandomFramesEnv(tuple(args.frame_shape), length)]), args.n_stack)
    kwargs = dict(n_stack=args.n_stack) if issubclass(buffer_class, FrameStackReplayBuffer) else {}
    model = CourseDQN(
        "CnnPolicy", env, buffer_size=buffer_size, learning_starts=NEVER, seed=0,
        replay_buffer_class=buffer_class, replay_buffer_kwargs=kwargs,
    )  # fmt: skip
    gc.collect()
    before = rss_bytes()
    model.learn(steps)
    return model, rss_bytes() - before


def sample_ms(buffer: ReplayBuffer, batch_size: int, repeats: int) -> float:
    """Mean time of ``sample(batch_size)`` in milliseconds (numpy -> torch tensors included)."""
    buffer.sample(batch_size)
    start = time.perf_counter()
    for _ in range(repeats):
        buffer.sample(batch_size)
    return 1000 * (time.perf_counter() - start) / repeats


def identical_samples(first: ReplayBuffer, second: ReplayBuffer, batch_size: int, seeds: int = 20) -> bool:
    """Whether seeded ``sample()`` calls return identical tensors from both buffers."""
    for seed in range(seeds):
        np.random.seed(seed)
        expected = first.sample(batch_size)
        np.random.seed(seed)
        got = second.sample(batch_size)
        if not all(th.equal(a, b) for a, b in zip(expected[:5], got[:5], strict=True)):
            return False
    return True


def row(name: str, transitions: int, nbytes: float, rss: float | None = None, ms: float | None = None) -> str:
    rss_text = f"{rss / GB:10.3f}" if rss is not None else f"{'-':>10}"
    ms_text = f"{ms:10.2f}" if ms is not None else f"{'-':>10}"
    return f"| {name:<52} | {transitions:>11} | {nbytes / GB:9.3f} | {rss_text} | {ms_text} |"


def compare(args: argparse.Namespace, obs_shape: tuple[int, ...]) -> list[str]:
    """Both buffers filled with the same ``--compare`` transitions: sizes, RSS, sampling time, identical batches."""
    ours, rss_ours = fill(FrameStackReplayBuffer, args, args.compare, args.compare)
    plain, rss_plain = fill(ReplayBuffer, args, args.compare, args.compare)
    ours_buffer, plain_buffer = ours.replay_buffer, plain.replay_buffer
    assert isinstance(ours_buffer, FrameStackReplayBuffer) and plain_buffer is not None
    names = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    plain_nbytes = sum(getattr(plain_buffer, name).nbytes for name in names)
    assert plain_nbytes == sb3_nbytes(args.compare, obs_shape, False)
    ms_ours = sample_ms(ours_buffer, args.batch_size, args.repeats)
    ms_plain = sample_ms(plain_buffer, args.batch_size, args.repeats)
    same = identical_samples(plain_buffer, ours_buffer, args.batch_size)
    return [
        row("FrameStackReplayBuffer", args.compare, ours_buffer.nbytes, rss_ours, ms_ours),
        row("SB3 ReplayBuffer (allocated)", args.compare, plain_nbytes, rss_plain, ms_plain),
        f"identical sample() batches from both at {args.compare} transitions (20 seeds): {same}",
    ]


def full_size(args: argparse.Namespace, obs_shape: tuple[int, ...]) -> list[str]:
    """FrameStackReplayBuffer filled to ``--transitions`` and then wrapped, next to SB3's computed sizes."""
    n = args.transitions
    model, rss = fill(FrameStackReplayBuffer, args, n, n)
    buffer = model.replay_buffer
    assert isinstance(buffer, FrameStackReplayBuffer)
    lines = [row("FrameStackReplayBuffer", n, buffer.nbytes, rss, sample_ms(buffer, args.batch_size, args.repeats))]
    frames = int(buffer.frames_written[0])
    if args.extra_steps:
        before = rss_bytes()
        model.learn(args.extra_steps, reset_num_timesteps=False)
        name = f"FrameStackReplayBuffer, +{args.extra_steps} steps (ring wrapped)"
        lines.append(row(name, buffer.size(), buffer.nbytes, rss + rss_bytes() - before))
    lines.append(row("SB3 ReplayBuffer (computed)", n, sb3_nbytes(n, obs_shape, False)))
    lines.append(row("SB3 ReplayBuffer, optimize_memory_usage (computed)", n, sb3_nbytes(n, obs_shape, True)))
    lines.append(f"frames stored for the first {n} transitions: {frames} ({frames / n:.4f} per transition)")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transitions", type=int, default=100_000, help="buffer size of the full-size measurement")
    parser.add_argument("--extra-steps", type=int, default=20_000, help="steps collected after the ring is full")
    parser.add_argument("--episode-length", type=int, default=1000)
    parser.add_argument("--frame-shape", type=int, nargs="+", default=[84, 84, 3], help="one frame, channels last")
    parser.add_argument("--n-stack", type=int, default=3)
    parser.add_argument("--compare", type=int, default=10_000, help="size at which SB3's buffer is allocated (0: skip)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=200, help="sample() calls timed per buffer")
    args = parser.parse_args(argv)
    frame_shape = tuple(args.frame_shape)
    obs_shape = (frame_shape[-1] * args.n_stack, *frame_shape[:-1])
    print(
        f"{args.n_stack} stacked {'x'.join(map(str, frame_shape))} uint8 frames (obs {obs_shape}), episodes of "
        f"{args.episode_length} steps; GB = 1e9 bytes; RSS: growth of RssAnon while collecting; "
        f"sample: one sample({args.batch_size}) call\n"
    )
    header = f"| {'buffer':<52} | transitions | nbytes GB |  RSS GB    | sample ms  |"
    table = [header, "|" + "|".join("-" * len(cell) for cell in header.split("|")[1:-1]) + "|"]
    notes = []
    # Each measurement in a fresh process: memory freed by one would be reused by the next and hide its RSS growth
    for measure in (compare, full_size) if args.compare else (full_size,):
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            *rows, note = pool.submit(measure, args, obs_shape).result()
        table += rows
        notes.append(note)
    print("\n".join([*table, "", *notes]))


if __name__ == "__main__":
    main()

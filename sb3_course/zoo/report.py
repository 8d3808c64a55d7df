"""``sb3-course report``: the SAC notes' three-panel training report (evaluation return, actor loss, critic loss)."""

import argparse
from pathlib import Path

import numpy as np

from sb3_course.common.files import atomic_path

# Scalar tags of the actor / policy loss and of the critic / value loss, first match wins. "train/loss" is the TD loss
# of a value-based algorithm (SB3's DQN, CourseDQN, QR-DQN), which logs no other loss; PPO and REINFORCE log their
# total loss under the same tag, beside a policy loss: see panel_tag.
ACTOR_TAGS = ("train/actor_loss", "train/policy_loss", "train/policy_gradient_loss")
CRITIC_TAGS = ("train/critic_loss", "train/value_loss", "train/loss")


def run_folder(folder: str, algo: str, env_id: str, exp_id: int) -> Path:
    """rl-zoo3's run folder ``<folder>/<algo>/<env>_<exp_id>`` (``exp_id`` 0: the latest)."""
    from rl_zoo3.utils import get_latest_run_id

    if exp_id == 0:
        exp_id = get_latest_run_id(str(Path(folder) / algo), env_id)
    run = Path(folder) / algo / f"{env_id}_{exp_id}"
    if not run.is_dir():
        raise FileNotFoundError(f"no run folder {run} (train with -f {folder} first)")
    return run


def load_scalars(tensorboard_dir: Path, run_prefix: str = "") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """
    Every scalar of the latest tensorboard run under ``tensorboard_dir``: tag -> (steps, values).

    :param tensorboard_dir: train's ``-tb`` folder joined with the env id
    :param run_prefix: prefer runs whose folder starts with it (SB3 names them ``<tb_log_name>_<n>``, by default
        the class name; a subclass that keeps its parent's ``learn`` keeps the parent's name, so fall back to all)
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list(tensorboard_dir.glob(f"{run_prefix}*/events.out.tfevents.*")) or list(
        tensorboard_dir.glob("*/events.out.tfevents.*")
    )
    events.sort(key=lambda path: path.stat().st_mtime)
    if not events:
        return {}
    accumulator = EventAccumulator(str(events[-1].parent))
    accumulator.Reload()
    scalars = {}
    for tag in accumulator.Tags()["scalars"]:
        points = accumulator.Scalars(tag)
        scalars[tag] = (np.array([p.step for p in points]), np.array([p.value for p in points]))
    return scalars


def panel_tag(tags: tuple[str, ...], scalars: dict[str, tuple[np.ndarray, np.ndarray]]) -> str | None:
    """The first of ``tags`` logged; "train/loss" only where no actor or policy loss is (a value-based algorithm)."""
    actor_logged = any(tag in scalars for tag in ACTOR_TAGS)
    return next((tag for tag in tags if tag in scalars and not (tag == "train/loss" and actor_logged)), None)


def draw_report(run: Path, tensorboard_dir: Path | None, output: Path, title: str, run_prefix: str = "") -> list[str]:
    """
    Draw the report PNG and return the panels that had no data (e.g. an algorithm that logs no critic loss).

    :param run: rl-zoo3 run folder with ``evaluations.npz``
    :param tensorboard_dir: where ``-tb`` wrote the run's events (``<tb>/<env id>``), or ``None``
    :param output: the PNG to write
    :param title: figure title
    :param run_prefix: the tensorboard run folders to read (see :func:`load_scalars`)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scalars = load_scalars(tensorboard_dir, run_prefix) if tensorboard_dir is not None else {}
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    missing = []
    evaluations = run / "evaluations.npz"
    if evaluations.is_file():
        data = np.load(evaluations)
        returns = data["results"]
        mean, std = returns.mean(axis=1), returns.std(axis=1)
        axes[0].plot(data["timesteps"], mean)
        axes[0].fill_between(data["timesteps"], mean - std, mean + std, alpha=0.3)
    else:
        missing.append("evaluation return (no evaluations.npz: train with --eval-freq)")
    axes[0].set(title="Evaluation return", xlabel="steps", ylabel="mean return")
    for axis, tags, name in ((axes[1], ACTOR_TAGS, "Policy / actor loss"), (axes[2], CRITIC_TAGS, "Value / critic loss")):
        tag = panel_tag(tags, scalars)
        if tag is None:
            # e.g. a value-based algorithm (DQN) has no actor, REINFORCE without baseline no critic
            why = f"the algorithm logs none of {', '.join(tags)}" if scalars else "no tensorboard events: train with -tb"
            missing.append(f"{name.lower()} ({why})")
            axis.text(0.5, 0.5, "not logged", ha="center", va="center", transform=axis.transAxes)
        else:
            axis.plot(*scalars[tag])
        axis.set(title=name if tag is None else f"{name} ({tag})", xlabel="steps")
    figure.suptitle(title)
    figure.tight_layout()
    # matplotlib picks the format from the suffix; the temporary file has none of its own
    with atomic_path(output) as tmp:
        figure.savefig(tmp, format=output.suffix[1:] or "png", dpi=100)
    plt.close(figure)
    return missing


def report(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="sb3-course report", description=__doc__)
    parser.add_argument("--algo", required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("-f", "--folder", default="logs", help="rl-zoo3 log folder (train's -f)")
    parser.add_argument("--exp-id", type=int, default=0, help="run id (0: latest)")
    parser.add_argument("-tb", "--tensorboard-log", default=None, help="train's -tb folder (for the losses)")
    parser.add_argument("-o", "--output", default=None, help="PNG path (default: <run>/report.png)")
    args = parser.parse_args(argv)
    run = run_folder(args.folder, args.algo, args.env, args.exp_id)
    tensorboard_dir = Path(args.tensorboard_log) / args.env if args.tensorboard_log else None
    output = Path(args.output) if args.output else run / "report.png"
    if output.suffix == "":
        output = output.with_suffix(".png")  # as matplotlib names a file given without suffix
    from rl_zoo3.utils import ALGOS

    title = f"{args.algo} on {args.env} ({run.name})"
    run_prefix = f"{ALGOS[args.algo].__name__}_" if args.algo in ALGOS else ""
    for panel in draw_report(run, tensorboard_dir, output, title, run_prefix):
        print(f"sb3-course report: no data for {panel}")
    print(f"Saved {output}")

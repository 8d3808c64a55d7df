"""The ``sb3-course`` command: rl-zoo3's scripts with the course algorithms registered."""

import argparse
import importlib
import runpy
import sys
from collections.abc import Callable

from sb3_course.version import __version__
from sb3_course.zoo import COURSE_ALGOS, SB3_COUNTERPARTS, default_config, hyperparams_dir, load_recipes, register
from sb3_course.zoo.checks import RecipeError, check_command
from sb3_course.zoo.extras import VERB_EXTRAS, require_extra, train_extras
from sb3_course.zoo.threads import with_default_threads

USAGE = """usage: sb3-course VERB [rl-zoo3 flags]
       sb3-course --version

verbs:
  train           rl-zoo3's train (reads hyperparams/<algo>.yml for course keys unless -conf is given; one torch
                  thread for an MLP policy on the CPU unless --num-threads is given)
  enjoy           rl-zoo3's enjoy (episode rewards: the env's own returns, as Monitor records them)
  plot_train      rl-zoo3's plot_train (each figure it shows is also saved as <verb>-<figure>.png)
  plot_from_file  rl-zoo3's plot_from_file (the same)
  all_plots       rl-zoo3's all_plots (the same)
  record_video    rl-zoo3's record_video (headless rgb_array; MP4 through moviepy, or --gif through Pillow)
  push_to_hub     rl-zoo3's push_to_hub: evaluate, record a replay, write the model card, upload to the Hugging Face Hub
  load_from_hub   rl-zoo3's load_from_hub: download a model from the Hugging Face Hub into rl-zoo3's log layout
  report          a training-report PNG: evaluation return, actor loss, critic loss against steps
  list            the course algorithms, their SB3 counterparts and the envs with recipes
  parity          the parity suite: course algorithms against SB3's over seeds, judged with rliable
  verify          train recipe blocks over seeds and report final returns against each env's reference
  bench           steps per second of each course algorithm against its SB3 counterpart (matched settings)
"""


def with_default_config(argv: list[str]) -> list[str]:
    """Append ``--conf-file hyperparams/<algo>.yml`` for a course algorithm when no config file is given."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("-conf", "--conf-file", default=None)
    known, _ = parser.parse_known_args(argv)
    config = default_config(known.algo)
    if known.conf_file is not None or config is None:
        return argv
    return [*argv, "--conf-file", str(config)]


def env_id(argv: list[str]) -> str:
    """The ``--env`` of an rl-zoo3 command line (rl-zoo3's default: CartPole-v1)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--env", default="CartPole-v1")
    return parser.parse_known_args(argv)[0].env


def checked(argv: list[str], recipe: bool, play: bool = False) -> None:
    """
    Exit with one line naming the problem when ``--algo``, ``--env``, (``recipe``) the recipe or (``play``) the model
    to play is wrong.
    """
    from rl_zoo3.utils import ALGOS

    if {"-h", "--help"} & set(argv):
        return
    try:
        check_command(argv, list(ALGOS), recipe, play)
    except RecipeError as error:
        print(f"{sys.argv[0]}: error: {error}", file=sys.stderr)
        sys.exit(2)


def train() -> None:
    """rl-zoo3's ``train`` with the course algorithms registered and the course recipes as default config."""
    from rl_zoo3.train import train as zoo_train

    register()
    argv = with_default_threads(with_default_config(sys.argv[1:]))
    for extra in train_extras(argv):
        require_extra(extra, f"{sys.argv[0]} {'--track' if extra == 'wandb' else '-tb'}")
    checked(argv, recipe=True)
    sys.argv = [sys.argv[0], *argv]
    zoo_train()


def list_algos() -> None:
    """Print the course algorithms, their SB3 counterparts and the env ids their recipes cover."""
    print(f"{'key':<14}{'class':<12}{'SB3':<6}recipes ({hyperparams_dir()})")
    for key, algo in COURSE_ALGOS.items():
        envs = ", ".join(name for name in load_recipes(key) if name != "default")
        print(f"{key:<14}{algo.__name__:<12}{SB3_COUNTERPARTS[key]:<6}{envs}")


def _use_rl_zoo3_plots() -> None:
    """
    Let ``rl_zoo3.plots`` import when rliable is installed but broken (rliable's ``arch`` < 8 fails at import
    under pandas 3, with a ``TypeError`` that rl-zoo3's ``except ImportError`` does not catch): mark it missing,
    so rl-zoo3 takes its own no-rliable path and only ``plot_from_file --rliable`` is unavailable.
    """
    try:
        import rliable.library  # noqa: F401
    except ImportError:
        pass
    except Exception:
        sys.modules["rliable"] = None  # type: ignore[assignment]


def _plot_script(name: str) -> Callable[[], None]:
    """
    A verb that runs ``rl_zoo3.plots.<name>.<name>()`` (imported directly: ``rl_zoo3.cli`` imports every script), each
    figure it shows also written as a PNG (:mod:`sb3_course.zoo.plots`).
    """

    def run() -> None:
        from sb3_course.zoo.plots import shown_figures_saved

        register()
        _use_rl_zoo3_plots()
        script = importlib.import_module(f"rl_zoo3.plots.{name}")
        with shown_figures_saved(name):
            getattr(script, name)()

    return run


def record_video() -> None:
    """
    rl-zoo3's ``record_video`` script (``rl_zoo3.record_video`` has no function) with the course algorithms:
    an MP4 through moviepy, or with ``--gif`` an animated GIF through Pillow (no moviepy needed).
    """
    register()
    gif = "--gif" in sys.argv
    sys.argv = [arg for arg in sys.argv if arg != "--gif"]
    checked(sys.argv[1:], recipe=False, play=True)
    from stable_baselines3.common import vec_env

    from sb3_course.zoo.video import VecGifRecorder, video_problem

    problem = None if {"-h", "--help"} & set(sys.argv) else video_problem(env_id(sys.argv[1:]), gif)
    if problem is not None:
        print(f"{sys.argv[0]}: error: {problem}", file=sys.stderr)
        sys.exit(2)
    mp4_recorder = vec_env.VecVideoRecorder
    # rl_zoo3.record_video imports VecVideoRecorder from stable_baselines3.common.vec_env when it runs
    vec_env.VecVideoRecorder = VecGifRecorder if gif else mp4_recorder  # type: ignore[misc]
    try:
        runpy.run_module("rl_zoo3.record_video", run_name="__main__", alter_sys=True)
    finally:
        vec_env.VecVideoRecorder = mp4_recorder  # type: ignore[misc]


def enjoy() -> None:
    from sb3_course.zoo.play import enjoy as play

    register()
    checked(sys.argv[1:], recipe=False, play=True)
    play()


def push_to_hub() -> None:
    from sb3_course.zoo.hub import push_to_hub as push

    register()
    checked(sys.argv[1:], recipe=False)
    push()


def load_from_hub() -> None:
    from sb3_course.zoo.hub import load_from_hub as load

    register()
    checked(sys.argv[1:], recipe=False)
    load()


def report() -> None:
    from sb3_course.zoo.report import report as draw

    register()
    try:
        draw(sys.argv[1:])
    except FileNotFoundError as error:
        print(f"{sys.argv[0]}: error: {error}", file=sys.stderr)
        sys.exit(2)


def parity() -> None:
    from sb3_course.parity.cli import main as parity_main

    parity_main()


def verify() -> None:
    from sb3_course.verify import main as verify_main

    verify_main()


def bench() -> None:
    from sb3_course.benchmarks.speed import main as speed

    speed()


VERBS: dict[str, Callable[[], None]] = {
    "train": train,
    "enjoy": enjoy,
    "plot_train": _plot_script("plot_train"),
    "plot_from_file": _plot_script("plot_from_file"),
    "all_plots": _plot_script("all_plots"),
    "record_video": record_video,
    "push_to_hub": push_to_hub,
    "load_from_hub": load_from_hub,
    "report": report,
    "list": list_algos,
    "parity": parity,
    "verify": verify,
    "bench": bench,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(USAGE)
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    if sys.argv[1] == "--version":
        print(f"sb3-course {__version__}")
        sys.exit(0)
    verb = sys.argv.pop(1)
    if verb not in VERBS:
        print(f"sb3-course: unknown verb {verb!r}; expected one of {', '.join(VERBS)}", file=sys.stderr)
        sys.exit(2)
    sys.argv[0] = f"sb3-course {verb}"
    if verb in VERB_EXTRAS:
        require_extra(VERB_EXTRAS[verb], sys.argv[0])
    VERBS[verb]()


if __name__ == "__main__":
    main()

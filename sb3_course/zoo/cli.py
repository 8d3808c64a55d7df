"""The ``sb3-course`` command: rl-zoo3's scripts with the course algorithms registered."""

import argparse
import sys
from collections.abc import Callable

from sb3_course.zoo import COURSE_ALGOS, SB3_COUNTERPARTS, default_config, hyperparams_dir, register

USAGE = """usage: sb3-course VERB [rl-zoo3 flags]

verbs:
  train           rl-zoo3's train (reads hyperparams/<algo>.yml for course keys unless -conf is given)
  enjoy           rl-zoo3's enjoy
  plot_train      rl-zoo3's plot_train
  plot_from_file  rl-zoo3's plot_from_file
  all_plots       rl-zoo3's all_plots
  list            the course algorithms, their SB3 counterparts and the envs with recipes
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


def train() -> None:
    """rl-zoo3's ``train`` with the course algorithms registered and the course recipes as default config."""
    from rl_zoo3.train import train as zoo_train

    register()
    sys.argv = [sys.argv[0], *with_default_config(sys.argv[1:])]
    zoo_train()


def list_algos() -> None:
    """Print the course algorithms, their SB3 counterparts and the env ids their recipes cover."""
    import yaml

    print(f"{'key':<14}{'class':<12}{'SB3':<6}recipes ({hyperparams_dir()})")
    for key, algo in COURSE_ALGOS.items():
        with open(hyperparams_dir() / f"{key}.yml") as file:
            envs = ", ".join(name for name in yaml.safe_load(file) if name != "default")
        print(f"{key:<14}{algo.__name__:<12}{SB3_COUNTERPARTS[key]:<6}{envs}")


def _zoo_script(name: str) -> Callable[[], None]:
    def run() -> None:
        import rl_zoo3.cli

        register()
        sys.argv = [sys.argv[0], name, *sys.argv[1:]]
        rl_zoo3.cli.main()

    return run


VERBS: dict[str, Callable[[], None]] = {
    "train": train,
    "enjoy": _zoo_script("enjoy"),
    "plot_train": _zoo_script("plot_train"),
    "plot_from_file": _zoo_script("plot_from_file"),
    "all_plots": _zoo_script("all_plots"),
    "list": list_algos,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(USAGE)
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    verb = sys.argv.pop(1)
    if verb not in VERBS:
        print(f"sb3-course: unknown verb {verb!r}; expected one of {', '.join(VERBS)}", file=sys.stderr)
        sys.exit(2)
    sys.argv[0] = f"sb3-course {verb}"
    VERBS[verb]()


if __name__ == "__main__":
    main()

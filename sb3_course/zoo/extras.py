"""The optional parts of ``sb3-course``: which install extra each verb needs, checked before the verb runs.

``pip install sb3-course`` is what ``train``, ``enjoy``, the Python API and Optuna tuning need (SB3, sb3-contrib,
rl-zoo3, what rl-zoo3 imports, and pandas for the trials table of ``-optimize``); the parity suite, plots, reports,
tensorboard logs, W&B tracking and the Hub come with the extras of pyproject.toml. A verb whose extra is missing
exits with one line naming the ``pip install``.
"""

import importlib.util
import sys

# extra of pyproject.toml -> the modules its verbs import (keep in step with [project.optional-dependencies])
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "parity": ("rliable", "matplotlib", "scipy"),
    "plots": ("matplotlib", "seaborn", "scipy", "tensorboard"),
    "tensorboard": ("tensorboard",),
    "wandb": ("wandb", "tensorboard"),
    "hub": ("huggingface_hub", "huggingface_sb3"),
    "bench": ("sbx",),
}

# verb -> the extra it needs (verbs not listed need the base install only)
VERB_EXTRAS: dict[str, str] = {
    "parity": "parity",
    "verify": "plots",
    "report": "plots",
    "plot_train": "plots",
    "plot_from_file": "plots",
    "all_plots": "plots",
    "push_to_hub": "hub",
    "load_from_hub": "hub",
}


def importable(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (a module blocked in ``sys.modules`` is not)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_extra(extra: str) -> str | None:
    """What is missing of ``extra`` and the ``pip install`` that fixes it, or ``None`` when it is installed."""
    missing = [module for module in EXTRA_MODULES[extra] if not importable(module)]
    if not missing:
        return None
    return f'needs {", ".join(missing)}: pip install "sb3-course[{extra}]"'


def require_extra(extra: str, prog: str) -> None:
    """Exit with status 2 and one line (``prog: error: needs ...: pip install ...``) when ``extra`` is missing."""
    problem = missing_extra(extra)
    if problem is not None:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        sys.exit(2)


def train_extras(argv: list[str]) -> list[str]:
    """The extras a ``train`` command line needs: ``wandb`` for ``--track``, ``tensorboard`` for ``-tb``."""
    flags = {arg.split("=", 1)[0] for arg in argv}
    extras = []
    if "--track" in flags:
        extras.append("wandb")
    if {"-tb", "--tensorboard-log"} & flags:
        extras.append("tensorboard")
    return extras

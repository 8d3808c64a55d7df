"""
rl-zoo3's plot scripts (``plot_train``, ``all_plots``, ``plot_from_file``) under ``sb3-course``: each figure they
show is also written as a PNG, so that a machine without a display (matplotlib's Agg backend, where ``plt.show()``
shows nothing) gets the plots too.
"""

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from sb3_course.common.files import atomic_path


def figure_file(prefix: str, label: str) -> Path:
    """``<prefix>-<figure label>.png`` in the current folder, the label reduced to letters, digits, ``.``, ``_``, ``-``."""
    slug = re.sub(r"[^\w.-]+", "-", label).strip("-.") or "figure"
    return Path(f"{prefix}-{slug}.png")


@contextlib.contextmanager
def shown_figures_saved(prefix: str) -> Iterator[list[Path]]:
    """
    While the body runs, ``plt.show()`` first saves every open figure to :func:`figure_file` (its label, else its
    number) and prints the path, then shows them as before (on a display). Yields the list of paths written.
    """
    import matplotlib.pyplot as plt

    show = plt.show
    written: list[Path] = []

    def save_then_show(*args: object, **kwargs: object) -> None:
        for number in plt.get_fignums():
            figure = plt.figure(number)
            path = figure_file(prefix, str(figure.get_label() or number))
            with atomic_path(path) as tmp:
                figure.savefig(tmp, format="png", dpi=100)
            written.append(path)
            print(f"{prefix}: saved {path}")
        sys.stdout.flush()
        show(*args, **kwargs)

    plt.show = save_then_show  # type: ignore[assignment]
    try:
        yield written
    finally:
        plt.show = show  # type: ignore[assignment]

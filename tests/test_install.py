"""The lean install: train, enjoy, the Python API and Optuna tuning without the extras; gated verbs name their extra."""

import importlib.metadata
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from sb3_course.cli import main
from sb3_course.zoo.extras import EXTRA_MODULES, VERB_EXTRAS

tomllib = pytest.importorskip("tomllib")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# the libraries of the extras (distribution names) that the base install must not bring
EXTRA_ONLY = {"rliable", "matplotlib", "scipy", "seaborn", "tensorboard", "wandb", "ray", "sbx-rl", "jax"}
BLOCKED = sorted({module for modules in EXTRA_MODULES.values() for module in modules} - {"huggingface_hub", "huggingface_sb3"})

# The extras' modules marked missing: ``import`` raises ModuleNotFoundError and ``find_spec`` returns None, as for a
# package that is not installed
BLOCKER = textwrap.dedent(f"""
    import sys
    sys.modules.update(dict.fromkeys({BLOCKED!r}))
""")


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_base_install_has_no_extra_libraries():
    """The base requirements and everything they require in turn (installed metadata) hold none of the extras."""
    with open(PYPROJECT, "rb") as file:
        queue = [Requirement(line) for line in tomllib.load(file)["project"]["dependencies"]]
    seen: set[str] = set()
    while queue:
        requirement = queue.pop()
        name = normalised(requirement.name)
        if name in seen or (requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            queue += [Requirement(line) for line in importlib.metadata.requires(requirement.name) or []]
        except importlib.metadata.PackageNotFoundError:
            pass  # an optional platform package not installed here (the marker said so)
    assert {"stable-baselines3", "rl-zoo3", "optuna", "requests", "sb3-team-hf-integration"} <= seen
    assert not seen & EXTRA_ONLY, seen & EXTRA_ONLY


def run_lean(code: str, cwd: Path) -> subprocess.CompletedProcess:
    # at the end: nothing replaced the markers with a real import
    script = BLOCKER + textwrap.dedent(code) + f"\nassert all(sys.modules[name] is None for name in {BLOCKED!r})\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_train_enjoy_python_api_and_optuna_without_the_extras(tmp_path):
    result = run_lean(
        """
        from sb3_course import CourseDQN
        from sb3_course.cli import main

        CourseDQN("MlpPolicy", "CartPole-v1", learning_starts=50).learn(100)

        def verb(*argv):
            sys.argv = ["sb3-course", *argv]
            main()

        where = ["--algo", "course_dqn", "--env", "CartPole-v1", "-f", "logs"]
        verb("train", *where, "-n", "200", "--seed", "0", "-params", "learning_starts:100")
        verb("enjoy", *where, "--no-render", "-n", "20")
        verb("train", *where, "-n", "100", "-optimize", "--n-trials", "1", "--n-jobs", "1", "--sampler", "random",
             "--pruner", "none", "--eval-episodes", "1", "--n-evaluations", "1", "--no-optim-plots")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "logs" / "course_dqn" / "CartPole-v1_1" / "CartPole-v1.zip").is_file()
    # the trials table of -optimize (written through pandas): a header and one trial
    (trials,) = (tmp_path / "logs" / "course_dqn").glob("report_CartPole-v1_1-trials-100-*.csv")
    assert len(trials.read_text().splitlines()) == 2


# verb (with its arguments) -> the extra it needs and a module of that extra to remove
GATED = [
    (["parity"], "parity", "rliable"),
    (["verify"], "plots", "matplotlib"),
    (["report"], "plots", "tensorboard"),
    (["plot_train"], "plots", "seaborn"),
    (["plot_from_file"], "plots", "matplotlib"),
    (["all_plots"], "plots", "scipy"),
    (["push_to_hub"], "hub", "huggingface_sb3"),
    (["load_from_hub"], "hub", "huggingface_hub"),
    (["train", "--algo", "course_dqn", "--track"], "wandb", "wandb"),
    (["train", "--algo", "course_dqn", "-tb", "tb"], "tensorboard", "tensorboard"),
    (["record_video", "--algo", "course_dqn"], "video", "moviepy"),
]


@pytest.mark.parametrize(("argv", "extra", "module"), GATED, ids=[" ".join(argv) for argv, *_ in GATED])
def test_gated_verb_without_its_extra_exits_2_naming_the_install(argv, extra, module, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr(sys, "argv", ["sb3-course", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"sb3-course {argv[0]}") and f'pip install "sb3-course[{extra}]"' in line


def test_every_verb_extra_is_an_extra_of_pyproject():
    with open(PYPROJECT, "rb") as file:
        extras = tomllib.load(file)["project"]["optional-dependencies"]
    for extra in {*VERB_EXTRAS.values(), *EXTRA_MODULES}:
        assert extra in extras, extra
    assert set(EXTRA_MODULES) | {"video", "ray"} <= {name for name in extras["all"][0].split("[")[1].rstrip("]").split(",")}

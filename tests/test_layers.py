"""
The package's import layers: no module imports a higher layer or a sibling package of its own layer.

Every module under ``sb3_course`` is read with ``ast`` (imports at module level and inside functions, absolute and
relative); each imported ``sb3_course`` module is mapped to its unit in ``LAYERS``. A unit may import its own
modules and any unit of a lower layer; an import of a higher layer or of another unit of the same layer is a
violation, named with its file and line. A module in no unit is a violation too (place a new package in ``LAYERS``).

    python tests/test_layers.py [PACKAGE_DIR]   # list the violations of another checkout's package
"""

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sb3_course"

# Bottom up: (layer, unit, the modules of the unit: a dotted name covers its submodules)
LAYERS: list[tuple[int, str, tuple[str, ...]]] = [
    (0, "common", ("sb3_course.common",)),
    (0, "version", ("sb3_course.version",)),
    (1, "dqn", ("sb3_course.dqn",)),
    (1, "ddpg", ("sb3_course.ddpg",)),
    (1, "sac", ("sb3_course.sac",)),
    (1, "a3c", ("sb3_course.a3c",)),
    (1, "reinforce", ("sb3_course.reinforce",)),
    # the package's __init__ (the five classes) and the registry of facts per algorithm key
    (2, "package", ("sb3_course.__init__",)),
    (2, "registry", ("sb3_course.registry",)),
    # rl-zoo3 glue (registration, recipes, samplers, checks, Hub, video, report, what recipes decide about a run)
    # and the experiment runner (training subprocesses / Ray tasks, CPU slots, run store, interruption)
    (3, "zoo", ("sb3_course.zoo",)),
    (3, "experiments", ("sb3_course.experiments",)),
    # tooling
    (4, "parity", ("sb3_course.parity",)),
    (4, "benchmarks", ("sb3_course.benchmarks",)),
    (4, "verify", ("sb3_course.verify",)),
    # the sb3-course command and its `python -m sb3_course.train` entry point
    (5, "cli", ("sb3_course.cli", "sb3_course.train")),
]


def unit_of(module: str) -> tuple[int, str] | None:
    """The layer and unit of a dotted module name (``sb3_course`` itself is its ``__init__``)."""
    if module == "sb3_course":
        module = "sb3_course.__init__"
    for layer, unit, prefixes in LAYERS:
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return layer, unit
    return None


def module_name(path: Path, package: Path) -> str:
    """``sb3_course.zoo.checks`` for ``<package>/zoo/checks.py``; a package's ``__init__`` has the package's name."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(node: ast.AST, module: str, is_package: bool, package: Path) -> list[str]:
    """The ``sb3_course`` modules one import statement loads (``from X import y`` loads ``X.y`` when it is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == package.name]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        # relative: the containing package (a package's own name for its __init__), minus level - 1 parents
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    if target.split(".")[0] != package.name:
        return []
    folder = package.parent.joinpath(*target.split("."))
    submodules = [
        f"{target}.{alias.name}"
        for alias in node.names
        if (folder / f"{alias.name}.py").is_file() or (folder / alias.name / "__init__.py").is_file()
    ]
    return submodules or [target]


def violations(package: Path = PACKAGE) -> list[str]:
    """Every import of a higher layer or of a same-layer sibling unit, and every module outside ``LAYERS``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, package)
        where = unit_of(module)
        if where is None:
            found.append(f"{path}: module {module} is in no layer (add it to LAYERS)")
            continue
        layer, unit = where
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in imported_modules(node, module, path.name == "__init__.py", package):
                target_where = unit_of(target)
                if target_where is None:
                    found.append(f"{path}:{node.lineno}: {module} imports {target}, which is in no layer")
                elif target_where[0] > layer:
                    found.append(
                        f"{path}:{node.lineno}: {module} (layer {layer}, {unit}) imports {target} "
                        f"(layer {target_where[0]}, {target_where[1]}): a higher layer"
                    )
                elif target_where[0] == layer and target_where[1] != unit:
                    found.append(
                        f"{path}:{node.lineno}: {module} ({unit}) imports {target} ({target_where[1]}): "
                        f"a sibling of the same layer {layer}"
                    )
    return found


def test_no_module_imports_a_higher_layer_or_a_sibling():
    found = violations()
    assert not found, "\n".join(found)


def test_every_module_is_checked():
    modules = {module_name(path, PACKAGE) for path in PACKAGE.rglob("*.py")}
    assert {"sb3_course", "sb3_course.dqn.dqn", "sb3_course.cli", "sb3_course.experiments.runner"} <= modules


@pytest.mark.parametrize(
    "path, source, message",
    [
        ("zoo/bad.py", "from sb3_course.parity.stats import compare\n", "imports sb3_course.parity.stats (layer 4, parity)"),
        ("zoo/bad.py", "def f():\n    import sb3_course.cli\n", "imports sb3_course.cli (layer 5, cli): a higher layer"),
        ("parity/bad.py", "from sb3_course import benchmarks\n", "imports sb3_course.benchmarks (benchmarks): a sibling"),
        ("parity/bad.py", "from .. import cli\n", "imports sb3_course.cli (layer 5, cli): a higher layer"),
        ("parity/__init__.py", "from ..cli import main\n", "sb3_course.parity (layer 4, parity) imports sb3_course.cli"),
        (
            "zoo/bad.py",
            "from ..experiments.runner import Job\n",
            "imports sb3_course.experiments.runner (experiments): a sibling",
        ),
        ("dqn/bad.py", "from sb3_course.sac.sac import CourseSAC\n", "imports sb3_course.sac.sac (sac): a sibling"),
        ("common/bad.py", "import sb3_course\n", "imports sb3_course (layer 2, package): a higher layer"),
    ],
)
def test_an_import_upwards_or_sideways_is_named(tmp_path, path, source, message):
    """A copy of the package's layout with one offending import: at module level, in a function, relative."""
    package = tmp_path / "sb3_course"
    for name in ("__init__.py", "cli.py", "experiments/__init__.py", "experiments/runner.py", "parity/__init__.py",
                 "parity/stats.py", "benchmarks/__init__.py", "zoo/__init__.py", "dqn/__init__.py", "sac/__init__.py",
                 "sac/sac.py", "common/__init__.py"):  # fmt: skip
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text("")
    (package / path).write_text(source)
    (found,) = violations(package)
    assert message in found, found


def test_a_module_outside_the_layers_is_named(tmp_path):
    package = tmp_path / "sb3_course"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tools.py").write_text("")
    (found,) = violations(package)
    assert "module sb3_course.tools is in no layer" in found


if __name__ == "__main__":
    found = violations(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else PACKAGE)
    print("\n".join(found) or "no violations")
    sys.exit(1 if found else 0)

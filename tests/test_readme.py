"""
Every fenced code block of README.md runs here, as a newcomer copies it, so that no example rots.

- ``python`` blocks: saved as a file and run as a script (``python file.py``, so code outside
  ``if __name__ == "__main__":`` runs again in A3C's worker processes, as it would for the user), with every
  ``.learn(N)`` / ``.learn(total_timesteps=N)`` budget replaced by :data:`PY_BUDGET`.
- ``bash`` blocks: each command (``\\`` continuations joined, ``&&`` chains split, ``VAR=value`` prefixes set in the
  environment) runs in one working folder shared by all blocks, in README order (the tour's ``enjoy`` plays what
  its ``train`` saved), with the flags of :data:`SHRUNK_FLAGS` replaced and the budget of :data:`BUDGET_ADDED`
  appended to a training verb given none. A command that is not ``sb3-course ...`` must match a rule of
  :data:`SKIPPED` (installs, the test suite itself, commands needing a GPU, the network or a Ray cluster), each with
  its reason; a skip rule that matches nothing fails too.
- Any other block must be listed in :data:`NOT_CODE`. A block added to README.md that none of these rules handles
  fails :func:`test_every_block_is_handled`: nothing is skipped silently.

The parity block trains about 20 runs even with the budgets shrunk: it is marked ``slow``. The rest took about
11 minutes on a shared 2-core machine under a load average of 11 (about 25 sb3-course processes, each starting
Python, torch and rl-zoo3; the tour block alone 6 minutes).
"""

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TIMEOUT = 600  # seconds, per script or command


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence
    lang: str
    text: str

    @property
    def first(self) -> str:
        return self.text.splitlines()[0] if self.text else ""


def readme_blocks() -> list[Block]:
    """The fenced blocks of README.md."""
    blocks, lang, start, body = [], None, 0, []
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            if lang is None:
                lang, start, body = line[3:].strip(), number, []
            else:
                blocks.append(Block(start, lang, "\n".join(body)))
                lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"README.md:{start}: unclosed code fence"
    return blocks


BLOCKS = readme_blocks()

# A block that is no code (the start of its first line -> what it is)
NOT_CODE = {"sb3_course/     layers, bottom up;": "a drawing of the package layout"}

PY_BUDGET = 64  # steps: each learn() runs a few updates (CourseDQN starts learning at 32)
SETTING = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
LEARN = re.compile(r"\.learn\((total_timesteps=)?[\d_]+")

# flag -> the value it is shrunk to
SHRUNK_FLAGS = {
    "-n": "100",  # steps: of training, or played by enjoy / record_video
    "--n-timesteps": "100",
    "--eval-freq": "50",
    "--save-freq": "50",
    "--eval-episodes": "2",
    "--seeds": "1",
    "--repetitions": "1",
    "--n-trials": "2",
    "--trial-id": "1",  # of the 2 trials the shrunk -optimize command made
}
# verb -> flags appended with these values where the command does not give them (the recipe's budget, the pair's,
# 5 seeds otherwise)
BUDGET_ADDED = {
    "train": {"-n": "100"},
    "verify": {"-n": "100", "--evaluations": "2", "--eval-episodes": "2"},
    "parity": {"-n": "100", "--eval-freq": "50", "--seeds": "1", "--eval-episodes": "2"},
    "bench": {"--steps": "100", "--learning-starts": "50"},
}
# The commands not run (the start of the command -> why)
SKIPPED = {
    "python3 -m venv": "makes the virtual environment this test runs in",
    ". .venv/bin/activate": "enters that virtual environment",
    "pip install": "installs what this test runs with",
    "python -m pytest": "the test suite itself",
    "sb3-course bench --device cuda": "needs a CUDA GPU (python -m sb3_course.benchmarks.gpu_check runs it there)",
    "sb3-course push_to_hub": "needs a Hugging Face account, its token and the network",
    "TRUST_REMOTE_CODE=True sb3-course load_from_hub": "needs the network (tests/test_hub.py runs it against a local Hub)",
    "sb3-course enjoy --algo course_dqn --env CartPole-v1 -f hub_logs": "plays the model load_from_hub downloads",
    "sb3-course parity --backend ray --ray-address auto": "needs a running Ray cluster",
}
SLOW = {"sb3-course parity --out docs/parity": "about 20 training runs even with -n 100"}


def commands(block: Block) -> list[str]:
    """The commands of a shell block (as ``shlex.join`` writes them): continuations joined, comments dropped, ``&&``
    chains split."""
    found: list[str] = []
    for line in block.text.replace("\\\n", " ").splitlines():
        command: list[str] = []
        for word in [*shlex.split(line, comments=True), "&&"]:
            if word != "&&":
                command.append(word)
            elif command:
                found.append(shlex.join(command))
                command = []
    return found


def split_settings(command: str) -> tuple[dict[str, str], list[str]]:
    """The ``VAR=value`` prefixes of a command and the words after them."""
    words = shlex.split(command)
    count = next(i for i, word in enumerate(words) if not SETTING.match(word))
    return dict(word.split("=", 1) for word in words[:count]), words[count:]


def skip_reason(command: str) -> str | None:
    return next((reason for start, reason in SKIPPED.items() if command.startswith(start)), None)


def shrunk(words: list[str]) -> list[str]:
    """``sb3-course VERB ...`` with the budgets shrunk."""
    words = [SHRUNK_FLAGS[words[i - 1]] if i and words[i - 1] in SHRUNK_FLAGS else word for i, word in enumerate(words)]
    for flag, value in BUDGET_ADDED.get(words[1], {}).items():
        if flag not in words:
            words += [flag, value]
    return words


def handled(block: Block) -> str | None:
    """Why ``block`` cannot run here, or ``None`` when it can."""
    if block.lang == "python":
        return None
    if block.lang == "bash":
        for command in commands(block):
            if skip_reason(command) is None and split_settings(command)[1][0] != "sb3-course":
                return f"README.md:{block.line}: `{command}` is neither an sb3-course command nor in SKIPPED"
        return None
    if block.first.startswith(tuple(NOT_CODE)):
        return None
    return f"README.md:{block.line}: a ```{block.lang} block that is not in NOT_CODE"


def test_every_block_is_handled():
    problems = [problem for block in BLOCKS if (problem := handled(block))]
    assert problems == []
    every_command = [command for block in BLOCKS if block.lang == "bash" for command in commands(block)]
    unused = [start for start in SKIPPED if not any(command.startswith(start) for command in every_command)]
    assert unused == [], "skip rules that match no README command"
    assert [start for start in NOT_CODE if not any(block.first.startswith(start) for block in BLOCKS)] == [], "stale NOT_CODE"


def test_a3c_blocks_train_under_the_main_guard():
    """A3C's workers import the script again: every statement of a block that starts them, imports aside, is guarded."""
    import ast

    for block in (block for block in BLOCKS if block.lang == "python" and "A3C(" in block.text):
        for statement in ast.parse(block.text).body:
            guarded = isinstance(statement, ast.If) and ast.unparse(statement.test) == "__name__ == '__main__'"
            assert guarded or isinstance(statement, ast.Import | ast.ImportFrom), (
                f"README.md:{block.line}: `{ast.unparse(statement)[:60]}` runs again in every A3C worker"
            )


def environment() -> dict[str, str]:
    # no display: rl-zoo3's plots write PNGs, rendering is off screen
    return {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}


def check_ran(result: subprocess.CompletedProcess, what: str) -> None:
    assert result.returncode == 0, f"{what}: exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, f"{what}:\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readme")


def block_id(block: Block) -> str:
    return f"line {block.line}"


@pytest.mark.parametrize("block", [block for block in BLOCKS if block.lang == "python"], ids=block_id)
def test_python_block_runs(block, folder):
    source, budgets = LEARN.subn(lambda match: f".learn({match.group(1) or ''}{PY_BUDGET}", block.text)
    assert budgets == block.text.count(".learn("), "a learn() call whose budget the test cannot shrink"
    script = folder / f"readme_{block.line}.py"
    script.write_text(source)
    result = subprocess.run(
        [sys.executable, script.name], capture_output=True, text=True, cwd=folder, env=environment(), timeout=TIMEOUT
    )
    check_ran(result, f"README.md:{block.line}")


def shell_params() -> list:
    params = []
    for block in (block for block in BLOCKS if block.lang == "bash"):
        slow = [reason for start, reason in SLOW.items() if any(command.startswith(start) for command in commands(block))]
        params.append(pytest.param(block, id=block_id(block), marks=[pytest.mark.slow] if slow else []))
    return params


@pytest.mark.parametrize("block", shell_params())
def test_shell_block_runs(block, folder):
    ran = 0
    for command in commands(block):
        if skip_reason(command) is not None:
            continue
        settings, words = split_settings(command)
        words = shrunk(words)
        env = {**environment(), **settings}
        result = subprocess.run(
            [sys.executable, "-m", "sb3_course.cli", *words[1:]],
            capture_output=True, text=True, cwd=folder, env=env, timeout=TIMEOUT,
        )  # fmt: skip
        check_ran(result, f"README.md:{block.line}: {shlex.join(words)}")
        ran += 1
    assert ran or all(skip_reason(command) for command in commands(block))

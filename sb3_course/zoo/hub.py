"""
``sb3-course push_to_hub`` / ``load_from_hub``: rl-zoo3's own scripts with the course algorithms registered, a model
card that names the course algorithm and the ``sb3-course`` commands, and a replay video (GIF without moviepy).

rl-zoo3's scripts keep their work in their ``if __name__ == "__main__":`` block, which ``runpy`` would run in a fresh
namespace where the script's functions are defined anew; :func:`run_script` runs that block in the imported module's
namespace instead, so that the functions replaced here (the card, the replay) are the ones the script calls.
"""

import ast
import importlib
import inspect
import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from pprint import pformat
from types import ModuleType
from typing import Any

import yaml

from sb3_course.version import __version__
from sb3_course.zoo import SB3_COUNTERPARTS, default_config, load_recipes

# what rl-zoo3's ``train`` records in args.yml that a reproducing command line needs: args.yml key -> flag
TRAIN_FLAGS = {"seed": "--seed", "n_timesteps": "-n", "env_kwargs": "--env-kwargs", "hyperparams": "-params"}


def run_script(module: ModuleType) -> None:
    """Run the ``if __name__ == "__main__":`` block of ``module`` in ``module``'s namespace (line numbers kept)."""
    tree = ast.parse(inspect.getsource(module))
    main = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'")
    exec(compile(ast.Module(body=main.body, type_ignores=[]), str(module.__file__), "exec"), vars(module))


@contextmanager
def patched(module: ModuleType, **names: Any) -> Iterator[None]:
    """Replace attributes of ``module`` for the duration of the block."""
    previous = {name: getattr(module, name) for name in names}
    vars(module).update(names)
    try:
        yield
    finally:
        vars(module).update(previous)


def import_push_script() -> ModuleType:
    """
    ``rl_zoo3.push_to_hub``, which imports ``generate_metadata`` from huggingface_sb3: sb3-team-hf-integration 3.x
    (the release rl-zoo3 2.9 requires) names it ``_generate_metadata``, same signature, so the script fails to import.
    """
    hf_push = importlib.import_module("huggingface_sb3.push_to_hub")
    if not hasattr(hf_push, "generate_metadata"):
        hf_push.generate_metadata = hf_push._generate_metadata  # type: ignore[attr-defined]
    return importlib.import_module("rl_zoo3.push_to_hub")


def _flag_value(value: Any) -> str:
    # rl-zoo3's StoreDict evaluates each ``key:value`` as Python
    if isinstance(value, dict):
        return " ".join(shlex.quote(f"{key}:{item!r}") for key, item in value.items())
    return shlex.quote(str(value))


def train_command(algo: str, env_id: str, training: dict[str, Any]) -> str:
    """The ``sb3-course train`` line of the run that ``training`` (its args.yml) describes, with the course recipes."""
    words = [f"sb3-course train --algo {algo} --env {env_id}"]
    config = training.get("conf_file")
    if config and Path(config) != default_config(algo):
        words.append(f"-conf {shlex.quote(Path(config).name)}")
    words += [
        f"{flag} {_flag_value(training[key])}" for key, flag in TRAIN_FLAGS.items() if training.get(key) not in (None, {})
    ]
    return " ".join([*words, "-f logs/"])


def recipe_source(algo: str, env_id: str, training: dict[str, Any]) -> str:
    """Where the run's hyperparameters come from, in words."""
    config = training.get("conf_file")
    if config and Path(config) != default_config(algo):
        source = f"the recipe file `{Path(config).name}` (custom, not shipped with sb3-course)"
    else:
        block = env_id if env_id in load_recipes(algo) else "default"
        source = f"the `{block}` block of sb3-course's `hyperparams/{algo}.yml` (sb3-course {__version__})"
    if training.get("hyperparams"):
        source += f", overridden on the command line by `-params {_flag_value(training['hyperparams'])}`"
    return source


class CourseCard:
    """
    rl-zoo3's ``package_to_hub`` and ``generate_model_card`` for a course algorithm: the card names the course class,
    its SB3 counterpart, the recipe, the evaluation and the ``sb3-course`` commands (rl-zoo3's names
    ``python -m rl_zoo3.enjoy``, which cannot load a course model); the metadata adds the course tags.

    :param script: the imported ``rl_zoo3.push_to_hub``
    """

    def __init__(self, script: ModuleType) -> None:
        self.script = script
        self.zoo_package_to_hub = script.package_to_hub
        self.package: dict[str, Any] = {}

    def package_to_hub(self, *args: Any, **kwargs: Any) -> Any:
        """rl-zoo3's ``package_to_hub``, remembering its arguments for the card."""
        bound = inspect.signature(self.zoo_package_to_hub).bind(*args, **kwargs)
        bound.apply_defaults()
        self.package = dict(bound.arguments)
        return self.zoo_package_to_hub(*args, **kwargs)

    def generate_model_card(
        self,
        algo_name: str,
        algo_class_name: str,
        organization: str,
        env_id: str,
        mean_reward: float,
        std_reward: float,
        hyperparams: dict[str, Any],
        env_kwargs: dict[str, Any],
    ) -> tuple[str, dict[str, Any]]:
        """Same arguments and return as rl-zoo3's ``generate_model_card``: the README text and its metadata."""
        package = self.package
        with open(Path(package["log_path"]) / env_id / "args.yml") as file:
            training = yaml.load(file, Loader=yaml.UnsafeLoader)  # rl-zoo3 writes it; OrderedDicts need the unsafe loader
        repo_name = package["repo_id"].split("/")[1]
        counterpart_key = SB3_COUNTERPARTS[algo_name]
        counterpart = self.script.ALGOS[counterpart_key].__name__
        metadata = self.script.generate_metadata(algo_class_name, env_id, mean_reward, std_reward).to_dict()
        metadata["tags"] += ["sb3-course", algo_name, algo_class_name, counterpart]
        metadata["sb3_course"] = {
            "version": __version__,
            "algo": algo_name,
            "class": algo_class_name,
            "sb3_counterpart": counterpart,
            "sb3_counterpart_algo": counterpart_key,
        }
        where = f"--algo {algo_name} --env {env_id}"
        actions = "deterministic" if package["is_deterministic"] else "stochastic"
        video = next(
            (name for name in ("replay.mp4", "replay.gif") if (Path(package["local_repo_path"]) / repo_name / name).is_file()),
            None,
        )
        card = f"""
# **{algo_class_name}** agent playing **{env_id}**

A **{algo_class_name}** agent (`{algo_name}`) trained on **{env_id}** with
[sb3-course](https://pypi.org/project/sb3-course/): a deep-RL course's algorithm written as a
[Stable-Baselines3](https://github.com/DLR-RM/stable-baselines3) algorithm, its counterpart in SB3 being
**{counterpart}** (`{counterpart_key}`), trained through the [RL Zoo](https://github.com/DLR-RM/rl-baselines3-zoo).

## Evaluation

Mean return {mean_reward:.2f} +/- {std_reward:.2f} over {package["n_eval_episodes"]} episodes ({actions} actions),
measured when the model was pushed (`results.json`).
"""
        if video is not None:
            card += f"\n![replay]({video})\n" if video.endswith(".gif") else f"\nReplay: `{video}`.\n"
        card += f"""
## Usage (with sb3-course)

```bash
pip install sb3-course
# download the model into logs/ (it is a pickle: trust the repository before loading it) and watch it
TRUST_REMOTE_CODE=True sb3-course load_from_hub {where} -orga {organization} -name {repo_name} -f logs/
sb3-course enjoy {where} -f logs/
```

## Training (with sb3-course)

Recipe: {recipe_source(algo_name, env_id, training)}.

```bash
{train_command(algo_name, env_id, training)}
# upload the model with its card and replay video
sb3-course push_to_hub {where} -f logs/ -orga {organization}
```

## Hyperparameters

```python
{pformat(dict(hyperparams))}
```
"""
        # The training's env_kwargs: rl-zoo3's script adds render_mode to ``env_kwargs`` for the replay
        if training.get("env_kwargs"):
            card += f"\n## Environment arguments\n\n```python\n{pformat(training['env_kwargs'])}\n```\n"
        return card, metadata


@contextmanager
def hub_errors() -> Iterator[None]:
    """Turn the Hub's refusals (no token, no such repository or file, offline) into one line and exit status 2."""
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled
    from requests.exceptions import HTTPError

    try:
        yield
    except (HfHubHTTPError, EntryNotFoundError, LocalTokenNotFoundError, OfflineModeIsEnabled, HTTPError) as error:
        print(f"{sys.argv[0]}: error: {str(error).strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(2)


def push_to_hub() -> None:
    """rl-zoo3's ``push_to_hub`` script with the course card and replay."""
    from sb3_course.zoo.video import record_replay

    script = import_push_script()
    card = CourseCard(script)
    with (
        patched(
            script,
            package_to_hub=card.package_to_hub,
            generate_model_card=card.generate_model_card,
            _generate_replay=record_replay,
        ),
        hub_errors(),
    ):
        run_script(script)


def load_from_hub() -> None:
    """rl-zoo3's ``load_from_hub`` script; a model repository without ``vec_normalize.pkl`` loads as rl-zoo3 means."""
    from huggingface_hub.errors import EntryNotFoundError
    from huggingface_sb3.load_from_hub import strtobool
    from requests.exceptions import HTTPError

    script = importlib.import_module("rl_zoo3.load_from_hub")
    try:
        # huggingface_sb3's own test of the variable (it refuses to unpickle otherwise)
        trusted = bool(strtobool(os.environ.get("TRUST_REMOTE_CODE", "False")))
    except ValueError:
        trusted = False
    if not trusted and not {"-h", "--help"} & set(sys.argv):
        print(
            f"{sys.argv[0]}: error: a Hub model is a pickle that runs code when loaded;"
            " set TRUST_REMOTE_CODE=True to load one you trust",
            file=sys.stderr,
        )
        sys.exit(2)
    hf_load = script.load_from_hub

    def load(repo_id: str, filename: str) -> str:
        # rl-zoo3 skips a missing vec_normalize.pkl on requests' HTTPError; huggingface_hub >= 1 raises its own errors
        try:
            return hf_load(repo_id, filename)
        except EntryNotFoundError as error:
            raise HTTPError(str(error)) from error

    with patched(script, load_from_hub=load), hub_errors():
        run_script(script)

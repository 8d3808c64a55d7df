"""``sb3-course push_to_hub`` / ``load_from_hub``: everything up to the network, with the Hub's HTTP calls replaced."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from huggingface_hub import HfApi, scan_cache_dir
from huggingface_hub.repocard import metadata_load

from sb3_course.cli import main
from sb3_course.dqn import CourseDQN
from sb3_course.zoo import load_recipes

ORG = "sb3-course-test"
ENV_ID = "CartPole-v1"
REPO_NAME = f"course_dqn-{ENV_ID}"
PUSH = ["push_to_hub", "--algo", "course_dqn", "--env", ENV_ID, "-f", "logs", "-orga", ORG, "-n", "40", "--seed", "0"]


def sb3_course(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sb3_course.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300, env={**os.environ, **env},
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``logs/``: a tiny course_dqn run on CartPole-v1 in rl-zoo3's layout."""
    root = tmp_path_factory.mktemp("hub")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(sys, "argv", [
            "sb3-course", "train", "--algo", "course_dqn", "--env", ENV_ID, "-n", "300", "--seed", "0",
            "-f", str(root / "logs"), "--eval-freq", "150", "--eval-episodes", "2", "-params", "learning_starts:100",
        ])  # fmt: skip
        main()
    return root


class FakeHub:
    """HfApi's three network calls in rl-zoo3's ``package_to_hub``, recorded instead of sent."""

    def __init__(self, upload_copy: Path) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.upload_copy = upload_copy

    def create_repo(self, _api: HfApi, **kwargs: Any) -> str:
        self.calls.append(("create_repo", kwargs))
        return f"https://huggingface.co/{kwargs['repo_id']}"

    def snapshot_download(self, _api: HfApi, **kwargs: Any) -> str:
        # A new repository: nothing to download; the real call creates the local folder
        self.calls.append(("snapshot_download", kwargs))
        Path(kwargs["local_dir"]).mkdir(parents=True, exist_ok=True)
        return str(kwargs["local_dir"])

    def upload_folder(self, _api: HfApi, **kwargs: Any) -> str:
        self.calls.append(("upload_folder", kwargs))
        shutil.copytree(kwargs["folder_path"], self.upload_copy)
        return f"https://huggingface.co/{kwargs['repo_id']}/commit/0"


def push(root: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> FakeHub:
    """Run ``sb3-course push_to_hub`` from ``root`` with HfApi's network calls replaced."""
    hub = FakeHub(root / "uploaded")
    for name in ("create_repo", "snapshot_download", "upload_folder"):
        monkeypatch.setattr(HfApi, name, lambda api, _name=name, **kwargs: getattr(hub, _name)(api, **kwargs))
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "argv", ["sb3-course", *PUSH, *extra])
    main()
    return hub


@pytest.fixture(scope="module")
def pushed(trained: Path) -> tuple[Path, FakeHub]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        hub = push(trained, monkeypatch)
    return trained / "uploaded", hub


def test_push_to_hub_calls_and_files(pushed):
    folder, hub = pushed
    repo_id = f"{ORG}/{REPO_NAME}"
    assert [name for name, _ in hub.calls] == ["create_repo", "snapshot_download", "upload_folder"]
    assert hub.calls[0][1] == {"token": None, "repo_id": repo_id, "private": False, "exist_ok": True}
    upload = hub.calls[2][1]
    assert upload["repo_id"] == repo_id and upload["commit_message"] == "Initial commit"
    assert Path(upload["folder_path"]) == Path("hub") / REPO_NAME
    for name in (f"{REPO_NAME}.zip", "config.yml", "args.yml", "env_kwargs.yml", "train_eval_metrics.zip",
                 "results.json", "README.md", "replay.mp4", f"{REPO_NAME}/policy.pth"):  # fmt: skip
        assert (folder / name).is_file(), name
    assert (folder / "replay.mp4").stat().st_size > 1000
    model = CourseDQN.load(folder / f"{REPO_NAME}.zip")
    assert model.num_timesteps == 300


def test_model_card_names_the_course_algorithm_and_commands(pushed):
    folder, _ = pushed
    card = (folder / "README.md").read_text()
    results = json.loads((folder / "results.json").read_text())
    assert results["n_eval_episodes"] == 10 and results["is_deterministic"]
    score = f"{results['mean_reward']:.2f} +/- {results['std_reward']:.2f}"
    assert f"# **CourseDQN** agent playing **{ENV_ID}**" in card
    assert "**DQN** (`dqn`)" in card
    assert f"Mean return {score} over 10 episodes (deterministic actions)" in card
    assert "pip install sb3-course\n" in card
    assert f"sb3-course load_from_hub --algo course_dqn --env {ENV_ID} -orga {ORG} -name {REPO_NAME} -f logs/" in card
    assert f"sb3-course enjoy --algo course_dqn --env {ENV_ID} -f logs/" in card
    assert f"the `{ENV_ID}` block of sb3-course's `hyperparams/course_dqn.yml`" in card
    assert "overridden on the command line by `-params learning_starts:100`" in card
    assert f"sb3-course train --algo course_dqn --env {ENV_ID} --seed 0 -n 300 -params learning_starts:100 -f logs/" in card
    # the recipe's hyperparameters, as trained
    assert f"'learning_rate': {load_recipes('course_dqn')[ENV_ID]['learning_rate']!r}" in card
    assert "Environment arguments" not in card  # trained without env_kwargs (render_mode is the replay's)
    assert "rl_zoo3" not in card
    metadata = metadata_load(folder / "README.md")
    assert metadata is not None
    assert {"sb3-course", "course_dqn", "CourseDQN", "DQN", ENV_ID} <= set(metadata["tags"])
    assert metadata["sb3_course"]["class"] == "CourseDQN" and metadata["sb3_course"]["sb3_counterpart"] == "DQN"
    result = metadata["model-index"][0]
    assert result["name"] == "CourseDQN"
    assert result["results"][0]["metrics"][0]["value"] == score


def test_push_to_hub_writes_a_gif_without_moviepy(trained, tmp_path, monkeypatch):
    shutil.copytree(trained / "logs", tmp_path / "logs")
    monkeypatch.setitem(sys.modules, "moviepy", None)
    push(tmp_path, monkeypatch)
    folder = tmp_path / "uploaded"
    assert not (folder / "replay.mp4").exists()
    with open(folder / "replay.gif", "rb") as file:
        assert file.read(6) == b"GIF89a"
    assert "![replay](replay.gif)" in (folder / "README.md").read_text()


def fill_hub_cache(hf_home: Path, repo_id: str, folder: Path) -> None:
    """Put ``folder`` into a Hugging Face cache as the ``main`` revision of ``repo_id`` (blobs, snapshot links, ref)."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    revision = hashlib.sha1(repo_id.encode()).hexdigest()
    for path in sorted(path for path in folder.rglob("*") if path.is_file()):
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, blob)
        link = repo / "snapshots" / revision / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)


def test_load_from_hub_offline_then_enjoy(pushed, tmp_path):
    folder, _ = pushed
    fill_hub_cache(tmp_path / "hf", f"{ORG}/{REPO_NAME}", folder)
    (cached,) = scan_cache_dir(tmp_path / "hf" / "hub").repos
    assert cached.repo_id == f"{ORG}/{REPO_NAME}" and set(cached.refs) == {"main"}
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "TRUST_REMOTE_CODE": "True"}
    where = ["--algo", "course_dqn", "--env", ENV_ID, "-f", "fresh"]
    loaded = sb3_course("load_from_hub", *where, "-orga", ORG, cwd=tmp_path, env=offline)
    assert loaded.returncode == 0, loaded.stderr
    run = tmp_path / "fresh" / "course_dqn" / f"{ENV_ID}_1"
    for name in (f"{ENV_ID}.zip", f"{ENV_ID}/config.yml", f"{ENV_ID}/args.yml", "evaluations.npz", "0.monitor.csv"):
        assert (run / name).is_file(), name
    original, copy = CourseDQN.load(folder / f"{REPO_NAME}.zip"), CourseDQN.load(run / f"{ENV_ID}.zip")
    for a, b in zip(original.policy.parameters(), copy.policy.parameters(), strict=True):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    enjoyed = sb3_course("enjoy", *where, "--no-render", "-n", "50", cwd=tmp_path, env=offline)
    assert enjoyed.returncode == 0, enjoyed.stderr
    assert f"Loading fresh/course_dqn/{ENV_ID}_1/{ENV_ID}.zip" in enjoyed.stdout


def test_load_from_hub_refusals(tmp_path):
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    args = ["load_from_hub", "--algo", "course_dqn", "--env", ENV_ID, "-f", "fresh", "-orga", ORG]
    untrusted = sb3_course(*args, cwd=tmp_path, env={**offline, "TRUST_REMOTE_CODE": "False"})
    assert untrusted.returncode == 2 and "set TRUST_REMOTE_CODE=True" in untrusted.stderr
    absent = sb3_course(*args, cwd=tmp_path, env={**offline, "TRUST_REMOTE_CODE": "True"})
    assert absent.returncode == 2
    assert absent.stderr.strip().splitlines()[-1].startswith("sb3-course load_from_hub: error: ")
    assert "Traceback" not in absent.stderr

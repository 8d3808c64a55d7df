from collections.abc import Callable

import pytest
import torch as th
from stable_baselines3.common import base_class
from stable_baselines3.common.callbacks import ProgressBarCallback


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny networks run fastest on one thread, and CI's two cores are shared by the A3C worker processes."""
    previous = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(previous)


@pytest.fixture
def refused(capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """
    ``refused(command, prefix, message)``: call ``command()``, a command-line entry point given bad input, and check
    that it exits with status 2 and one line on stderr that starts with ``prefix`` and contains ``message``.
    Returns that line.
    """

    def run(command: Callable[[], object], prefix: str, message: str) -> str:
        with pytest.raises(SystemExit) as exited:
            command()
        assert exited.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith(prefix) and message in err, err
        return err

    return run


@pytest.fixture
def progress_bars(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """``(total, count)`` of each progress bar that ``learn(progress_bar=True)`` closes during the test."""
    bars: list[tuple[int, int]] = []

    class RecordingBar(ProgressBarCallback):
        def _on_training_end(self) -> None:
            bars.append((self.pbar.total, self.pbar.n))
            super()._on_training_end()

    monkeypatch.setattr(base_class, "ProgressBarCallback", RecordingBar)
    return bars

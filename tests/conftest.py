from collections.abc import Callable

import pytest
import torch as th


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

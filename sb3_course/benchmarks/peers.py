"""
The other libraries ``sb3-course bench --peers`` measures beside SB3: SBX (sbx-rl, SB3's algorithms in JAX, the
whole gradient step under ``jax.jit``), an optional install (``pip install "sb3-course[bench]"``).
"""

from typing import Any

from sb3_course.zoo.extras import require_extra

PEERS = ("sbx",)
PEER_LABELS = {"sbx": "SBX"}
# One XLA thread for the SBX side, as the course and SB3 sides get one torch thread; JAX keeps helper threads
# anyway, so the bench counts the CPU time of the whole process beside the wall time.
PEER_ENVIRONMENT = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "JAX_PLATFORMS": "cpu",
}


def require_peers(peers: list[str], prog: str) -> None:
    """Exit with status 2 and one line naming the ``pip install`` when a peer's library is missing."""
    if peers:
        require_extra("bench", f"{prog} --peers {' '.join(peers)}")


def peer_class(algo: str) -> Any:
    """The class of ``sbx_<sb3 key>`` (``sbx_sac`` -> ``sbx.SAC``), imported only when a run needs it."""
    import sbx

    return getattr(sbx, algo.removeprefix("sbx_").upper())

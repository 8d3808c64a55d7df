"""
The environments of A3C's workers. Every worker steps its own copy, built inside the worker process by a factory
that the main process sends with cloudpickle. The factory is made here from the env A3C was given:

- an env factory (a callable returning a ``gym.Env``) is used as it is;
- otherwise, from the first environment of the ``VecEnv`` A3C wrapped it in: rebuilt from its ``EnvSpec`` when the
  spec says how (``gym.make`` of the spec, a ``Monitor``, the wrappers recorded in the spec), else a copy of the
  instance itself (pickled here, unpickled in each worker), as for an env class that has no registered id.

Entry points are loaded in the main process, so a worker needs no registration of its own (an id registered under
``if __name__ == "__main__":``, a class of the main script). SB3's ``VecTransposeImage``, which ``BaseAlgorithm``
adds for channel-last images, becomes the gym wrapper :class:`TransposeImage` in the workers.
"""

import dataclasses
from collections.abc import Callable
from functools import partial

import cloudpickle
import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec, WrapperSpec, load_env_creator
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, VecTransposeImage

FACTORY_HINT = "pass an env factory instead: a module-level function (or a lambda) that builds and returns a new env"


class TransposeImage(gym.ObservationWrapper):
    """
    HxWxC images to CxHxW in a worker's env, as SB3's ``VecTransposeImage`` does for the env A3C was given.

    :param env: the env whose image observations (or image entries of a ``Dict``) are channel-last
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        self.image_keys: list[str] | None = None
        if isinstance(space, spaces.Dict):
            self.image_keys = [key for key, subspace in space.spaces.items() if is_image_space(subspace)]
            self.observation_space = spaces.Dict(
                {
                    key: VecTransposeImage.transpose_space(subspace, key) if key in self.image_keys else subspace  # type: ignore[arg-type]
                    for key, subspace in space.spaces.items()
                }
            )
        else:
            self.observation_space = VecTransposeImage.transpose_space(space)  # type: ignore[arg-type]

    def observation(self, observation: np.ndarray | dict) -> np.ndarray | dict:
        if self.image_keys is None:
            return VecTransposeImage.transpose_image(observation)  # type: ignore[arg-type]
        assert isinstance(observation, dict)
        return {
            key: VecTransposeImage.transpose_image(value) if key in self.image_keys else value
            for key, value in observation.items()
        }


class PickledEnv:
    """
    A factory of copies of one env instance: pickled (cloudpickle) once in the main process, unpickled in each worker.
    A ``Monitor`` inside is copied without its results file (the main process writes the workers' episodes there).

    :param env: the env to copy
    """

    def __init__(self, env: gym.Env) -> None:
        monitors = []
        inner: gym.Env | None = env
        while inner is not None:
            if isinstance(inner, Monitor) and inner.results_writer is not None:
                monitors.append((inner, inner.results_writer))
                inner.results_writer = None
            inner = getattr(inner, "env", None)
        try:
            self.payload = cloudpickle.dumps(env)
        finally:
            for monitor, writer in monitors:
                monitor.results_writer = writer

    def __call__(self) -> gym.Env:
        return cloudpickle.loads(self.payload)


def _make_from_spec(spec: EnvSpec, wrappers: tuple[WrapperSpec, ...]) -> gym.Env:
    # Monitor inside the extra wrappers: the logged returns stay the environment's own (as make_vec_env).
    env: gym.Env = Monitor(gym.make(spec))
    for wrapper in wrappers:
        env = load_env_creator(wrapper.entry_point)(env=env, **(wrapper.kwargs or {}))  # type: ignore[assignment]
    return env


def _transposed(env_fn: Callable[[], gym.Env]) -> gym.Env:
    return TransposeImage(env_fn())


def factory_from_spec(spec: EnvSpec) -> Callable[[], gym.Env] | None:
    """
    A factory rebuilding the env of ``spec`` (``None`` when a wrapper in it does not inherit
    ``gymnasium.utils.RecordConstructorArgs``, so that its arguments are unknown). The entry point is loaded here.
    """
    wrappers = tuple(wrapper for wrapper in spec.additional_wrappers if wrapper.name != Monitor.__name__)
    if any(wrapper.kwargs is None for wrapper in wrappers):
        return None
    entry_point = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    resolved = dataclasses.replace(spec, entry_point=entry_point, additional_wrappers=())  # type: ignore[arg-type]
    return partial(_make_from_spec, resolved, wrappers)


def _copy_factory(vec_env: VecEnv) -> Callable[[], gym.Env]:
    if isinstance(vec_env, VecEnvWrapper):
        raise ValueError(
            f"A3C workers step plain gym environments and cannot copy {type(vec_env).__name__}; pass an env id or "
            "an env factory, with gym wrappers for what it did (e.g. gymnasium.wrappers.FrameStackObservation, "
            "NormalizeObservation; normalize: false in rl-zoo3)"
        )
    spec = vec_env.get_attr("spec", indices=[0])[0]
    factory = None if spec is None else factory_from_spec(spec)
    if factory is not None:
        return factory
    if not isinstance(vec_env, DummyVecEnv):
        raise ValueError(
            f"A3C cannot copy the envs of {type(vec_env).__name__} for its workers (no EnvSpec with recorded "
            f"wrappers, and they live in other processes); {FACTORY_HINT}"
        )
    try:
        return PickledEnv(vec_env.envs[0])
    except Exception as error:
        raise ValueError(
            f"A3C's workers need copies of the env, and {type(vec_env.envs[0]).__name__} can neither be rebuilt "
            f"from an EnvSpec nor pickled ({type(error).__name__}: {error}); {FACTORY_HINT}"
        ) from error


def check_picklable(env_fn: Callable[[], gym.Env]) -> None:
    """Raise a ``ValueError`` saying what to do when the factory cannot be sent to the worker processes."""
    try:
        cloudpickle.dumps(env_fn)
    except Exception as error:
        raise ValueError(
            f"A3C sends the env factory to its worker processes with cloudpickle, and {env_fn!r} cannot be pickled "
            f"({type(error).__name__}: {error}); build the env inside the factory instead of capturing an object "
            "that holds a lock, file, socket or process"
        ) from error


def worker_env_factory(vec_env: VecEnv, env_fn: Callable[[], gym.Env] | None = None) -> Callable[[], gym.Env]:
    """
    The picklable factory of the workers' envs.

    :param vec_env: the env A3C was given, as ``BaseAlgorithm`` wrapped it
    :param env_fn: the env factory given by the user, if any (else a copy of ``vec_env``'s first env)
    """
    transpose = isinstance(vec_env, VecTransposeImage) and not vec_env.skip
    if isinstance(vec_env, VecTransposeImage):
        vec_env = vec_env.venv
    if env_fn is None:
        env_fn = _copy_factory(vec_env)
    check_picklable(env_fn)
    return partial(_transposed, env_fn) if transpose else env_fn

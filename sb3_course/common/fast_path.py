"""
The per-step fast path shared by CourseDQN, CourseDDPG and CourseSAC: the same computation as SB3's training loop
with less overhead per environment step (see ``docs/benchmarks.md`` for the profile it answers).

- :class:`FastOffPolicyMixin` picks Adam's fused kernel (equal to SB3's single-tensor Adam up to float rounding);
- :func:`frozen` keeps a critic's weight gradients out of an actor loss and :func:`optimizer_step` skips an
  infinite gradient clip and steps a fused Adam through :func:`fused_adam_step`.

Private PyTorch names sit behind one function with the public call as fallback: :func:`fused_adam_step`
(``optimizer.step()``). What each piece is worth:
``python -m sb3_course.benchmarks.fast_path_worth``.
"""

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch as th
from torch.optim import optimizer as torch_optimizer

# Adam options that fused_adam_step leaves to Adam.step
_ADAM_FLAGS = ("amsgrad", "capturable", "differentiable", "decoupled_weight_decay")

# Adam variants with a fused (one kernel for all parameters) implementation, and the devices it runs on here
FUSED_OPTIMIZERS = (th.optim.Adam, th.optim.AdamW)
FUSED_DEVICES = ("cpu", "cuda")


def with_fused_adam(policy_kwargs: dict[str, Any], device: th.device) -> dict[str, Any]:
    """
    ``policy_kwargs`` with ``optimizer_kwargs["fused"] = True`` when the optimizer is Adam (SB3's default) and the
    caller chose no implementation (``fused`` / ``foreach``). SB3 leaves PyTorch's default, which on CPU is the
    single-tensor loop: a dozen small operations per parameter tensor and step. The fused kernel computes the same
    update in one call per step; it orders some floating-point operations differently, so parameters agree with
    the single-tensor ones to float32 rounding (a few ulps: at most 6e-8 apart after 100 steps in the tests), not
    bit for bit.
    ``optimizer_kwargs=dict(fused=False)`` keeps SB3's implementation.

    :param policy_kwargs: the algorithm's ``policy_kwargs``
    :param device: the device of the policy
    :return: a new dict (the argument is not modified)
    """
    policy_kwargs = dict(policy_kwargs)
    optimizer_kwargs = dict(policy_kwargs.get("optimizer_kwargs") or {})
    optimizer_class = policy_kwargs.get("optimizer_class", th.optim.Adam)
    chosen = {"fused", "foreach"} & optimizer_kwargs.keys()
    if optimizer_class in FUSED_OPTIMIZERS and not chosen and th.device(device).type in FUSED_DEVICES:
        optimizer_kwargs["fused"] = True
        policy_kwargs["optimizer_kwargs"] = optimizer_kwargs
    return policy_kwargs


class FastOffPolicyMixin:
    """
    Put before the SB3 algorithm class: its ``_setup_model`` selects the fused Adam (:func:`with_fused_adam`) and,
    at ``verbose >= 1``, says so where it does not apply (another optimizer, another device).
    """

    policy_kwargs: dict[str, Any]
    device: th.device
    verbose: int

    def _setup_model(self) -> None:
        chosen = {"fused", "foreach"} & (self.policy_kwargs.get("optimizer_kwargs") or {}).keys()
        self.policy_kwargs = with_fused_adam(self.policy_kwargs, self.device)
        super()._setup_model()  # type: ignore[misc]
        if self.verbose >= 1 and not chosen and not (self.policy_kwargs.get("optimizer_kwargs") or {}).get("fused"):
            optimizer_class = self.policy_kwargs.get("optimizer_class", th.optim.Adam)
            print(
                f"{type(self).__name__}: the fast path's fused Adam does not cover {optimizer_class.__name__} on "
                f"{th.device(self.device).type}: the optimizers take their own step() (SB3's updates, more time per step)"
            )

    def _keep_parameter_lists(self, **modules: th.nn.Module) -> None:
        """
        Keep the parameter list of each module in ``self.parameter_lists`` (called from ``_create_aliases``, so the
        lists follow the policy as the aliases do). ``module.parameters()`` walks the module tree in Python at every
        call; SB3 keeps its batch-norm statistics lists the same way.
        """
        self.parameter_lists = {name: list(module.parameters()) for name, module in modules.items()}

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "parameter_lists"]  # type: ignore[misc]


@contextmanager
def frozen(parameters: list[th.nn.Parameter]) -> Iterator[None]:
    """
    Build the body's graph without ``parameters``: an actor loss that goes through the critic needs the gradient
    with respect to the action, not the critic's weight gradients, which SB3 computes and then throws away
    (the critic optimizer's ``zero_grad`` comes first in the next step). The actor's gradients are the same.

    :param parameters: the parameters to leave out (``requires_grad`` is restored on exit)
    """
    flags = [param.requires_grad for param in parameters]
    for param in parameters:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param, flag in zip(parameters, flags, strict=True):
            param.requires_grad_(flag)


def unshared_parameters(module: th.nn.Module, other: th.nn.Module) -> list[th.nn.Parameter]:
    """The parameters of ``module`` that ``other`` does not hold too (a shared features extractor)."""
    shared = {id(param) for param in other.parameters()}
    return [param for param in module.parameters() if id(param) not in shared]


# The private PyTorch names fused_adam_step calls or reads: the step count update and the kernel that Adam.step
# ends in, and the registries of the global optimizer step hooks
PRIVATE_ADAM_NAMES = [
    (th, "_foreach_add_"), (th, "_fused_adam_"),
    (torch_optimizer, "_global_optimizer_pre_hooks"), (torch_optimizer, "_global_optimizer_post_hooks"),
]  # fmt: skip


def private_adam_api() -> tuple[Any, ...] | None:
    """
    The objects ``PRIVATE_ADAM_NAMES`` name, or ``None`` where this torch lacks one of them: then every step goes
    through the public ``optimizer.step()``. Looked up once, at import (``FUSED_ADAM_API``).
    """
    found = tuple(getattr(owner, name, None) for owner, name in PRIVATE_ADAM_NAMES)
    return None if any(value is None for value in found) else found


FUSED_ADAM_API = private_adam_api()


def fused_adam_step(optimizer: th.optim.Optimizer) -> bool:
    """
    ``optimizer.step()`` for a fused ``Adam`` whose state exists (after its first step): the calls that
    ``Adam.step`` ends in (``_foreach_add_`` on the step counts, then ``_fused_adam_``) on the same tensors, so the
    same update bit for bit, without ``step``'s per-call Python work (hooks, profiler scope, ``_init_group``'s
    checks per parameter, regrouping by device).

    These are private PyTorch APIs: where this torch lacks one (:func:`private_adam_api`) or the kernel refuses
    its arguments (a ``TypeError``: its signature changed; the step counts are put back and the API is not tried
    again), it returns ``False`` and the caller takes the public ``optimizer.step()``, the same update.

    :param optimizer: the optimizer
    :return: whether it took the step; ``False`` (nothing done) for anything else: another optimizer or Adam
        variant (AMSGrad, capturable, differentiable, decoupled weight decay, tensor learning rate), a first step,
        step hooks, a learning-rate scheduler (it wraps ``step``), parameters on several devices or dtypes
    """
    global FUSED_ADAM_API
    if FUSED_ADAM_API is None:
        return False
    foreach_add, fused_adam, global_pre_hooks, global_post_hooks = FUSED_ADAM_API
    if (
        type(optimizer) is not th.optim.Adam
        or "step" in optimizer.__dict__
        or getattr(optimizer, "_optimizer_step_pre_hooks", True)
        or getattr(optimizer, "_optimizer_step_post_hooks", True)
        or global_pre_hooks
        or global_post_hooks
    ):
        return False
    work = []
    for group in optimizer.param_groups:
        if not group["fused"] or any(group.get(flag, False) for flag in _ADAM_FLAGS) or isinstance(group["lr"], th.Tensor):
            return False
        params = [param for param in group["params"] if param.grad is not None]
        states = [optimizer.state.get(param) or {} for param in params]  # {}: no state yet, Adam.step creates it
        if not all(states) or len({(param.device, param.dtype) for param in params}) > 1:
            return False
        work.append((group, params, states))
    for index, (group, params, states) in enumerate(work):
        if not params:
            continue
        steps = [state["step"] for state in states]
        foreach_add(steps, 1)
        beta1, beta2 = group["betas"]
        try:
            fused_adam(
                params, [param.grad for param in params], [state["exp_avg"] for state in states],
                [state["exp_avg_sq"] for state in states], [], steps, amsgrad=False, lr=group["lr"], beta1=beta1,
                beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
            )  # fmt: skip
        except TypeError:
            if index > 0:  # a signature does not change between two calls
                raise
            foreach_add(steps, -1)
            FUSED_ADAM_API = None
            return False
    return True


def optimizer_step(
    optimizer: th.optim.Optimizer, loss: th.Tensor, params: Iterable[th.Tensor] = (), max_grad_norm: float = math.inf
) -> None:
    """
    ``zero_grad``, ``backward``, gradient clipping at ``max_grad_norm`` and ``step``. An infinite norm skips the
    clipping: SB3 computes the norm and multiplies every gradient by 1.0, which changes nothing unless a gradient
    is not finite (then the update is not finite either way). The gradients are reset as ``zero_grad()`` does by
    default (``set_to_none``), without its profiler and compiler wrappers; a fused Adam steps
    through :func:`fused_adam_step`.

    :param optimizer: the optimizer of the parameters ``loss`` depends on
    :param loss: the loss to minimise
    :param params: the parameters whose gradient norm is clipped
    :param max_grad_norm: maximum gradient norm
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = None
    loss.backward()
    if max_grad_norm < math.inf:
        th.nn.utils.clip_grad_norm_(params, max_grad_norm)
    if not fused_adam_step(optimizer):
        optimizer.step()

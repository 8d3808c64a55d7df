"""
The per-step fast path shared by CourseDQN, CourseDDPG and CourseSAC: the same computation as SB3's training loop
with less overhead per environment step (see ``docs/benchmarks.md`` for the profile it answers).

- :class:`FastOffPolicyMixin` picks Adam's fused kernel (equal to SB3's single-tensor Adam up to float rounding)
  and a replay buffer that hands out its samples without copying them again;
- :class:`FastPolicyMixin` (policies) takes a short path through ``predict`` for a VecEnv batch of flat
  observations and switches training / evaluation mode without nn.Module.train's Python recursion;
- :func:`soft_update` is SB3's ``polyak_update`` in two multi-tensor calls, :func:`frozen` keeps a critic's
  weight gradients out of an actor loss, :func:`optimizer_step` skips an infinite gradient clip and
  :func:`mean_of` reads a list of losses with one device synchronisation;
- :func:`fuse_relu_mlps` runs a ReLU MLP as one autograd node (:class:`ReluMLP`) and gives first layers on
  low-dimensional inputs cheaper weight- and input-gradient products (:class:`NarrowInputLinear`).
"""

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.utils import obs_as_tensor
from torch.optim import optimizer as torch_optimizer

ModuleT = TypeVar("ModuleT", bound=th.nn.Module)

# Adam options that fused_adam_step leaves to Adam.step, and the global optimizer step hooks it checks for
_ADAM_FLAGS = ("amsgrad", "capturable", "differentiable", "decoupled_weight_decay")
_GLOBAL_OPTIMIZER_HOOKS = (torch_optimizer._global_optimizer_pre_hooks, torch_optimizer._global_optimizer_post_hooks)

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


class ZeroCopyReplayBuffer(ReplayBuffer):
    """
    SB3's ``ReplayBuffer`` whose samples become tensors without a copy.

    ``ReplayBuffer._get_samples`` builds every field of a batch by fancy indexing or arithmetic, so each array is
    new and owned by nobody else; SB3's ``to_torch`` copies it once more (``th.tensor``). Here the tensor shares
    the array's memory (``th.as_tensor``; on a GPU the transfer is the only copy). Same values, same random draws.
    """

    def to_torch(self, array: np.ndarray, copy: bool = True) -> th.Tensor:
        return th.as_tensor(array, device=self.device)


class FastOffPolicyMixin:
    """
    Put before the SB3 algorithm class: its ``_setup_model`` selects the fused Adam (:func:`with_fused_adam`) and,
    where SB3 would build its plain ``ReplayBuffer`` (no ``replay_buffer_class``, ``n_steps=1``, no ``Dict``
    observations), the :class:`ZeroCopyReplayBuffer`.
    """

    replay_buffer_class: type[ReplayBuffer] | None
    n_steps: int
    observation_space: spaces.Space
    policy_kwargs: dict[str, Any]
    device: th.device

    def _setup_model(self) -> None:
        if self.replay_buffer_class is None and self.n_steps == 1 and not isinstance(self.observation_space, spaces.Dict):
            self.replay_buffer_class = ZeroCopyReplayBuffer
        self.policy_kwargs = with_fused_adam(self.policy_kwargs, self.device)
        super()._setup_model()  # type: ignore[misc]

    def _keep_parameter_lists(self, **modules: th.nn.Module) -> None:
        """
        Keep the parameter list of each module in ``self.parameter_lists`` (called from ``_create_aliases``, so the
        lists follow the policy as the aliases do). ``module.parameters()`` walks the module tree in Python at every
        call, which SB3 does for each soft update; SB3 keeps its batch-norm statistics lists the same way.
        """
        self.parameter_lists = {name: list(module.parameters()) for name, module in modules.items()}

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "parameter_lists"]  # type: ignore[misc]


def set_module_mode(module: th.nn.Module, mode: bool) -> None:
    """
    ``module.train(mode)``: the ``training`` flag of the module and every submodule, without ``train``'s recursion
    through Python generators and ``nn.Module.__setattr__`` (SB3 switches modes twice per environment step). A
    submodule that defines its own ``train`` gets that method called.

    :param module: the root module
    :param mode: ``True`` for training mode, ``False`` for evaluation mode
    """
    stack = [module]
    while stack:
        current = stack.pop()
        if type(current).train is not th.nn.Module.train:
            current.train(mode)
            continue
        current.__dict__["training"] = mode  # what nn.Module.__setattr__ does for a plain attribute
        stack.extend(child for child in current._modules.values() if child is not None)


class FastPolicyMixin:
    """
    Put before the SB3 policy class.

    ``set_training_mode`` switches the modules named in ``trained_modules`` (those SB3's policy switches: the
    targets stay in evaluation mode) with :func:`set_module_mode`.

    ``predict`` for a batch of flat (non-image) ``Box`` observations, as a VecEnv gives them every training step,
    goes straight to ``_predict``. SB3's general path copies the batch, checks its shape against every kind of space
    and switches the policy to evaluation mode again, although the rollout already did (here: only when
    ``self.training`` says the policy is in training mode). Same actions; any other input (one observation,
    images, dicts, recurrent state) takes SB3's path.
    """

    trained_modules: ClassVar[tuple[str, ...]] = ()

    def set_training_mode(self, mode: bool) -> None:
        if not self.trained_modules:
            super().set_training_mode(mode)  # type: ignore[misc]
            return
        for name in self.trained_modules:
            set_module_mode(getattr(self, name), mode)
        self.training = mode

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        space = self.observation_space  # type: ignore[attr-defined]
        if (
            state is not None
            or not isinstance(observation, np.ndarray)
            or not isinstance(space, spaces.Box)
            or observation.shape[1:] != space.shape
            or is_image_space(space)
        ):
            return super().predict(observation, state, episode_start, deterministic)  # type: ignore[misc]
        if self.training:  # type: ignore[attr-defined]
            self.set_training_mode(False)  # type: ignore[attr-defined]
        with th.no_grad():
            actions = self._predict(obs_as_tensor(observation, self.device), deterministic=deterministic)  # type: ignore[attr-defined]
        action_space = self.action_space  # type: ignore[attr-defined]
        # As BasePolicy.predict: back to the env's bounds (squashing policies) or clipped to them
        actions = actions.cpu().numpy().reshape((-1, *action_space.shape))
        if isinstance(action_space, spaces.Box):
            if self.squash_output:  # type: ignore[attr-defined]
                actions = self.unscale_action(actions)  # type: ignore[attr-defined]
            else:
                actions = np.clip(actions, action_space.low, action_space.high)
        return actions, state


# Layers with at most this many inputs take their weight gradient as (x^T g)^T and their input gradient as
# (W^T g^T)^T (see NarrowInputLinear)
NARROW_INPUTS = 16
# An input gradient is computed on the rows with a nonzero output gradient when they are at most this share
SPARSE_ROWS = 0.75


def linear_weight_grad(grad: th.Tensor, inputs: th.Tensor) -> th.Tensor:
    """
    dL/dW of ``y = x W^T + b`` for 2-D ``x``: ``g^T x`` as autograd computes it, or for a layer with few inputs
    ``(x^T g)^T``: for a batch of 256 and 3 inputs MKL multiplies ``(256 x 256)^T (256 x 3)`` in about 78 us and
    ``(3 x 256)(256 x 256)`` in 14 us on the development CPU (one thread); the same to float rounding (bit for bit
    at 1 and 3 inputs there, 2e-5 apart at 4).
    """
    if inputs.shape[1] <= NARROW_INPUTS:
        return (inputs.t() @ grad).t().contiguous()
    return grad.t() @ inputs


def linear_input_grad(grad: th.Tensor, weight: th.Tensor) -> th.Tensor:
    """
    dL/dx of ``y = x W^T + b`` for 2-D ``grad``: ``g W`` as autograd computes it, or for a layer with few inputs
    ``(W^T g^T)^T``: MKL multiplies ``(256 x 256)(256 x 4)`` in about 75 us and ``(4 x 256)(256 x 256)`` in 15 us
    on the development CPU (one thread), the product that carries an actor loss's gradient through a critic's
    first layer to the action. The same to float rounding. Only for a wide layer (more than ``NARROW_INPUTS``
    outputs): for a narrow one both products are a few microseconds.
    """
    if weight.shape[1] <= NARROW_INPUTS < weight.shape[0]:
        # contiguous, as g W is: a transposed gradient would send later products down another MKL path
        return (weight.t() @ grad.t()).t().contiguous()
    return grad @ weight


class _NarrowInputLinearFunction(th.autograd.Function):
    """``F.linear`` with the weight gradient of :func:`linear_weight_grad`."""

    @staticmethod
    def forward(ctx: Any, x: th.Tensor, weight: th.Tensor, bias: th.Tensor | None) -> th.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        flat_grad, flat_x = grad.reshape(-1, grad.shape[-1]), x.reshape(-1, x.shape[-1])
        grad_x = linear_input_grad(flat_grad, weight).reshape(x.shape) if ctx.needs_input_grad[0] else None
        grad_weight = linear_weight_grad(flat_grad, flat_x) if ctx.needs_input_grad[1] else None
        grad_bias = flat_grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


class NarrowInputLinear(th.nn.Linear):
    """
    ``nn.Linear`` for a layer with few inputs (a network's first layer on a low-dimensional observation): the
    same forward pass; the weight gradient of :func:`linear_weight_grad` and the input gradient of :func:`linear_input_grad`.
    """

    def forward(self, x: th.Tensor) -> th.Tensor:
        return _NarrowInputLinearFunction.apply(x, self.weight, self.bias)


class _ReluMLPFunction(th.autograd.Function):
    """
    Linear layers with ReLU between them (and after the last one with ``relu_after_last``) as one autograd node:
    the forward pass with the operations ``nn.Sequential`` runs (``addmm``, ``relu``), the backward pass with
    autograd's (``mm`` for input gradients, ``threshold_backward`` for the ReLUs, a sum over the batch for the
    biases), without a graph node, a saved-variable check and a Python module call per layer.
    """

    @staticmethod
    def forward(ctx: Any, x: th.Tensor, relu_after_last: bool, *params: th.Tensor) -> th.Tensor:
        weights = params[0::2]
        hidden, inputs = relu_mlp_forward(x, params, relu_after_last)
        ctx.relu_after_last = relu_after_last
        ctx.n_layers = len(weights)
        ctx.save_for_backward(*inputs, *weights, *([hidden] if relu_after_last else []))
        return hidden

    @staticmethod
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor | None, ...]:
        saved, n = ctx.saved_tensors, ctx.n_layers
        if ctx.relu_after_last:
            grad = th.ops.aten.threshold_backward(grad, saved[2 * n], 0)
        needs = ctx.needs_input_grad
        grad_x, param_grads = relu_mlp_backward(grad, saved[:n], saved[n : 2 * n], needs[2:], needs[0])
        return (grad_x, None, *param_grads)


def relu_mlp_forward(x: th.Tensor, params: Sequence[th.Tensor], relu_after_last: bool) -> tuple[th.Tensor, list[th.Tensor]]:
    """
    Forward pass of linear layers with ReLU between them (and after the last one with ``relu_after_last``), with
    the operations ``nn.Sequential`` runs (``addmm``, ``relu``).

    :param x: the input
    :param params: weight and bias of each layer in turn
    :param relu_after_last: whether a ReLU follows the last layer
    :return: the output and each layer's input (what :func:`relu_mlp_backward` needs)
    """
    weights, biases = params[0::2], params[1::2]
    inputs, hidden = [], x
    for index, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
        inputs.append(hidden)
        hidden = F.linear(hidden, weight, bias)
        if index < len(weights) - 1 or relu_after_last:
            # In place on the layer's own output (nothing else holds it): one fresh batch-size buffer less to
            # write per layer; the backward pass needs only the ReLU's output
            hidden = th.relu_(hidden)
    return hidden, inputs


def relu_mlp_backward(
    grad: th.Tensor,
    inputs: Sequence[th.Tensor],
    weights: Sequence[th.Tensor],
    needs: Sequence[bool],
    needs_input: bool,
    input_columns: slice | None = None,
) -> tuple[th.Tensor | None, list[th.Tensor | None]]:
    """
    Backward pass of linear layers with ReLU between them (autograd's operations, see :class:`_ReluMLPFunction`).

    Where only the input's gradient is wanted (frozen weights: an actor loss through a critic) and the batch's
    gradient is zero on many rows (the minimum of twin critics sends each sample's gradient through one of
    them), the products run on the other rows only (:func:`_input_grad_of_rows`).

    :param grad: gradient of the last layer's output (before any ReLU after it)
    :param inputs: each layer's input, as saved in the forward pass
    :param weights: each layer's weight
    :param needs: for weight and bias of each layer in turn, whether its gradient is wanted
    :param needs_input: whether the gradient of the first layer's input is wanted
    :param input_columns: only these columns of the input's gradient are wanted (``None``: all)
    :return: the input's gradient (or ``None``) and the parameters' (``None`` where not wanted)
    """
    n = len(weights)
    param_grads: list[th.Tensor | None] = [None] * (2 * n)
    # A critic's output gradient (few columns); nonzero() would synchronise a GPU
    if needs_input and not any(needs) and grad.shape[1] <= NARROW_INPUTS and grad.device.type == "cpu":
        rows = grad.ne(0).any(dim=1).nonzero().squeeze(1)
        if 0 < rows.numel() <= SPARSE_ROWS * grad.shape[0]:
            return _input_grad_of_rows(grad, rows, inputs, weights, input_columns), param_grads
    for index in reversed(range(n)):
        if needs[2 * index]:
            param_grads[2 * index] = linear_weight_grad(grad, inputs[index])
        if needs[2 * index + 1]:
            param_grads[2 * index + 1] = grad.sum(0)
        if index == 0 and not needs_input:
            return None, param_grads
        weight = weights[index] if index > 0 or input_columns is None else weights[index][:, input_columns]
        grad = linear_input_grad(grad, weight)
        if index > 0:  # through the ReLU whose output is this layer's input
            grad = th.ops.aten.threshold_backward(grad, inputs[index], 0)
    return grad, param_grads


def _input_grad_of_rows(
    grad: th.Tensor, rows: th.Tensor, inputs: Sequence[th.Tensor], weights: Sequence[th.Tensor], input_columns: slice | None
) -> th.Tensor:
    """
    The input gradient of :func:`relu_mlp_backward` computed on ``rows`` only: the other rows' output gradient is
    zero, so is their input gradient (each row's is its own ``g W`` products and ReLU masks).
    """
    row_inputs = [inputs[0], *(hidden.index_select(0, rows) for hidden in inputs[1:])]
    no_params = [False] * (2 * len(weights))
    row_grad, _ = relu_mlp_backward(grad.index_select(0, rows), row_inputs, weights, no_params, True, input_columns)
    assert row_grad is not None
    full = row_grad.new_zeros(grad.shape[0], row_grad.shape[1])
    return full.index_copy_(0, rows, row_grad)


class ReluMLP(th.nn.Sequential):
    """
    An ``nn.Sequential`` of ``Linear, ReLU, Linear, ..., Linear[, ReLU]`` (SB3's ``create_mlp`` with ReLU) that
    runs as one autograd node (:class:`_ReluMLPFunction`), or without autograd as plain ``F.linear`` / ``relu``
    calls. The same parameters and state dict; the same outputs, and the same gradients (to float rounding for a
    layer with at most ``NARROW_INPUTS`` inputs, as :class:`NarrowInputLinear`). Made by :func:`fuse_relu_mlps`.
    """

    relu_after_last: bool

    def forward(self, x: th.Tensor) -> th.Tensor:
        layers = self._modules.values()
        if x.dim() == 2 and th.is_grad_enabled():
            # Only when autograd records: predict's no-grad passes skip this list
            params = [param for layer in layers if isinstance(layer, th.nn.Linear) for param in (layer.weight, layer.bias)]
            return _ReluMLPFunction.apply(x, self.relu_after_last, *params)
        for layer in layers:
            # ReLU in place on the output of the Linear before it (a ReluMLP starts with a Linear)
            x = F.linear(x, layer.weight, layer.bias) if isinstance(layer, th.nn.Linear) else th.relu_(x)
        return x


def _is_relu_mlp(module: th.nn.Module) -> bool:
    layers = list(module._modules.values())
    return (
        type(module) is th.nn.Sequential
        and len(layers) > 0
        and all(
            type(layer) is (th.nn.Linear if index % 2 == 0 else th.nn.ReLU) and (index % 2 or layer.bias is not None)
            for index, layer in enumerate(layers)
        )
    )


def fuse_relu_mlps(module: ModuleT) -> ModuleT:
    """
    In place: every ``nn.Sequential`` of ``module`` that is ``Linear, ReLU, ..., Linear[, ReLU]`` becomes a
    :class:`ReluMLP`, and every other plain ``nn.Linear`` with at most ``NARROW_INPUTS`` inputs a
    :class:`NarrowInputLinear` (same parameters, buffers and state dict).
    """
    fused: set[int] = set()
    for layer in list(module.modules()):
        if _is_relu_mlp(layer):
            layer.__class__ = ReluMLP
            layer.__dict__["relu_after_last"] = type(list(layer._modules.values())[-1]) is th.nn.ReLU
            fused.update(id(inner) for inner in layer.modules())
    for layer in module.modules():
        if type(layer) is th.nn.Linear and layer.in_features <= NARROW_INPUTS and id(layer) not in fused:
            layer.__class__ = NarrowInputLinear
    return module


def soft_update(params: Iterable[th.Tensor], target_params: Iterable[th.Tensor], tau: float) -> None:
    """
    theta' <- (1 - tau) * theta' + tau * theta: SB3's ``polyak_update`` (the same two operations in the same order,
    so the same floats) as two multi-tensor calls instead of two calls per parameter tensor.

    :param params: the online parameters (or running statistics)
    :param target_params: the target ones, updated in place
    :param tau: the soft update coefficient (1: copy)
    """
    params, target_params = list(params), list(target_params)
    if len(params) != len(target_params):
        raise ValueError(f"soft_update: {len(params)} parameters for {len(target_params)} target parameters")
    if not params:
        return
    with th.no_grad():
        th._foreach_mul_(target_params, 1 - tau)
        th._foreach_add_(target_params, params, alpha=tau)


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


def fused_adam_step(optimizer: th.optim.Optimizer) -> bool:
    """
    ``optimizer.step()`` for a fused ``Adam`` whose state exists (after its first step): the calls that
    ``Adam.step`` ends in (``_foreach_add_`` on the step counts, then ``_fused_adam_``) on the same tensors, so the
    same update bit for bit, without ``step``'s per-call Python work (hooks, profiler scope, ``_init_group``'s
    checks per parameter, regrouping by device: about 45 us of a 130 us critic step of CourseSAC, measured alone).

    :param optimizer: the optimizer
    :return: whether it took the step; ``False`` (nothing done) for anything else: another optimizer or Adam
        variant (AMSGrad, capturable, differentiable, decoupled weight decay, tensor learning rate), a first step,
        step hooks, a learning-rate scheduler (it wraps ``step``), parameters on several devices or dtypes
    """
    if (
        type(optimizer) is not th.optim.Adam
        or "step" in optimizer.__dict__
        or optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or _GLOBAL_OPTIMIZER_HOOKS[0]
        or _GLOBAL_OPTIMIZER_HOOKS[1]
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
    for group, params, states in work:
        if not params:
            continue
        steps = [state["step"] for state in states]
        th._foreach_add_(steps, 1)
        beta1, beta2 = group["betas"]
        th._fused_adam_(
            params, [param.grad for param in params], [state["exp_avg"] for state in states],
            [state["exp_avg_sq"] for state in states], [], steps, amsgrad=False, lr=group["lr"], beta1=beta1,
            beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
        )  # fmt: skip
    return True


def optimizer_step(
    optimizer: th.optim.Optimizer, loss: th.Tensor, params: Iterable[th.Tensor] = (), max_grad_norm: float = math.inf
) -> None:
    """
    ``zero_grad``, ``backward``, gradient clipping at ``max_grad_norm`` and ``step``. An infinite norm skips the
    clipping: SB3 computes the norm and multiplies every gradient by 1.0, which changes nothing unless a gradient
    is not finite (then the update is not finite either way). The gradients are reset as ``zero_grad()`` does by
    default (``set_to_none``), without its profiler and compiler wrappers (about 10 us a call); a fused Adam steps
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


def mean_of(values: list[th.Tensor]) -> float:
    """
    ``np.mean`` of the values, as SB3 logs its losses (``np.mean`` of their ``.item()``, same float), with one
    device synchronisation for the list instead of one per gradient step.
    """
    return float(np.mean(th.stack(values).tolist() if values else []))

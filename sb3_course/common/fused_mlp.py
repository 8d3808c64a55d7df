"""
ReLU MLPs as one autograd node, and cheaper gradient products, for the course policies' networks (the network
half of the fast path in :mod:`sb3_course.common.fast_path`; see ``docs/benchmarks.md``):

- :func:`fuse_relu_mlps` runs a ReLU MLP as one autograd node (:class:`ReluMLP`) and gives first layers on
  low-dimensional inputs cheaper weight- and input-gradient products (:class:`NarrowInputLinear`);
- :func:`relu_mlp_forward` / :func:`relu_mlp_backward` are its passes, shared with CourseDDPG's encoder
  Q-network; the backward pass skips what an actor loss does not need: rows without gradient (through a frozen
  critic, and in a clamped actor) and columns not wanted.
"""

from collections.abc import Sequence
from typing import Any, TypeVar

import torch as th
import torch.nn.functional as F

ModuleT = TypeVar("ModuleT", bound=th.nn.Module)

# Layers with at most this many inputs take their weight gradient as (x^T g)^T and their input gradient as
# (W^T g^T)^T (see NarrowInputLinear)
NARROW_INPUTS = 16
# A backward pass runs on the rows with a nonzero output gradient when they are at most this share of the batch
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

    @classmethod
    def of(cls, linear: th.nn.Linear) -> "NarrowInputLinear":
        """A ``NarrowInputLinear`` on the parameters of ``linear`` (no initialisation: the random draws stay as they were)."""
        narrow = th.nn.utils.skip_init(
            cls, linear.in_features, linear.out_features, bias=linear.bias is not None, device="meta"
        )
        narrow.weight, narrow.bias = linear.weight, linear.bias
        return narrow.train(linear.training)

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
    def forward(ctx: Any, x: th.Tensor, relu_after_last: bool, sparse_grad_rows: bool, *params: th.Tensor) -> th.Tensor:
        weights = params[0::2]
        hidden, inputs = relu_mlp_forward(x, params, relu_after_last)
        ctx.relu_after_last = relu_after_last
        ctx.sparse_grad_rows = sparse_grad_rows
        ctx.n_layers = len(weights)
        ctx.save_for_backward(*inputs, *weights, *([hidden] if relu_after_last else []))
        return hidden

    @staticmethod
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor | None, ...]:
        saved, n = ctx.saved_tensors, ctx.n_layers
        if ctx.relu_after_last:
            grad = th.ops.aten.threshold_backward(grad, saved[2 * n], 0)
        needs = ctx.needs_input_grad
        grad_x, param_grads = relu_mlp_backward(
            grad, saved[:n], saved[n : 2 * n], needs[3:], needs[0], sparse_rows=ctx.sparse_grad_rows
        )
        return (grad_x, None, None, *param_grads)


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
    sparse_rows: bool = False,
) -> tuple[th.Tensor | None, list[th.Tensor | None]]:
    """
    Backward pass of linear layers with ReLU between them (autograd's operations, see :class:`_ReluMLPFunction`).

    Where the output gradient (of a few columns) is zero on many rows of the batch, the products run on the other
    rows only (:func:`_layers_backward` with ``rows``): always where only the input's gradient is wanted (frozen
    weights: an actor loss through a critic, where the minimum of twin critics sends each sample's gradient through
    one of them), bit for bit; and with ``sparse_rows`` for the weights' gradients too (a clamped actor: no
    gradient on the rows it clamps), the same sums without their zero terms, to float rounding (MKL groups the
    terms of a shorter sum differently).

    :param grad: gradient of the last layer's output (before any ReLU after it)
    :param inputs: each layer's input, as saved in the forward pass
    :param weights: each layer's weight
    :param needs: for weight and bias of each layer in turn, whether its gradient is wanted
    :param needs_input: whether the gradient of the first layer's input is wanted
    :param input_columns: only these columns of the input's gradient are wanted (``None``: all)
    :param sparse_rows: the output gradient is often zero on whole rows: skip them for the weights' gradients too
    :return: the input's gradient (or ``None``) and the parameters' (``None`` where not wanted)
    """
    # A critic's or an actor's output gradient (few columns); nonzero() would synchronise a GPU
    frozen = needs_input and not any(needs)
    if (frozen or sparse_rows) and grad.shape[1] <= NARROW_INPUTS and grad.device.type == "cpu":
        rows = grad.ne(0).any(dim=1).nonzero().squeeze(1)
        if 0 < rows.numel() <= SPARSE_ROWS * grad.shape[0]:
            return _layers_backward(grad, inputs, weights, needs, needs_input, input_columns, rows)
    return _layers_backward(grad, inputs, weights, needs, needs_input, input_columns)


def _layers_backward(
    grad: th.Tensor,
    inputs: Sequence[th.Tensor],
    weights: Sequence[th.Tensor],
    needs: Sequence[bool],
    needs_input: bool,
    input_columns: slice | None,
    rows: th.Tensor | None = None,
) -> tuple[th.Tensor | None, list[th.Tensor | None]]:
    """
    :func:`relu_mlp_backward` layer by layer (same arguments and result) on every row of the batch, or on ``rows``
    only: the other rows' output gradient is zero, so is their input gradient (each row's is its own ``g W``
    products and ReLU masks) and their terms of the weights' gradients.
    """
    batch = grad.shape[0]
    if rows is not None:
        first = inputs[0].index_select(0, rows) if needs[0] else inputs[0]  # only the first weight's gradient reads it
        inputs = [first, *(hidden.index_select(0, rows) for hidden in inputs[1:])]
        grad = grad.index_select(0, rows)
    n = len(weights)
    param_grads: list[th.Tensor | None] = [None] * (2 * n)
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
    if rows is not None:
        grad = grad.new_zeros(batch, grad.shape[1]).index_copy_(0, rows, grad)
    return grad, param_grads


class ReluMLP(th.nn.Sequential):
    """
    An ``nn.Sequential`` of ``Linear, ReLU, Linear, ..., Linear[, ReLU]`` (SB3's ``create_mlp`` with ReLU) that
    runs as one autograd node (:class:`_ReluMLPFunction`), or without autograd as plain ``F.linear`` / ``relu``
    calls. The same parameters and state dict; the same outputs, and the same gradients (to float rounding for a
    layer with at most ``NARROW_INPUTS`` inputs, as :class:`NarrowInputLinear`). Made by :func:`fuse_relu_mlps`.

    :param layers: the layers (the modules themselves, not copies)
    :param sparse_grad_rows: whether the output gradient is often zero on whole rows (a clamped actor's): see
        :func:`relu_mlp_backward`
    """

    def __init__(self, *layers: th.nn.Module, sparse_grad_rows: bool = False) -> None:
        super().__init__(*layers)
        self.relu_after_last = type(layers[-1]) is th.nn.ReLU
        self.sparse_grad_rows = sparse_grad_rows

    def forward(self, x: th.Tensor) -> th.Tensor:
        layers = self._modules.values()
        if x.dim() == 2 and th.is_grad_enabled():
            # Only when autograd records: predict's no-grad passes skip this list
            params = [param for layer in layers if isinstance(layer, th.nn.Linear) for param in (layer.weight, layer.bias)]
            return _ReluMLPFunction.apply(x, self.relu_after_last, self.sparse_grad_rows, *params)
        for layer in layers:
            # ReLU in place on the output of the Linear before it (a ReluMLP starts with a Linear)
            x = F.linear(x, layer.weight, layer.bias) if isinstance(layer, th.nn.Linear) else th.relu_(x)
        return x


def _is_relu_mlp(module: th.nn.Module) -> bool:
    layers = list(module.children())
    return (
        type(module) is th.nn.Sequential
        and len(layers) > 0
        and all(
            type(layer) is (th.nn.Linear if index % 2 == 0 else th.nn.ReLU) and (index % 2 or layer.bias is not None)
            for index, layer in enumerate(layers)
        )
    )


def with_sparse_grad_rows(mlp: ModuleT) -> ModuleT:
    """
    Mark a ReLU MLP whose output gradient is often zero on whole rows (a clamped actor's): once fused
    (:func:`fuse_relu_mlps`) its backward pass skips those rows (:func:`relu_mlp_backward`'s ``sparse_rows``).
    """
    mlp.__dict__["sparse_grad_rows"] = True
    return mlp


def _fused(module: th.nn.Module) -> th.nn.Module:
    """A :class:`ReluMLP` of the layers of ``module`` if it is a ReLU MLP, else ``module``."""
    if not _is_relu_mlp(module):
        return module
    mlp = ReluMLP(*module.children(), sparse_grad_rows=module.__dict__.get("sparse_grad_rows", False))
    return mlp.train(module.training)


def fuse_relu_mlps(module: ModuleT) -> ModuleT:
    """
    ``module`` whose every ``nn.Sequential`` that is ``Linear, ReLU, ..., Linear[, ReLU]`` is replaced by a
    :class:`ReluMLP` of the same layers (same parameters and state dict; ``module`` itself when it is one), and
    every other plain ``nn.Linear`` with at most ``NARROW_INPUTS`` inputs by a :class:`NarrowInputLinear` on its
    parameters. Anything else stays as it is (:func:`uncovered_mlps` names it).
    """
    fused = _fused(module)
    for parent in list(fused.modules()):
        for name, child in list(parent.named_children()):
            if (replacement := _fused(child)) is not child:
                setattr(parent, name, replacement)
    for parent in list(fused.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is th.nn.Linear and child.in_features <= NARROW_INPUTS and type(parent) is not ReluMLP:
                setattr(parent, name, NarrowInputLinear.of(child))
    return fused  # type: ignore[return-value]


def uncovered_mlps(module: th.nn.Module) -> list[str]:
    """
    The ``nn.Sequential`` of ``module`` with a ``nn.Linear`` that :func:`fuse_relu_mlps` left as they are (another
    activation, a normalisation layer): each as its name and its layers' types.
    """
    return [
        f"{name or type(module).__name__} ({', '.join(type(layer).__name__ for layer in child)})"
        for name, child in module.named_modules()
        if type(child) is th.nn.Sequential and any(isinstance(layer, th.nn.Linear) for layer in child)
    ]

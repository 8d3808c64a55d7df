"""
ReLU MLPs as one autograd node (:class:`ReluMLP`), for the course policies' networks: the network half of the
fast path in :mod:`sb3_course.common.fast_path`. A network it does not cover (another activation, a normalisation
layer) runs as built, layer by layer through autograd.
"""

from collections.abc import Sequence
from typing import Any, TypeVar

import torch as th
import torch.nn.functional as F

ModuleT = TypeVar("ModuleT", bound=th.nn.Module)


class _ReluMLPFunction(th.autograd.Function):
    """
    Linear layers with ReLU between them (and after the last one with ``relu_after_last``) as one autograd node:
    the forward pass with the operations ``nn.Sequential`` runs (``addmm``, ``relu``), the backward pass with
    autograd's (``mm`` for the weight and input gradients, ``threshold_backward`` for the ReLUs, a sum over the
    batch for the biases), without a graph node, a saved-variable check and a Python module call per layer.
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
    grad: th.Tensor, inputs: Sequence[th.Tensor], weights: Sequence[th.Tensor], needs: Sequence[bool], needs_input: bool
) -> tuple[th.Tensor | None, list[th.Tensor | None]]:
    """
    Backward pass of linear layers with ReLU between them (autograd's operations, see :class:`_ReluMLPFunction`).

    :param grad: gradient of the last layer's output (before any ReLU after it)
    :param inputs: each layer's input, as saved in the forward pass
    :param weights: each layer's weight
    :param needs: for weight and bias of each layer in turn, whether its gradient is wanted
    :param needs_input: whether the gradient of the first layer's input is wanted
    :return: the input's gradient (or ``None``) and the parameters' (``None`` where not wanted)
    """
    n = len(weights)
    param_grads: list[th.Tensor | None] = [None] * (2 * n)
    for index in reversed(range(n)):
        # y = x W^T + b: dL/dW = g^T x, dL/db = sum of g over the batch, dL/dx = g W
        if needs[2 * index]:
            param_grads[2 * index] = grad.t() @ inputs[index]
        if needs[2 * index + 1]:
            param_grads[2 * index + 1] = grad.sum(0)
        if index == 0 and not needs_input:
            return None, param_grads
        grad = grad @ weights[index]
        if index > 0:  # through the ReLU whose output is this layer's input
            grad = th.ops.aten.threshold_backward(grad, inputs[index], 0)
    return grad, param_grads


class ReluMLP(th.nn.Sequential):
    """
    An ``nn.Sequential`` of ``Linear, ReLU, Linear, ..., Linear[, ReLU]`` (SB3's ``create_mlp`` with ReLU) that
    runs as one autograd node (:class:`_ReluMLPFunction`), or without autograd as plain ``F.linear`` / ``relu``
    calls. The same parameters, state dict, outputs and gradients. Made by :func:`fuse_relu_mlps`.

    :param layers: the layers (the modules themselves, not copies)
    """

    def __init__(self, *layers: th.nn.Module) -> None:
        super().__init__(*layers)
        self.relu_after_last = type(layers[-1]) is th.nn.ReLU

    def forward(self, x: th.Tensor) -> th.Tensor:
        if x.dim() == 2 and th.is_grad_enabled():
            # Only when autograd records: predict's no-grad passes skip this list
            params = [param for layer in self if isinstance(layer, th.nn.Linear) for param in (layer.weight, layer.bias)]
            return _ReluMLPFunction.apply(x, self.relu_after_last, *params)
        for layer in self:
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


def _fused(module: th.nn.Module) -> th.nn.Module:
    """A :class:`ReluMLP` of the layers of ``module`` if it is a ReLU MLP, else ``module``."""
    if not _is_relu_mlp(module):
        return module
    return ReluMLP(*module.children()).train(module.training)


def fuse_relu_mlps(module: ModuleT) -> ModuleT:
    """
    ``module`` whose every ``nn.Sequential`` that is ``Linear, ReLU, ..., Linear[, ReLU]`` is replaced by a
    :class:`ReluMLP` of the same layers (same parameters and state dict; a :class:`ReluMLP` of ``module`` when it
    is one). Anything else stays as it is (:func:`uncovered_mlps` names it).
    """
    fused = _fused(module)
    for parent in list(fused.modules()):
        for name, child in list(parent.named_children()):
            if (replacement := _fused(child)) is not child:
                setattr(parent, name, replacement)
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

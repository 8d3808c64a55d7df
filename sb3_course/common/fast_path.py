"""
The speed layer of CourseDQN, CourseDDPG and CourseSAC, one hook (:class:`FastOffPolicyMixin`, put before the SB3
class; it overrides ``_setup_model`` only) over SB3's own training code: Adam's fused kernel (public
``fused=True``), equal to SB3's single-tensor Adam up to float rounding. The classes train with SB3's ``train``
(CourseDQN, CourseSAC) or their own course update (CourseDDPG). What it is worth:
``python -m sb3_course.benchmarks.fast_path_worth``; where a step's time goes: ``docs/benchmarks.md``.
"""

from typing import Any

import torch as th

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

"""Fine-tuning after a load: does every parameter still train? The C# twin is Training/FineTune.cs.

PyTorch's state dicts carry tensors saved with requires_grad=False; a loader that takes the file's
flag instead of keeping the model's own leaves the parameters frozen, and a user's fine-tuning then
silently does nothing. The consumer, after its other observations, takes one plain SGD step on the
case's training loss and reports which parameters are frozen (requires_grad False) and which
trainable ones the step left unchanged. The orchestrator judges (problem ``frozen_after_load``).
"""

from typing import Any, Callable, Dict, List

import torch
import torch.nn as nn

# Large enough that any nonzero gradient moves a float32 parameter of the zoo's magnitudes by more
# than one ulp; the step's size is not judged, only whether the parameter moved.
LR = 0.1
# A gradient at most this fraction of the step's largest is zero by the model's structure, up to rounding.
NEGLIGIBLE = 1e-5


def _max_abs(g: torch.Tensor) -> float:
    return float(g.detach().abs().max()) if g.numel() > 0 else 0.0


def observe(model: nn.Module, loss: Callable[[nn.Module], torch.Tensor]) -> Dict[str, Any]:
    """One plain SGD step (lr=LR) on ``loss(model)`` in train mode; what it froze and what it left unchanged.

    Returns:
        ``{"parameters", "frozen", "unchanged", "zero_grad"}``, lists of names in ``named_parameters()``
        order (a tied parameter once). ``unchanged``: trainable, yet no gradient reached it or the
        step did not move it; ``zero_grad``: its gradient is zero by the model's structure (at most NEGLIGIBLE of the largest).
    """
    named = list(model.named_parameters())
    frozen = [n for n, p in named if not p.requires_grad]
    before = [p.detach().clone() for _, p in named]
    trainable = [p for _, p in named if p.requires_grad]
    model.train()
    if trainable:
        optimizer = torch.optim.SGD(trainable, lr=LR)
        optimizer.zero_grad()
        with torch.enable_grad():
            value = loss(model)
            if value.requires_grad:  # nothing reaches the loss: every parameter stays, reported unchanged
                value.backward()
        optimizer.step()
    unchanged: List[str] = []
    zero_grad: List[str] = []
    largest = max((_max_abs(p.grad) for _, p in named if p.grad is not None), default=0.0)
    for (n, p), b in zip(named, before, strict=True):
        if not p.requires_grad:
            continue
        if p.grad is not None and _max_abs(p.grad) <= NEGLIGIBLE * largest:
            # The model's own structure: e.g. a reverse LSTM's weight_hh_l1_reverse when only the
            # last time step is read (its hidden state is still zero there), or a bias a BatchNorm
            # cancels (norm_gelu's fc1.bias: its gradient is rounding noise, ~1e-7 of the largest,
            # which moves the float32 value on one machine and not on another). Reported, not judged.
            zero_grad.append(n)
        elif p.grad is None or torch.equal(p.detach(), b):
            unchanged.append(n)
    return {"parameters": [n for n, _ in named], "frozen": frozen, "unchanged": unchanged, "zero_grad": zero_grad}

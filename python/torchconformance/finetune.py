"""Fine-tuning after a load: does every parameter still train? The C# twin is Training/FineTune.cs.

PyTorch's state dicts carry tensors saved with requires_grad=False; a loader that takes the file's
flag instead of keeping the model's own leaves the parameters frozen, and a user's fine-tuning then
silently does nothing. The consumer, after its other observations, takes one plain SGD step on the
case's training loss and reports which parameters are frozen (requires_grad False) and which
trainable ones the step left unchanged. The orchestrator judges (problem ``frozen_after_load``).
"""

from typing import Any, Callable, Dict

import torch
import torch.nn as nn

# Large enough that any nonzero gradient moves a float32 parameter of the zoo's magnitudes by more
# than one ulp; the step's size is not judged, only whether the parameter moved.
LR = 0.1


def observe(model: nn.Module, loss: Callable[[nn.Module], torch.Tensor]) -> Dict[str, Any]:
    """One plain SGD step (lr=LR) on ``loss(model)`` in train mode; what it froze and what it left unchanged.

    Returns:
        ``{"parameters": [names], "frozen": [names], "unchanged": [names]}``, names in
        ``named_parameters()`` order (a tied parameter once).
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
    unchanged = [n for (n, p), b in zip(named, before) if p.requires_grad and torch.equal(p.detach(), b)]
    return {"parameters": [n for n, _ in named], "frozen": frozen, "unchanged": unchanged}

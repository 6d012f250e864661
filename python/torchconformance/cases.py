"""The suite's cases, PyTorch side: how to build, train and feed each model.

The C# twin is Cases.cs. A case's tolerance lives with the orchestrator, which owns verdicts.
"""

from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn as nn

from . import data
from .models import TheModelClass


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], nn.Module]
    optimizer: Callable[[List[nn.Parameter]], torch.optim.Optimizer]
    input_shape: Tuple[int, ...]
    classes: int
    train_steps: int

    def eval_input(self) -> torch.Tensor:
        return data.pattern(self.input_shape, salt=0)

    def train_batch(self, step: int) -> Tuple[torch.Tensor, torch.Tensor]:
        x = data.pattern(self.input_shape, salt=step + 1)
        y = data.labels(self.input_shape[0], self.classes, salt=step)
        return x, y


CASES: Dict[str, Case] = {
    "lenet": Case(
        name="lenet",
        build=TheModelClass,
        # The seed's optimizer, hyperparameters stated explicitly.
        optimizer=lambda params: torch.optim.SGD(params, lr=0.001, momentum=0.9),
        input_shape=(4, 3, 32, 32),
        classes=10,
        train_steps=3,
    ),
}


def get(name: str) -> Case:
    try:
        return CASES[name]
    except KeyError:
        raise KeyError(f"unknown case '{name}' (this runtime has: {', '.join(sorted(CASES))})") from None


def train(case: Case, seed: int) -> Tuple[nn.Module, torch.optim.Optimizer]:
    """Builds the model from ``seed`` and trains ``case.train_steps`` steps on fixed data."""
    torch.manual_seed(seed)
    model = case.build()
    optimizer = case.optimizer(list(model.parameters()))
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for step in range(case.train_steps):
        x, y = case.train_batch(step)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    return model, optimizer

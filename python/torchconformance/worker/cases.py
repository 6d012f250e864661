"""The suite's cases, PyTorch side: how to build, train, perturb and feed each model.

What a case is (input, loss, optimizer knobs, variants) is data, in catalogue/cases.json; the
models are code, in models.BUILDERS. The C# twin is Cases.cs. A case's tolerance is read by the
orchestrator, which owns verdicts.
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn

from .. import catalogue, models
from . import data, routes


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], nn.Module]
    inputs: Callable[[int], torch.Tensor]
    """salt -> an input batch; salt 0 is the eval batch, 1.. the training batches."""
    loss: str = "mean_square"
    classes: int = 0
    lr: float = 0.01
    momentum: float = 0.9
    train_steps: int = 2
    variants: Dict[str, Callable[[], nn.Module]] = field(default_factory=dict)
    """Consumer-side variants by load mode: strict_false (warm start), shape_mismatch."""

    def eval_input(self) -> torch.Tensor:
        return self.inputs(0)

    def optimizer(self, params) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)

    def train_loss(self, model: nn.Module, step: int, device: str = "cpu") -> torch.Tensor:
        x = self.inputs(step + 1).to(device)
        out = model(x)
        if self.loss == "cross_entropy":
            return nn.functional.cross_entropy(out, data.labels(out.shape[0], self.classes, salt=step).to(device))
        return out.float().pow(2).mean()


def floats(*shape: int) -> Callable[[int], torch.Tensor]:
    return lambda salt: data.pattern(shape, salt)


def tokens(vocab: int, *shape: int) -> Callable[[int], torch.Tensor]:
    return lambda salt: data.tokens(shape, vocab, salt)


def _new_dtypes() -> nn.Module:
    missing = models.missing_dtypes()
    if missing:  # the twin cannot be built, so this runtime neither produces nor consumes the case
        raise routes.NotApplicable(f"torch {torch.__version__} lacks {', '.join(missing)}")
    return models.NewDtypes()


# Builders that need more than construction on this side: new_dtypes answers not_applicable here.
_GUARDED: Dict[str, Callable[[], nn.Module]] = {"new_dtypes": _new_dtypes}


def _builder(name: str) -> Callable[[], nn.Module]:
    return _GUARDED.get(name) or models.BUILDERS[name]


def _inputs(spec: Dict) -> Callable[[int], torch.Tensor]:
    """A case's `input` in the catalogue: {floats: shape} or {tokens: shape, vocab: N}."""
    if "tokens" in spec:
        return tokens(int(spec["vocab"]), *spec["tokens"])
    return floats(*spec["floats"])


def _case(c: Dict) -> Case:
    return Case(c["name"], _builder(c["model"]), _inputs(c["input"]), loss=c["loss"], classes=int(c["classes"]),
                lr=float(c["lr"]), momentum=float(c["momentum"]), train_steps=int(c["train_steps"]),
                variants={mode: _builder(b) for mode, b in c.get("variants", {}).items()})


# The state-dict cases of the catalogue, in its order (training checkpoints: checkpoints.py).
CASES: Dict[str, Case] = {c["name"]: _case(c) for c in catalogue.cases() if c.get("optimizer") is None}


def get(name: str) -> Case:
    try:
        return CASES[name]
    except KeyError:
        raise KeyError(f"unknown case '{name}' (this runtime has: {', '.join(sorted(CASES))})") from None


# dtypes that libtorch stores and converts but has few kernels for (no add_ on CPU, up to 2.14 at least).
_FEW_KERNELS = {getattr(torch, name) for name, _ in models.NEW_DTYPES if hasattr(torch, name)}


def perturb(model: nn.Module) -> None:
    """Moves every buffer off its initial value, so a consumer that fails to load one is caught.

    Training already moves parameters and BatchNorm statistics; other buffers never train.
    Non-persistent buffers are left alone: they are not saved, so they must stay as built.
    """
    persistent = set(model.state_dict())
    with torch.no_grad():
        for name, b in model.named_buffers():
            if name not in persistent or name.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked"):
                continue
            if b.is_quantized:  # no in-place arithmetic on quantized tensors: requantize value + 1 with the same parameters
                owner, _, leaf = name.rpartition(".")
                module = model.get_submodule(owner) if owner else model
                module._buffers[leaf] = _requantize(b, b.dequantize() + 1)
            elif b.dtype == torch.bool:
                b.logical_not_()
            elif b.dtype in _FEW_KERNELS:  # no add kernel for these: add in float64, cast back (exact for small values)
                b.copy_((b.to(torch.float64) + 1).to(b.dtype))
            else:
                b.add_(1)


def _requantize(like: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    if like.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        return torch.quantize_per_channel(values, like.q_per_channel_scales(), like.q_per_channel_zero_points(), like.q_per_channel_axis(), like.dtype)
    return torch.quantize_per_tensor(values, like.q_scale(), like.q_zero_point(), like.dtype)


def train(case: Case, seed: int, device: str = "cpu") -> Tuple[nn.Module, torch.optim.Optimizer]:
    """Builds the model from ``seed``, trains ``case.train_steps`` steps on fixed data, perturbs buffers.

    Args:
        device: where to train (``--device``). The model is built on the CPU from the seed, then
            moved, as users do (``model.to('cuda')``): the same initial weights on every device.
    """
    torch.manual_seed(seed)
    model = case.build().to(device)
    optimizer = case.optimizer(list(model.parameters()))
    model.train()
    for step in range(case.train_steps):
        optimizer.zero_grad()
        case.train_loss(model, step, device).backward()
        optimizer.step()
    perturb(model)
    return model, optimizer


def variant(case: Case, mode: str) -> Optional[Callable[[], nn.Module]]:
    return case.variants.get(mode)

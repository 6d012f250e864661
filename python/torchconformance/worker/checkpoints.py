"""Training checkpoints, PyTorch side: the seed's {'epoch', 'model_state_dict',
'optimizer_state_dict', 'loss'} for each optimizer, and resume-equivalence.

The producer trains N steps, saves, then goes on K more steps (parameters P1). The consumer loads
the checkpoint, rebuilds model and optimizer from it, and goes on the same K steps (P2). The
orchestrator judges P1 against P2. The C# twin is Checkpoints/CheckpointCases.cs.
"""

import math
import os
from typing import Any, Dict, List, Tuple

import torch
import torch.nn as nn

from .. import catalogue, models, observe
from ..formats.atomic import atomic_torch_save
from . import data

# Every hyperparameter stated explicitly, off its default where the optimizer allows it, so a
# consumer that drops one is caught: catalogue/cases.json's `optimizers` (its C# reader:
# CheckpointCases.Spec). JSON arrays are the tuples torch keeps (betas).
OPTIMIZERS: Dict[str, Dict[str, Any]] = catalogue.optimizers()

# LR schedulers inside the checkpoint ('scheduler_state_dict'), each over the same SGD (the catalogue's
# scheduled_optimizer). Resuming must give the learning rates (and OneCycleLR's cycled momentum) the
# producer's continuation has. StepLR decays at epoch 3, exactly where the checkpoint is saved.
# C# reader: ScheduledCheckpoints.
SCHEDULED_OPTIMIZER: Dict[str, Any] = catalogue.document()["scheduled_optimizer"]
SCHEDULERS: Dict[str, Dict[str, Any]] = catalogue.document()["schedulers"]


def SCHEDULED_SGD(params) -> torch.optim.Optimizer:  # noqa: N802 - the name the scheduler cases use
    return getattr(torch.optim, SCHEDULED_OPTIMIZER["class"])(params, **SCHEDULED_OPTIMIZER["param_group"])


def _scheduler(name: str, optimizer: torch.optim.Optimizer) -> Any:
    spec = SCHEDULERS[name]
    return getattr(torch.optim.lr_scheduler, spec["class"])(optimizer, **spec["args"])

_CHECKPOINT = catalogue.checkpoint()
TRAIN_STEPS = int(_CHECKPOINT["train_steps"])
RESUME_STEPS = int(_CHECKPOINT["resume_steps"])
INPUT_SHAPE = tuple(_CHECKPOINT["input"]["floats"])
CheckpointNet = models.BUILDERS[_CHECKPOINT["model"]]


def _optimizer(name: str, params) -> torch.optim.Optimizer:
    try:
        spec = OPTIMIZERS[name]
    except KeyError:
        raise KeyError(f"unknown optimizer '{name}' (this runtime has: {', '.join(OPTIMIZERS)})") from None
    group = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["param_group"].items()}
    return getattr(torch.optim, spec["class"])(params, **group)


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> float:
    device = next(model.parameters()).device  # --device: the data follows the model
    x = data.pattern(INPUT_SHAPE, salt=step + 1).to(device)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        return loss

    if isinstance(optimizer, torch.optim.LBFGS):  # re-evaluates the loss itself; returns the first evaluation
        return float(optimizer.step(closure))
    loss = closure()
    optimizer.step()
    return float(loss)


def _plain(v: Any) -> Any:
    """A JSON-able view of a hyperparameter value."""
    if isinstance(v, torch.Tensor):
        return v.item() if v.numel() == 1 else v.tolist()
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _describe_entry(name: str, value: Any, entries: List[Dict[str, Any]]) -> None:
    """A tensor by SHA-256, a scalar by value; a list (LBFGS's history) element by element as name[i]."""
    if isinstance(value, (list, tuple)):
        entries.append({"key": name, "value": len(value), "representation": "list"})
        for i, item in enumerate(value):
            _describe_entry(f"{name}[{i}]", item, entries)
    elif isinstance(value, torch.Tensor) and value.dim() > 0:
        entries.append(observe.describe_tensor(name, value))
    else:
        kind = f"tensor({observe.DTYPE_NAMES.get(value.dtype, str(value.dtype))})" if isinstance(value, torch.Tensor) else type(value).__name__
        entries.append({"key": name, "value": _plain(value), "representation": kind})


def describe_optimizer(optimizer: torch.optim.Optimizer) -> Dict[str, Any]:
    """param_groups field by field, and every per-parameter state entry (tensors by SHA-256)."""
    sd = optimizer.state_dict()
    groups = [{k: _plain(v) for k, v in g.items()} for g in sd["param_groups"]]
    state = []
    for index in sorted(sd["state"]):
        entries: List[Dict[str, Any]] = []
        for name, value in sorted(sd["state"][index].items()):
            _describe_entry(name, value, entries)
        state.append({"param": index, "entries": entries})
    return {"type": type(optimizer).__name__, "param_groups": groups, "state": state}


def _parameters(model: nn.Module) -> Dict[str, Any]:
    # NaN and infinities as the strings .NET parses: a consumer that read garbage still reports (observe.describe_outputs).
    return observe.describe_outputs(torch.cat([p.detach().reshape(-1).to(torch.float64) for p in model.parameters()]))


def _build(name: str, params) -> Tuple[torch.optim.Optimizer, Any]:
    """The case's optimizer, and its LR scheduler where the case has one (else None)."""
    if name in SCHEDULERS:
        optimizer = SCHEDULED_SGD(params)
        return optimizer, _scheduler(name, optimizer)
    return _optimizer(name, params), None


def _resume(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, epoch: int, described: Dict[str, Any]) -> None:
    """RESUME_STEPS more steps; with a scheduler, the lr and momentum each step ran with."""
    lrs, momenta = [], []
    for step in range(epoch, epoch + RESUME_STEPS):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        momentum = optimizer.param_groups[0].get("momentum")
        momenta.append(None if momentum is None else float(momentum))
        _step(model, optimizer, step)
        if scheduler is not None:
            scheduler.step()
    described["resumed"] = _parameters(model)
    if scheduler is not None:
        described["schedule"]["lrs"] = lrs
        described["schedule"]["momenta"] = momenta


def _schedule(scheduler: Any) -> Dict[str, Any]:
    """What a user sees of the scheduler once loaded: its type and get_last_lr()."""
    return {"type": type(scheduler).__name__, "last_lr": [float(v) for v in scheduler.get_last_lr()]}


def produce(optimizer_name: str, path: str, seed: int, device: str = "cpu") -> Dict[str, Any]:
    """Trains on ``device`` (built on the CPU from the seed, then moved), saves, resumes there."""
    torch.manual_seed(seed)
    model = CheckpointNet().to(device)
    optimizer, scheduler = _build(optimizer_name, model.parameters())
    loss = 0.0
    for step in range(TRAIN_STEPS):
        loss = _step(model, optimizer, step)
        if scheduler is not None:
            scheduler.step()
    checkpoint = {
        "epoch": TRAIN_STEPS,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
        "loss": loss,
    }
    if scheduler is not None:
        checkpoint["scheduler_state_dict"] = scheduler.state_dict()
    # Staged in memory first, then written atomically: a full disk raises atomic.SaveError, no file.
    atomic_torch_save(path, lambda f: torch.save(checkpoint, f), [checkpoint], "checkpoint")
    saved = {"epoch": TRAIN_STEPS, "loss": loss, "tensors": observe.describe_state_dict(model.state_dict()),
             "optimizer": describe_optimizer(optimizer)}
    if scheduler is not None:
        saved["schedule"] = _schedule(scheduler)
    _resume(model, optimizer, scheduler, TRAIN_STEPS, saved)
    return saved


def require_keys(checkpoint: Any, path: str, keys: Tuple[str, ...]) -> None:
    """A file without the suite's checkpoint keys is named for what it is (a bare state dict, another dict)."""
    if isinstance(checkpoint, dict) and all(k in checkpoint for k in keys):
        return
    if not isinstance(checkpoint, dict):
        what = f"a {type(checkpoint).__name__}, not a checkpoint dict"
    else:
        have = [str(k) for k in checkpoint]
        listed = ", ".join(have[:6]) + (f", ... ({len(have)} in all)" if len(have) > 6 else "")
        what = (f"a bare state dict ({listed}), not a training checkpoint" if all(isinstance(v, torch.Tensor) for v in checkpoint.values())
                else f"a dict without {', '.join(k for k in keys if k not in checkpoint)} ({listed})")
    raise ValueError(f"{path}: this file is {what}; this op reads the suite's checkpoint cases ({{{', '.join(keys)}}}) "
                     "into their own network. For your own file run `conformance check FILE`, which reads any checkpoint with every reader")


def consume(optimizer_name: str, path: str, mode: str, device: str = "cpu") -> Dict[str, Any]:
    """Loads onto ``device`` (``routes.load_pickle``: map_location), rebuilds model and optimizer there, resumes there."""
    from . import routes

    checkpoint = routes.load_pickle(mode, path, device)
    require_keys(checkpoint, path, ("model_state_dict", "optimizer_state_dict", "epoch", "loss"))
    model = CheckpointNet().to(device)
    model.load_state_dict(checkpoint["model_state_dict"])
    # Built with the case's optimizer type (and scheduler); every hyperparameter then comes from the file.
    optimizer, scheduler = _build(optimizer_name, model.parameters())
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    if scheduler is not None:
        scheduler.load_state_dict(checkpoint["scheduler_state_dict"])
    epoch = int(checkpoint["epoch"])
    loaded = {"epoch": epoch, "loss": _plain(checkpoint["loss"]), "tensors": observe.describe_state_dict(model.state_dict()),
              "optimizer": describe_optimizer(optimizer)}
    if scheduler is not None:
        loaded["schedule"] = _schedule(scheduler)
    model.train()
    _resume(model, optimizer, scheduler, epoch, loaded)
    return loaded


# Several models in one file, GAN-style: {'netG', 'netD', 'optimizerG', 'optimizerD', 'epoch'}.
GAN_OPTIMIZERS: Dict[str, str] = catalogue.case("ckpt_gan")["gan"]


def _gan(seed: int, device: str = "cpu"):
    torch.manual_seed(seed)
    nets = {"G": CheckpointNet().to(device), "D": CheckpointNet().to(device)}
    optimizers = {k: _optimizer(GAN_OPTIMIZERS[k], nets[k].parameters()) for k in nets}
    return nets, optimizers


def _gan_step(nets, optimizers, step: int) -> None:
    for k in ("D", "G"):
        _step(nets[k], optimizers[k], step)


def _describe_gan(epoch: int, nets, optimizers) -> Dict[str, Any]:
    tensors = []
    for k in ("G", "D"):
        tensors += observe.describe_state_dict({f"net{k}.{n}": t for n, t in nets[k].state_dict().items()})
    return {"epoch": epoch, "tensors": tensors,
            "optimizers": {f"optimizer{k}": describe_optimizer(optimizers[k]) for k in ("G", "D")}}


def _gan_parameters(nets) -> Dict[str, Any]:
    return observe.describe_outputs(torch.cat([p.detach().reshape(-1).to(torch.float64) for k in ("G", "D") for p in nets[k].parameters()]))


def produce_gan(path: str, seed: int, device: str = "cpu") -> Dict[str, Any]:
    nets, optimizers = _gan(seed, device)
    for step in range(TRAIN_STEPS):
        _gan_step(nets, optimizers, step)
    checkpoint = {"epoch": TRAIN_STEPS, "netG": nets["G"].state_dict(), "netD": nets["D"].state_dict(),
                  "optimizerG": optimizers["G"].state_dict(), "optimizerD": optimizers["D"].state_dict()}
    atomic_torch_save(path, lambda f: torch.save(checkpoint, f), [checkpoint], "GAN checkpoint")
    saved = _describe_gan(TRAIN_STEPS, nets, optimizers)
    for step in range(TRAIN_STEPS, TRAIN_STEPS + RESUME_STEPS):
        _gan_step(nets, optimizers, step)
    saved["resumed"] = _gan_parameters(nets)
    return saved


def consume_gan(path: str, mode: str, device: str = "cpu") -> Dict[str, Any]:
    from . import routes

    checkpoint = routes.load_pickle(mode, path, device)
    require_keys(checkpoint, path, ("netG", "netD", "optimizerG", "optimizerD", "epoch"))
    nets, optimizers = _gan(0, device)
    for k in ("G", "D"):
        nets[k].load_state_dict(checkpoint[f"net{k}"])
        optimizers[k] = _optimizer(GAN_OPTIMIZERS[k], nets[k].parameters())
        optimizers[k].load_state_dict(checkpoint[f"optimizer{k}"])
    epoch = int(checkpoint["epoch"])
    loaded = _describe_gan(epoch, nets, optimizers)
    for step in range(epoch, epoch + RESUME_STEPS):
        _gan_step(nets, optimizers, step)
    loaded["resumed"] = _gan_parameters(nets)
    return loaded


# An optimizer's state dict on its own (the optimizer_state route): a folder of the model's state dict
# and the optimizer's, as torch.save(model.state_dict()) and torch.save(optimizer.state_dict()) write
# them. C# twin: Training/OptimizerStateCases.cs. The folder's file names and the consumer's lr are
# the route's (cases.json), so that every side reads them from one place.
OPTIMIZER_STATE = "optimizer_state"
_OPTIMIZER_STATE = catalogue.document()["routes"][OPTIMIZER_STATE]
OPTIMIZER_STATE_FILES: Dict[str, str] = _OPTIMIZER_STATE["files"]
CONSUMER_LR = float(_OPTIMIZER_STATE["consumer_lr"])


def _optimizer_state_paths(folder: str) -> Tuple[str, str]:
    return os.path.join(folder, OPTIMIZER_STATE_FILES["model"]), os.path.join(folder, OPTIMIZER_STATE_FILES["optimizer"])


def produce_optimizer_state(optimizer_name: str, folder: str, seed: int, device: str = "cpu") -> Dict[str, Any]:
    """Trains as ``produce`` does, then saves the model's and the optimizer's state dicts, each on its own."""
    torch.manual_seed(seed)
    model = CheckpointNet().to(device)
    optimizer = _optimizer(optimizer_name, model.parameters())
    for step in range(TRAIN_STEPS):
        _step(model, optimizer, step)
    os.makedirs(folder, exist_ok=True)
    model_path, optimizer_path = _optimizer_state_paths(folder)
    model_state, optimizer_state = model.state_dict(), optimizer.state_dict()
    atomic_torch_save(model_path, lambda f: torch.save(model_state, f), [model_state], "model state dict")
    atomic_torch_save(optimizer_path, lambda f: torch.save(optimizer_state, f), [optimizer_state], "optimizer state dict")
    saved = {"tensors": observe.describe_state_dict(model.state_dict()), "optimizer": describe_optimizer(optimizer)}
    _resume(model, optimizer, None, TRAIN_STEPS, saved)
    return saved


def consume_optimizer_state(optimizer_name: str, folder: str, mode: str, device: str = "cpu") -> Dict[str, Any]:
    """Loads the model, then the optimizer's state dict into the case's class built with the route's lr alone; resumes."""
    from . import routes

    model_path, optimizer_path = _optimizer_state_paths(folder)
    model = CheckpointNet().to(device)
    model.load_state_dict(routes.load_pickle(mode, model_path, device))
    parameters = list(model.named_parameters())
    frozen = [n for n, p in parameters if not p.requires_grad]
    spec = OPTIMIZERS[optimizer_name]
    optimizer = getattr(torch.optim, spec["class"])(model.parameters(), lr=CONSUMER_LR)
    optimizer.load_state_dict(routes.load_pickle(mode, optimizer_path, device))
    loaded = {"tensors": observe.describe_state_dict(model.state_dict()), "optimizer": describe_optimizer(optimizer)}
    model.train()
    before = [p.detach().clone() for _, p in parameters]
    _resume(model, optimizer, None, TRAIN_STEPS, loaded)
    # As the TorchSharp consumer reports it: frozen by the load, and left unchanged by the resumed steps.
    loaded["fine_tune"] = {"parameters": [n for n, _ in parameters], "frozen": frozen,
                           "unchanged": [n for i, (n, p) in enumerate(parameters) if torch.equal(p.detach(), before[i])]}
    return loaded

"""How an artifact crosses between runtimes (the "route"), and the ways PyTorch users load it.

Each load mode is its own cell in the matrix. A mode this torch version lacks raises
NotApplicable naming the missing capability; it is never silently replaced by another mode.
"""

import inspect
from typing import Any, Callable, Dict, Mapping

import torch


class NotApplicable(Exception):
    """The runtime lacks a capability that the cell needs."""


def _load_parameters() -> Mapping[str, inspect.Parameter]:
    return inspect.signature(torch.load).parameters


def _require_load_kwarg(name: str, added_in: str) -> None:
    if name not in _load_parameters():
        raise NotApplicable(f"torch {torch.__version__} has no torch.load({name}=...) (added in {added_in})")


def _load_default(path: str) -> Any:
    return torch.load(path)


def _load_weights_only(path: str) -> Any:
    _require_load_kwarg("weights_only", "1.13")
    return torch.load(path, weights_only=True)


def _load_mmap(path: str) -> Any:
    _require_load_kwarg("mmap", "2.1")  # Torch 2.1.0+
    return torch.load(path, mmap=True)


def _load_map_location_cpu(path: str) -> Any:
    return torch.load(path, map_location="cpu")


# One table from load-mode names (the matrix's "mode" column) to loaders.
PICKLE_LOAD_MODES: Dict[str, Callable[[str], Any]] = {
    "default": _load_default,
    "weights_only": _load_weights_only,
    "mmap": _load_mmap,
    "map_location_cpu": _load_map_location_cpu,
}


def save_state_dict(route: str, state_dict: Mapping[str, torch.Tensor], path: str) -> None:
    if route == "pickle":
        torch.save(state_dict, path)
        return
    raise NotApplicable(f"route '{route}' is not implemented by the PyTorch runtime")


def load_state_dict(route: str, mode: str, path: str) -> Mapping[str, torch.Tensor]:
    if route != "pickle":
        raise NotApplicable(f"route '{route}' is not implemented by the PyTorch runtime")
    try:
        loader = PICKLE_LOAD_MODES[mode]
    except KeyError:
        raise NotApplicable(f"load mode '{mode}' is unknown (known: {', '.join(PICKLE_LOAD_MODES)})") from None
    obj = loader(path)
    if not isinstance(obj, Mapping):
        raise TypeError(f"{path}: expected a state dict (a mapping), found {type(obj).__module__}.{type(obj).__qualname__}")
    return obj

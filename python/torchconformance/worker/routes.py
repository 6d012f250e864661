"""How an artifact crosses between runtimes (the "route"), and the ways PyTorch users load it.

Each load mode is its own cell in the matrix. A mode or route this runtime lacks raises
NotApplicable naming the missing capability; it is never silently replaced by another.
"""

import inspect
from typing import Any, Callable, Dict, Mapping

import torch

from ..formats import tsnative
from ..formats.atomic import atomic_torch_save, atomic_write_bytes
from . import device as devices
from . import layouts


class NotApplicable(Exception):
    """The runtime lacks a capability that the cell needs."""


def _require_load_kwarg(name: str, added_in: str) -> None:
    if name not in inspect.signature(torch.load).parameters:
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


# One table from load-mode names (the matrix's "mode" column) to torch.load calls.
PICKLE_LOAD_MODES: Dict[str, Callable[[str], Any]] = {
    "default": _load_default,
    "weights_only": _load_weights_only,
    "mmap": _load_mmap,
    "map_location_cpu": _load_map_location_cpu,
}

def load_pickle(mode: str, path: str, device: str = "cpu") -> Any:
    """torch.load as the mode says; onto ``device`` when it is not the CPU (``--device``).

    On a device every mode but ``map_location_cpu`` passes ``map_location=device`` (what a user with
    a GPU writes); ``map_location_cpu`` loads onto the CPU, and the caller moves the model after.
    So does the CPU standing in for a device (``device.simulating``).
    """
    if (device == "cpu" and not devices.is_simulating()) or mode == "map_location_cpu":
        try:
            return PICKLE_LOAD_MODES[mode](path)
        except KeyError:
            raise NotApplicable(f"load mode '{mode}' is unknown (known: {', '.join(PICKLE_LOAD_MODES)})") from None
    if mode == "default":
        return torch.load(path, map_location=device)
    if mode == "weights_only":
        _require_load_kwarg("weights_only", "1.13")
        return torch.load(path, map_location=device, weights_only=True)
    if mode == "mmap":
        _require_load_kwarg("mmap", "2.1")  # Torch 2.1.0+
        return torch.load(path, map_location=device, mmap=True)
    raise NotApplicable(f"load mode '{mode}' is unknown (known: {', '.join(PICKLE_LOAD_MODES)})")


# Modes that load a file into a different model (the case's variants): they read as "default".
VARIANT_MODES = ("strict_false", "shape_mismatch")


def _safetensors():
    try:
        import safetensors.torch  # Debian 13's python3-safetensors; Debian 12 has none

        return safetensors.torch
    except ImportError:
        raise NotApplicable(f"the safetensors package is not installed for this Python (torch {torch.__version__})") from None


TORCHSCRIPT_ROUTES = ("torchscript_script", "torchscript_trace")


def save_model(route: str, model: torch.nn.Module, path: str, example: torch.Tensor) -> None:
    """Saves what the route carries: a pickled module, a TorchScript module, else the state dict.

    Every route serializes into memory and then writes the file atomically (``atomic.atomic_torch_save``,
    ``atomic_write_bytes``): a full disk raises ``atomic.SaveError`` naming the file and leaves
    nothing behind, and libtorch's C++ file writer, which aborts the process when a write fails,
    never writes to the destination's disk.
    """
    if route == "pickled_model":
        # what the seed's tutorial calls "save/load entire model"
        atomic_torch_save(path, lambda f: torch.save(model, f), [model], "pickled model")
    elif route == "torchscript_script":
        scripted = torch.jit.script(model)
        atomic_torch_save(path, lambda f: torch.jit.save(scripted, f), [scripted], "TorchScript module (script)")
    elif route == "torchscript_trace":
        traced = torch.jit.trace(model, example)
        atomic_torch_save(path, lambda f: torch.jit.save(traced, f), [traced], "TorchScript module (trace)")
    elif route in layouts.HF_ROUTES:  # a folder, as transformers' save_pretrained lays it out
        try:
            layouts.save(route, model, path, None if route == "hf_bin_sharded" else _safetensors())
        except KeyError as e:
            if e.args and isinstance(e.args[0], torch.dtype):
                raise NotApplicable(f"safetensors has no dtype for {e.args[0]}") from None
            raise
    else:
        save_state_dict(route, model.state_dict(), path)


def load_torchscript(path: str, device: str = "cpu") -> torch.nn.Module:
    return torch.jit.load(path, map_location=device)


def archive_version(path: str) -> str:
    """The 'version' record of a zip archive (TorchScript's file-format version), or 'none'."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.endswith("/version") or name.endswith("/.data/version"):
                return z.read(name).decode().strip()
    return "none"


def save_state_dict(route: str, state_dict: Mapping[str, torch.Tensor], path: str) -> None:
    """Writes the state dict as the route carries it, atomically (see ``save_model``)."""
    if route == "pickle":
        atomic_torch_save(path, lambda f: torch.save(state_dict, f), [state_dict], "state dict (pickle)")
    elif route == "pickle_legacy":
        atomic_torch_save(path, lambda f: torch.save(state_dict, f, _use_new_zipfile_serialization=False), [state_dict], "state dict (legacy pickle)")
    elif route == "safetensors":
        st = _safetensors()
        try:
            # What users do: safetensors wants contiguous tensors. save() is save_file()'s bytes.
            data = st.save({k: v.contiguous() for k, v in state_dict.items()})
        except KeyError as e:
            if isinstance(e.args[0], torch.dtype):  # safetensors' own table of dtypes lacks it
                raise NotApplicable(f"safetensors has no dtype for {e.args[0]}") from None
            raise
        except RuntimeError as e:
            if "share memory" in str(e):
                first = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
                raise NotApplicable(f"safetensors cannot store tensors that share memory (tied weights): {first}") from None
            raise
        atomic_write_bytes(path, data, "state dict (safetensors)")
    elif route in layouts.PREFIXES:  # what a DataParallel/DDP or torch.compile'd model's state_dict() holds
        prefixed = layouts.add_prefix(route, state_dict)
        atomic_torch_save(path, lambda f: torch.save(prefixed, f), [prefixed], f"state dict ({route})")
    elif route == "torchsharp_native":
        try:
            tsnative.save(state_dict, path)
        except tsnative.UnsupportedDtype as e:  # the format has no code for it, like safetensors above
            raise NotApplicable(str(e)) from None
    else:
        raise NotApplicable(f"route '{route}' is not implemented by the PyTorch runtime")


def load_state_dict(route: str, mode: str, path: str, device: str = "cpu") -> Mapping[str, torch.Tensor]:
    """The file's state dict, loaded as ``mode`` says; pickles onto ``device`` (see ``load_pickle``).

    safetensors and torchsharp_native read onto the CPU; ``load_state_dict`` then copies into the
    model wherever it lives.
    """
    if mode in VARIANT_MODES:
        mode = "default"
    if route in layouts.PREFIXES:
        if mode not in ("default", "strip_prefix"):
            raise NotApplicable(f"route '{route}' has no load mode '{mode}' (it has: default, strip_prefix)")
        obj = load_pickle("default", path, device)
        return layouts.strip_prefix(route, obj) if mode == "strip_prefix" else obj
    if route in layouts.HF_ROUTES:
        if mode != "default":
            raise NotApplicable(f"route '{route}' has no load mode '{mode}'")
        return layouts.load(route, path, None if route == "hf_bin_sharded" else _safetensors())
    if route in ("pickle", "pickle_legacy", "pickled_model"):
        obj = load_pickle(mode, path, device)
        if route == "pickled_model":
            if not isinstance(obj, torch.nn.Module):
                raise TypeError(f"expected a pickled nn.Module, found {type(obj).__module__}.{type(obj).__qualname__}")
            obj = obj.state_dict()
    elif mode != "default":
        raise NotApplicable(f"route '{route}' has no load mode '{mode}'")
    elif route == "safetensors":
        obj = _safetensors().load_file(path)
    elif route == "torchsharp_native":
        obj = tsnative.load(path)
    else:
        raise NotApplicable(f"route '{route}' is not implemented by the PyTorch runtime")
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected a state dict (a mapping), found {type(obj).__module__}.{type(obj).__qualname__}")
    return obj

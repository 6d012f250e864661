"""``--device``: where the PyTorch side trains, saves from and loads onto, and how it is pinned.

A CUDA run states its numerics: TF32 off for matmul and cuDNN (TF32 rounds float32 inputs to 10
mantissa bits, far outside any tolerance here), cuDNN deterministic and not benchmarking. The
simulated device (``cpu`` standing in for ``cuda`` on a machine without a GPU) runs every code path
of a device run on the CPU and says so in every id it writes: ``pytorch-2.6-cuda-cpu-simulated``.
"""

import contextlib
from typing import Any, Dict, Iterator

import torch

SIMULATED_SUFFIX = "cuda-cpu-simulated"

# Set while a request runs with ``simulate_cuda`` (``--device cpu`` standing in for cuda): see ``simulating``.
_simulating = False


def label(device: str) -> str:
    """The device part of a runtime id: ``cuda`` on a GPU, ``cuda-cpu-simulated`` for ``--device cpu``."""
    return "cuda" if device.startswith("cuda") else SIMULATED_SUFFIX


def runtime_id(device: str) -> str:
    """``pytorch-<major>.<minor>-<label>``: the producer id of a device run's fixture set."""
    parts = torch.__version__.split("+")[0].split(".")
    minor = "".join(ch for ch in parts[1] if ch.isdigit()) if len(parts) > 1 else "0"
    return f"pytorch-{parts[0]}.{minor}-{label(device)}"


def prepare(device: str) -> Dict[str, Any]:
    """Checks that ``device`` exists and pins its numerics; returns what was set, for the report.

    Raises:
        RuntimeError: ``cuda`` asked for where torch sees no GPU (the message names the torch build).
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device}: torch {torch.__version__} sees no CUDA device "
                           f"(built with CUDA {torch.version.cuda}); use --device cpu to simulate")
    stated: Dict[str, Any] = {"device": device, "label": label(device), "simulated": not device.startswith("cuda")}
    if hasattr(torch.backends, "cuda") and hasattr(torch.backends.cuda, "matmul"):
        torch.backends.cuda.matmul.allow_tf32 = False
        stated["cuda_matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    stated["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
    stated["cudnn_deterministic"] = torch.backends.cudnn.deterministic
    if hasattr(torch, "set_float32_matmul_precision"):  # Torch 1.12+: "highest" is TF32 off
        torch.set_float32_matmul_precision("highest")
        stated["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    if device.startswith("cuda"):
        stated["gpu"] = torch.cuda.get_device_name(0)
        stated["cuda"] = torch.version.cuda
        stated["cudnn"] = torch.backends.cudnn.version()
    return stated


def is_simulating() -> bool:
    """Whether the request in progress stands in for a CUDA run (``simulating``)."""
    return _simulating


def _tag_cpu_as_cuda(storage: Any) -> Any:
    return "cuda:0" if storage.device.type == "cpu" else None


def _no_restore(storage: Any, location: str) -> Any:
    return None


@contextlib.contextmanager
def simulating() -> Iterator[None]:
    """The CPU standing in for ``cuda:0`` for one request, as far as files can tell.

    While it lasts:
    - ``torch.save`` (zip and legacy) names every CPU storage's location ``cuda:0``: a tagger is
      registered ahead of torch's own, so the pickle is the one a CUDA producer writes (its bytes
      are the CPU's); TorchScript and safetensors keep no such tag and are unchanged;
    - ``routes.load_pickle`` passes ``map_location`` in every mode, as a consumer on a GPU does
      (``map_location='cuda'``), here with ``'cpu'``.
    """
    global _simulating
    registry = torch.serialization._package_registry
    before = list(registry)
    torch.serialization.register_package(-1, _tag_cpu_as_cuda, _no_restore)
    _simulating = True
    try:
        yield
    finally:
        _simulating = False
        registry[:] = before

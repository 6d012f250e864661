"""Observations: what a runtime reports about a state dict and a model's outputs.

The orchestrator compares a producer's observation with a consumer's. The C# twin is Observe.cs.
"""

import hashlib
import math
from typing import Any, Dict, List, Mapping

import torch

from . import catalogue

# One table from torch dtypes to the wire names shared with the C# side: catalogue/dtypes.json,
# each dtype this torch has (torch's attribute name is the wire name).
DTYPE_NAMES: Dict[torch.dtype, str] = {getattr(torch, d["name"]): d["name"] for d in catalogue.dtypes() if hasattr(torch, d["name"])}
# The dtypes newer PyTorch has (torch_since set), where this torch has them. numpy has no float8
# (and old numpy no uint16..64 from torch): their raw bytes are hashed, viewed as uint8.
_NEW_DTYPES = {getattr(torch, d["name"]): d["name"] for d in catalogue.dtypes() if d["torch_since"] and hasattr(torch, d["name"])}


# Quantized dtypes: the integer representation's bytes, then the quantization parameters (quantized_params).
DTYPE_NAMES.update({torch.qint8: "qint8", torch.quint8: "quint8", torch.qint32: "qint32"})


def quantized_params(t: torch.Tensor) -> bytes:
    """A quantized tensor's scheme, scales (float64), zero points (int64) and axis, as bytes; the C# twin is Observe.QuantizedParams."""
    if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        scales = t.q_per_channel_scales().to(torch.float64).contiguous().numpy().tobytes()
        zeros = t.q_per_channel_zero_points().to(torch.int64).contiguous().numpy().tobytes()
        return b"per_channel" + t.q_per_channel_axis().to_bytes(8, "little") + scales + zeros
    import struct

    return b"per_tensor" + struct.pack("<dq", t.q_scale(), t.q_zero_point())


def tensor_bytes(t: torch.Tensor) -> bytes:
    """Raw little-endian bytes of a tensor's elements in row-major order."""
    if t.is_quantized:  # the stored integers, then what turns them into values: a lost scale is a changed hash
        t = t.detach().cpu()
        return t.int_repr().contiguous().numpy().tobytes() + quantized_params(t)
    # The values torch gives: a tensor saved with its conj or neg bit (torch >= 2.0) has them resolved,
    # as every other reader's bytes are (numpy() refuses such a tensor outright).
    t = t.detach().cpu().resolve_conj().resolve_neg().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the same 2 bytes.
        t = t.view(torch.int16)
    elif t.dtype in _NEW_DTYPES:  # flattened first: a 0-dim tensor cannot change its element size
        t = t.reshape(-1).view(torch.uint8)
    return t.numpy().tobytes()


def describe_tensor(key: str, t: torch.Tensor) -> Dict[str, Any]:
    return {
        "key": key,
        "shape": list(t.shape),
        "dtype": DTYPE_NAMES.get(t.dtype, str(t.dtype)),
        "sha256": hashlib.sha256(tensor_bytes(t)).hexdigest(),
    }


def describe_state_dict(sd: Mapping[str, torch.Tensor]) -> List[Dict[str, Any]]:
    """Ordered keys, shapes, dtypes and SHA-256 of each tensor's bytes."""
    return [describe_tensor(k, v) for k, v in sd.items()]


def _wire_float(v: float) -> Any:
    """JSON has no NaN or infinities: send those as the strings .NET parses ("NaN", "Infinity")."""
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def describe_outputs(y: torch.Tensor) -> Dict[str, Any]:
    y = y.detach().cpu().to(torch.float64).contiguous()
    return {"shape": list(y.shape), "values": [_wire_float(v) for v in y.reshape(-1).tolist()]}


def aliases(sd: Mapping[str, torch.Tensor]) -> List[List[str]]:
    """Pairs of keys whose tensors start at the same memory (tied weights), in key order."""
    first: Dict[int, str] = {}
    pairs: List[List[str]] = []
    for key, t in sd.items():
        if t.numel() == 0:
            continue
        ptr = t.data_ptr()
        if ptr in first:
            pairs.append([first[ptr], key])
        else:
            first[ptr] = key
    return pairs

"""Reader and writer for TorchSharp's native state-dict format (``Module.save`` / ``Module.load``).

Written from the format itself, as TorchSharp 0.107 writes it:

    file   := LEB128(count) entry*count
    entry  := key tensor
    key    := .NET BinaryWriter string: 7-bit-encoded byte length, then UTF-8 bytes
    tensor := LEB128(dtype) LEB128(ndim) LEB128(dim)*ndim raw-bytes
    raw    := numel * itemsize bytes, row-major, little-endian

LEB128 here is unsigned (TorchSharp refuses negative values). The reader executes nothing; every
length is checked against the file, and errors name the file, key and what was expected.
"""

import io
from collections import OrderedDict
from typing import BinaryIO, Dict, Mapping

import torch

from .observe import tensor_bytes

# TorchSharp's ScalarType codes (torch.ScalarType in TorchSharp/Tensor/Tensor.cs), one table.
DTYPE_CODES: Dict[torch.dtype, int] = {
    torch.uint8: 0,
    torch.int8: 1,
    torch.int16: 2,
    torch.int32: 3,
    torch.int64: 4,
    torch.float16: 5,
    torch.float32: 6,
    torch.float64: 7,
    torch.complex64: 9,
    torch.complex128: 10,
    torch.bool: 11,
    torch.bfloat16: 15,
}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}


# libtorch's codes (c10::ScalarType) that TorchSharp 0.107's ScalarType lacks, to name them in errors.
LIBTORCH_ONLY_CODES = {23: "Float8_e5m2", 24: "Float8_e4m3fn", 27: "UInt16", 28: "UInt32", 29: "UInt64"}


class FormatError(ValueError):
    """The file is not a well-formed TorchSharp state dict."""


class UnsupportedDtype(TypeError):
    """A tensor's dtype has no TorchSharp ScalarType code, so the format cannot carry it."""


def _write_leb128(f: BinaryIO, value: int) -> None:
    if value < 0:
        raise ValueError(f"TorchSharp's LEB128 cannot encode negative value {value}")
    while True:
        b = value & 0x7F
        value >>= 7
        if value == 0:
            f.write(bytes([b]))
            return
        f.write(bytes([b | 0x80]))


def _read_leb128(f: BinaryIO, where: str) -> int:
    result, shift = 0, 0
    while True:
        byte = f.read(1)
        if not byte:
            raise FormatError(f"{where}: file ends inside a LEB128 number")
        b = byte[0]
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise FormatError(f"{where}: LEB128 number longer than 64 bits")


def save(state_dict: Mapping[str, torch.Tensor], path: str) -> None:
    """Writes ``state_dict`` so that TorchSharp's ``Module.load`` reads it.

    Args:
        state_dict: ordered names to tensors (CPU or not; views are written in logical order).
        path: the file to write.
    """
    # Refused before the file is opened: no half-written file is left behind.
    unsupported = [f"{key} ({t.dtype})" for key, t in state_dict.items() if t.dtype not in DTYPE_CODES]
    if unsupported:
        raise UnsupportedDtype(f"TorchSharp's native format has no ScalarType code for {', '.join(unsupported)}")
    with open(path, "wb") as f:
        _write_leb128(f, len(state_dict))
        for key, t in state_dict.items():
            name = key.encode("utf-8")
            _write_leb128(f, len(name))  # .NET's 7-bit-encoded length is LEB128 for lengths < 2^31
            f.write(name)
            _write_leb128(f, DTYPE_CODES[t.dtype])
            _write_leb128(f, t.dim())
            for d in t.shape:
                _write_leb128(f, d)
            f.write(tensor_bytes(t))


def load(path: str) -> "OrderedDict[str, torch.Tensor]":
    """Reads a TorchSharp ``Module.save`` file into an ordered state dict of CPU tensors."""
    with open(path, "rb") as f:
        data = f.read()
    f = io.BytesIO(data)
    count = _read_leb128(f, f"{path}: entry count")
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for i in range(count):
        n = _read_leb128(f, f"{path}: entry {i} key length")
        raw = f.read(n)
        if len(raw) != n:
            raise FormatError(f"{path}: entry {i}: key needs {n} bytes, file has {len(raw)}")
        key = raw.decode("utf-8")
        code = _read_leb128(f, f"{path}: {key}: dtype")
        if code not in CODE_DTYPES:
            libtorch = f" (libtorch's {LIBTORCH_ONLY_CODES[code]})" if code in LIBTORCH_ONLY_CODES else ""
            raise FormatError(f"{path}: {key}: unknown TorchSharp ScalarType code {code}{libtorch}")
        dtype = CODE_DTYPES[code]
        ndim = _read_leb128(f, f"{path}: {key}: ndim")
        shape = [_read_leb128(f, f"{path}: {key}: dim {d}") for d in range(ndim)]
        numel = 1
        for d in shape:
            numel *= d
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise FormatError(f"{path}: {key}: {dtype} {shape} needs {nbytes} bytes, file has {len(buf)}")
        out[key] = _from_bytes(buf, dtype, shape)
    if f.read(1):
        raise FormatError(f"{path}: trailing bytes after {count} entries")
    return out


def _from_bytes(buf: bytes, dtype: torch.dtype, shape) -> torch.Tensor:
    if len(buf) == 0:
        return torch.empty(shape, dtype=dtype)
    if dtype == torch.bfloat16:
        return torch.frombuffer(bytearray(buf), dtype=torch.int16).view(torch.bfloat16).reshape(shape).clone()
    return torch.frombuffer(bytearray(buf), dtype=dtype).reshape(shape).clone()

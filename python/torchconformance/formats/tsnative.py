"""Reader and writer for TorchSharp's native state-dict format (``Module.save`` / ``Module.load``).

Written from TorchSharp 0.107's own writers (``NN/Module.cs`` ``save_state_dict``,
``Tensor/TensorExtensionMethods.cs`` ``Save``, ``Utils/LEB128Codec.cs``):

    file   := LEB128(count) entry*count
    entry  := key tensor
    key    := .NET BinaryWriter string: 7-bit-encoded byte length (< 2^31), then UTF-8 bytes
    tensor := LEB128(dtype) LEB128(ndim) LEB128(dim)*ndim raw      (exactly what Tensor.Save writes)
    raw    := numel * itemsize bytes, row-major, little-endian

LEB128 here is unsigned (TorchSharp refuses negative values) and read into a signed 64-bit long.

The reader executes nothing and trusts no number in the file. Every problem raises
:class:`TorchSharpFormatError` (a ``ValueError``) whose message names the file, the entry (index and
key) and what was expected against what was found. The whole file is checked before any tensor is
allocated: at most 64 dimensions (PyTorch's limit), each dim at most 2^62, the product of the
dims times the element size within 63 bits (so strides cannot overflow), and never more bytes than
remain in the file; keys valid UTF-8 and unique (TorchSharp's own ``Module.load`` silently keeps
the last of two equal keys); bool elements 0 or 1; no trailing bytes. A file that cannot be opened
raises the ``OSError``, which names it.

Two other TorchSharp files are recognized by their structure when a file is not a state dict, and
refused saying what they are:

* ``Tensor.Save``: the whole file is one ``tensor`` as above (no count, no key). :func:`load_tensor`
  reads it.
* ``optimizer.save_state_dict`` (``Optimizers/Optimizer.cs``): a .NET string with the optimizer's
  class name (``Adam``, ``SGD``, ...), LEB128(#param groups), LEB128(#parameter states), then each
  group's options (the initial and current learning rate as doubles, then the optimizer's own
  doubles and booleans, see :data:`OPTIMIZER_OPTIONS`) and each parameter's state.
"""

import struct
from collections import OrderedDict
from typing import BinaryIO, Dict, List, Mapping, NamedTuple, Optional, Tuple

import torch

from .. import catalogue
from ..observe import tensor_bytes
from .atomic import atomic_write

# TorchSharp's ScalarType codes (torch.ScalarType in TorchSharp/Tensor/Tensor.cs), one table:
# catalogue/dtypes.json's scalar_type_code of each dtype TorchSharp 0.107 has.
DTYPE_CODES: Dict[torch.dtype, int] = {getattr(torch, d["name"]): d["scalar_type_code"] for d in catalogue.dtypes() if d["torchsharp_0_107"]}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}
DTYPE_SIZES: Dict[torch.dtype, int] = {dt: torch.empty((), dtype=dt).element_size() for dt in DTYPE_CODES}

# Codes TorchSharp 0.107's ScalarType has but this reader cannot carry (quantized), and libtorch's
# codes (c10::ScalarType) that TorchSharp lacks: named in errors.
OTHER_CODES = {8: "ComplexHalf (commented out in TorchSharp's ScalarType)", 12: "TorchSharp's QInt8 (quantized)",
               13: "TorchSharp's QUInt8 (quantized)", 14: "TorchSharp's QInt32 (quantized)"}
LIBTORCH_ONLY_CODES = {d["scalar_type_code"]: d["scalar_type"] for d in sorted(catalogue.dtypes(), key=lambda d: d["scalar_type_code"])
                       if not d["torchsharp_0_107"]}

MAX_DIMS = 64  # PyTorch's limit on a tensor's rank
MAX_DIM = 1 << 62
MAX_BYTES = (1 << 63) - 1  # TorchSharp reads every number into a signed 64-bit long
MAX_KEY_BYTES = (1 << 31) - 1  # .NET's 7-bit-encoded string length is an Int32

# TorchSharp's optimizers (Optimizers/*.cs): class name -> the fields each param group's Options
# writes after the base class's InitialLearningRate and LearningRate (both doubles):
# 'd' a double (8 bytes), 'b' a .NET bool (1 byte).
OPTIMIZER_OPTIONS: Dict[str, str] = {
    "SGD": "dddbb",        # momentum, dampening, weight_decay, nesterov, maximize
    "Adam": "ddddbb",      # beta1, beta2, eps, weight_decay, amsgrad, maximize
    "AdamW": "ddddbb",     # beta1, beta2, eps, weight_decay, amsgrad, maximize
    "Adamax": "dddd",      # beta1, beta2, eps, weight_decay
    "Adagrad": "dddd",     # lr_decay, initial_accumulator_value, eps, weight_decay
    "Adadelta": "dddb",    # rho, eps, weight_decay, maximize
    "ASGD": "bdddd",       # maximize, lambd, alpha, weight_decay, t0
    "NAdam": "ddddd",      # beta1, beta2, eps, weight_decay, momentum_decay
    "RAdam": "dddd",       # beta1, beta2, eps, weight_decay
    "RMSProp": "bddddb",   # maximize, momentum, alpha, eps, weight_decay, centered
    "Rprop": "bdddd",      # maximize, etaminus, etaplus, min_step, max_step
}


class TorchSharpFormatError(ValueError):
    """The file is not a well-formed TorchSharp file of the kind asked for.

    ``path`` is the file; ``entry`` the entry's index and ``key`` its key where known.
    """

    def __init__(self, path: str, message: str, entry: Optional[int] = None, key: Optional[str] = None) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.entry = entry
        self.key = key


FormatError = TorchSharpFormatError  # the name this module had before


class UnsupportedDtype(TypeError):
    """A tensor's dtype has no TorchSharp ScalarType code, so the format cannot carry it."""


class _Tensor(NamedTuple):
    dtype: torch.dtype
    shape: Tuple[int, ...]
    offset: int
    nbytes: int


class _Cursor:
    """Reads the file's numbers; every failure names the file and what was being read."""

    def __init__(self, data: memoryview, path: str) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def fail(self, message: str, entry: Optional[int] = None, key: Optional[str] = None) -> TorchSharpFormatError:
        return TorchSharpFormatError(self.path, message, entry, key)

    def leb128(self, what: str, entry: Optional[int] = None, key: Optional[str] = None) -> int:
        start, result, shift = self.pos, 0, 0
        while True:
            if self.pos >= len(self.data):
                raise self.fail(f"{what}: expected a LEB128 number at byte {start}, the file ends at byte {len(self.data)}", entry, key)
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift > 63:
                raise self.fail(f"{what}: expected a LEB128 number of at most 10 bytes at byte {start}, found a longer one", entry, key)
        if result > MAX_BYTES:
            raise self.fail(f"{what}: expected a number that fits TorchSharp's signed 64-bit long, found {result} at byte {start}", entry, key)
        return result

    def take(self, n: int) -> memoryview:
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out


def _known_codes() -> str:
    return ", ".join(f"{c} {str(dt).replace('torch.', '')}" for c, dt in sorted(CODE_DTYPES.items()))


def _tensor_header(c: _Cursor, where: str, entry: Optional[int] = None, key: Optional[str] = None) -> _Tensor:
    """Reads dtype, rank and dims, and checks the data's size against the file, allocating nothing."""
    at = c.pos
    code = c.leb128(f"{where}: dtype", entry, key)
    if code not in CODE_DTYPES:
        name = OTHER_CODES.get(code) or (f"libtorch's {LIBTORCH_ONLY_CODES[code]}, which TorchSharp 0.107 lacks" if code in LIBTORCH_ONLY_CODES else None)
        raise c.fail(f"{where}: dtype at byte {at}: expected a TorchSharp ScalarType code ({_known_codes()}), "
                     f"found unknown TorchSharp ScalarType code {code}" + (f" ({name})" if name else ""), entry, key)
    dtype = CODE_DTYPES[code]
    dt = str(dtype).replace("torch.", "")
    ndim = c.leb128(f"{where} ({dt}): rank", entry, key)
    if ndim > MAX_DIMS:
        raise c.fail(f"{where} ({dt}): rank: expected at most {MAX_DIMS} dimensions (PyTorch's limit), found {ndim}", entry, key)
    shape: List[int] = []
    for d in range(ndim):
        v = c.leb128(f"{where} ({dt}): dim {d} of {ndim}", entry, key)
        if v > MAX_DIM:
            raise c.fail(f"{where} ({dt}): dim {d} of {ndim}: expected at most 2^62, found {v}", entry, key)
        shape.append(v)
    itemsize = DTYPE_SIZES[dtype]
    # Strides of a contiguous tensor multiply the dims, zeros counted as one: that product must fit too.
    span = itemsize
    for v in shape:
        span *= max(v, 1)
    if span > MAX_BYTES:
        raise c.fail(f"{where}: {dt} {shape}: expected a size that fits 2^63-1 bytes, found {span} bytes "
                     f"(the dims times {itemsize}-byte elements, a 0 counted as 1 as the strides count it)", entry, key)
    numel = 1
    for v in shape:
        numel *= v
    nbytes = numel * itemsize
    if nbytes > c.remaining():
        raise c.fail(f"{where}: {dt} {shape}: expected {nbytes} bytes of data at byte {c.pos}, "
                     f"the file has {c.remaining()} left (it is {len(c.data)} bytes)", entry, key)
    t = _Tensor(dtype, tuple(shape), c.pos, nbytes)
    raw = c.take(nbytes)
    if dtype == torch.bool and nbytes:
        bad = bytes(raw).translate(None, b"\x00\x01")
        if bad:
            i = bytes(raw).index(bad[:1])
            raise c.fail(f"{where}: bool {shape}: element {i}: expected byte 0 or 1, found 0x{bad[0]:02x}", entry, key)
    return t


def _scan_state_dict(data: memoryview, path: str) -> "OrderedDict[str, _Tensor]":
    c = _Cursor(data, path)
    count = c.leb128("entry count")
    out: "OrderedDict[str, _Tensor]" = OrderedDict()
    first: Dict[str, int] = {}
    for i in range(count):
        where = f"entry {i} of {count}"
        at = c.pos
        if not c.remaining():
            raise c.fail(f"entry count: the file declares {count} entries, but it ends after {i} (at byte {at})", i)
        n = c.leb128(f"{where}: key length", i)
        if n > MAX_KEY_BYTES:
            raise c.fail(f"{where}: key length at byte {at}: expected a .NET string length below 2^31, found {n}", i)
        if n > c.remaining():
            raise c.fail(f"{where}: key: expected {n} bytes at byte {c.pos}, the file has {c.remaining()} left", i)
        raw = bytes(c.take(n))
        try:
            key = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            shown = raw[:48]
            raise c.fail(f"{where}: key of {n} bytes at byte {at}: expected UTF-8, found {shown!r}{'...' if n > 48 else ''} "
                         f"({e.reason} at byte {e.start} of the key)", i) from None
        label = f"{where} {key!r}"
        if key in first:
            raise c.fail(f"{label}: duplicate key {key!r}: expected each key once, found it again (first as entry {first[key]}); "
                         "TorchSharp's Module.load would silently keep the last copy", i, key)
        first[key] = i
        out[key] = _tensor_header(c, label, i, key)
    if c.remaining():
        raise c.fail(f"after {count} entries: expected the end of the file at byte {c.pos}, found {c.remaining()} more bytes")
    return out


def _scan_single_tensor(data: memoryview, path: str) -> _Tensor:
    c = _Cursor(data, path)
    t = _tensor_header(c, "tensor")
    if c.remaining():
        raise c.fail(f"tensor: expected the end of the file at byte {c.pos}, found {c.remaining()} more bytes")
    return t


def _describe_optimizer(data: memoryview) -> Optional[str]:
    """What an optimizer.save_state_dict file says about itself, or None when it is not one."""
    c = _Cursor(data, "")
    try:
        n = c.leb128("name length")
        if not 0 < n <= 32 or n > c.remaining():
            return None
        name = bytes(c.take(n)).decode("ascii")
        fields = OPTIMIZER_OPTIONS.get(name)
        if fields is None:
            return None
        groups = c.leb128("param groups")
        states = c.leb128("states")
        size = 16 + sum(8 if f == "d" else 1 for f in fields)
        if groups < 1 or groups * size > c.remaining():
            return None
        lrs = []
        for _ in range(groups):
            _, lr = struct.unpack_from("<dd", data, c.pos)
            raw = c.take(size)
            if any(kind == "b" and raw[16 + off] not in (0, 1) for kind, off in _offsets(fields)):
                return None
            lrs.append(lr)
    except (TorchSharpFormatError, UnicodeDecodeError, struct.error):
        return None
    return (f"this looks like a TorchSharp optimizer state (optimizer.save_state_dict) of {name}: "
            f"{groups} param group(s) (lr {', '.join(f'{x:g}' for x in lrs)}) and {states} parameter state(s), "
            "not a Module.save state dict: load it with TorchSharp's optimizer.load_state_dict(path) into a "
            f"torch.optim.{name} over the same parameters")


def _offsets(fields: str) -> List[Tuple[str, int]]:
    out, pos = [], 0
    for f in fields:
        out.append((f, pos))
        pos += 8 if f == "d" else 1
    return out


def _materialize(data: memoryview, t: _Tensor) -> torch.Tensor:
    if t.nbytes == 0:
        return torch.empty(t.shape, dtype=t.dtype)
    chunk = bytearray(data[t.offset:t.offset + t.nbytes])
    if t.dtype == torch.bfloat16:
        flat = torch.frombuffer(chunk, dtype=torch.int16).view(torch.bfloat16)
    else:
        flat = torch.frombuffer(chunk, dtype=t.dtype)
    return flat.reshape(t.shape).clone()


def _read(path: str) -> memoryview:
    with open(path, "rb") as f:
        return memoryview(f.read())


def load(path: str) -> "OrderedDict[str, torch.Tensor]":
    """Reads a TorchSharp ``Module.save`` file into an ordered state dict of CPU tensors.

    Raises:
        TorchSharpFormatError: the file is not a well-formed ``Module.save`` file (or is a
            ``Tensor.Save`` or optimizer file, said so); nothing has been allocated for its tensors.
        OSError: the file cannot be read.
    """
    data = _read(path)
    try:
        entries = _scan_state_dict(data, path)
    except TorchSharpFormatError as e:
        other = _recognize_other(data, path)
        if other is None:
            raise
        raise TorchSharpFormatError(path, f"{other} (read as a state dict it fails at: {str(e)[len(path) + 2:]})") from None
    return OrderedDict((key, _materialize(data, t)) for key, t in entries.items())


def _recognize_other(data: memoryview, path: str) -> Optional[str]:
    try:
        t = _scan_single_tensor(data, path)
        return (f"this is a single tensor saved with Tensor.Save ({str(t.dtype).replace('torch.', '')} {list(t.shape)}), "
                "not a Module.save state dict: load it with torch.Tensor.Load(path) in TorchSharp, "
                "or torchconformance.formats.tsnative.load_tensor(path) here")
    except TorchSharpFormatError:
        pass
    return _describe_optimizer(data)


def describe_optimizer(path: str) -> Optional[str]:
    """What a TorchSharp ``optimizer.save_state_dict`` file says about itself (class, groups, states), or None."""
    return _describe_optimizer(_read(path))


def load_tensor(path: str) -> torch.Tensor:
    """Reads a file written by TorchSharp's ``Tensor.Save`` (one tensor, no key)."""
    data = _read(path)
    return _materialize(data, _scan_single_tensor(data, path))


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


def write_tensor(f: BinaryIO, t: torch.Tensor) -> None:
    """What TorchSharp's ``Tensor.Save(BinaryWriter)`` writes: dtype, rank, dims, raw bytes."""
    _write_leb128(f, DTYPE_CODES[t.dtype])
    _write_leb128(f, t.dim())
    for d in t.shape:
        _write_leb128(f, d)
    f.write(tensor_bytes(t))


def write_dotnet_string(f: BinaryIO, s: str) -> None:
    """What .NET's ``BinaryWriter.Write(string)`` writes: 7-bit-encoded byte length, UTF-8 bytes."""
    raw = s.encode("utf-8")
    _write_leb128(f, len(raw))  # .NET's 7-bit-encoded length is LEB128 for lengths < 2^31
    f.write(raw)


def _check_savable(state_dict: Mapping[str, torch.Tensor]) -> None:
    unsupported = [f"{key} ({t.dtype})" for key, t in state_dict.items() if t.dtype not in DTYPE_CODES]
    if unsupported:
        raise UnsupportedDtype(f"TorchSharp's native format has no ScalarType code for {', '.join(unsupported)}")
    bad = [repr(k) for k in state_dict if not isinstance(k, str)]
    if bad:
        raise TypeError(f"TorchSharp's native format keys are strings; found {', '.join(bad)}")


def write_state_dict(f: BinaryIO, state_dict: Mapping[str, torch.Tensor]) -> None:
    """What TorchSharp's ``Module.save_state_dict(BinaryWriter, ...)`` writes."""
    _check_savable(state_dict)
    _write_leb128(f, len(state_dict))
    for key, t in state_dict.items():
        write_dotnet_string(f, key)
        write_tensor(f, t)


def save(state_dict: Mapping[str, torch.Tensor], path: str) -> None:
    """Writes ``state_dict`` so that TorchSharp's ``Module.load`` reads it.

    Serialized in memory first, then written atomically (:func:`torchconformance.atomic.atomic_write`):
    a refused dtype or a full disk leaves no file behind.

    Args:
        state_dict: ordered names to tensors (CPU or not; views are written in logical order).
        path: the file to write.

    Raises:
        UnsupportedDtype: a tensor's dtype has no TorchSharp code (checked before anything is written).
        torchconformance.atomic.SaveError: the file could not be written completely.
    """
    _check_savable(state_dict)  # refused before the file is opened
    atomic_write(path, lambda f: write_state_dict(f, state_dict), "TorchSharp state dict")

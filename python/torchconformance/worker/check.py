"""`conformance check`, PyTorch side: what a user's file is, what is in it, and how each reader reads it.

``inspect`` makes the inventory (format, version records, every tensor with its storage, views and
locations, the non-tensor entries, the globals the pickle asks for). ``read`` runs every reader this
runtime has (each ``torch.load`` mode, ``torch.jit.load``, safetensors, this project's TorchSharp-format
reader) and reports the bytes each one read. The orchestrator compares them and gives the verdict.

Nothing here executes what a file asks for beyond an allowlist: the pickle's globals are scanned with
``pickletools`` (which only parses), and a reader that would import or call a global outside the
allowlist (``torch.load(weights_only=False)``) is not run; the reply says which global stopped it.
"""

import hashlib
import inspect as _inspect
import io
import json
import os
import pickletools
import re
import struct
import zipfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from .. import observe
from ..formats import tsnative


# What a torch.save pickle of tensors, containers and scalars needs and nothing that runs code: the C#
# codec's PickleReader.AllowedGlobals, with the storage class of every dtype in the shared table
# (catalogue/dtypes.json) and the untyped storage.
def _allowed_globals() -> frozenset:
    from .. import catalogue

    storages = [f"torch.{d['storage_class']}" for d in catalogue.dtypes() if d.get("storage_class")]
    return frozenset(["collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
                      "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "_codecs.encode",
                      "torch.UntypedStorage"] + storages)


ALLOWED_GLOBALS = _allowed_globals()
# Readable only by readers that know them: quantized tensors, dtypes and devices as values.
def _known_safe_globals() -> frozenset:
    """Globals that build values and run nothing, which readers other than the codec accept: the storage
    classes of dtypes the codec lacks (uint16..64, float8), quantized tensors, torch 2.x's untyped
    storages and dtype objects (every dtype of the shared table), devices and sizes."""
    from .. import catalogue

    table = catalogue.dtypes()
    return frozenset(
        [f"torch.{d['scalar_type']}Storage" for d in table if not d.get("storage_class")]
        + [d["torch"] for d in table]
        + ["torch.QInt8Storage", "torch.QUInt8Storage", "torch.QInt32Storage", "torch._utils._rebuild_qtensor",
           "torch.per_tensor_affine", "torch.per_channel_affine", "torch.qint8", "torch.quint8", "torch.qint32",
           "torch._utils._rebuild_tensor_v3", "torch.storage.UntypedStorage", "torch._tensor._rebuild_from_type_v2",
           "torch.device", "torch.Size", "builtins.set", "builtins.frozenset", "__builtin__.set"])


KNOWN_SAFE_GLOBALS = _known_safe_globals()

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def sniff(path: str) -> str:
    """The file's format by its bytes, never its name."""
    if os.path.isdir(path):
        return "folder"
    with open(path, "rb") as f:
        head = f.read(64)
    size = os.path.getsize(path)
    if size == 0:
        return "empty"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zipfile.BadZipFile:
            return "zip_damaged"
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return "torchscript"
        if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
            return "torch_zip"
        return "zip_other"
    if head[:2] == b"\x80\x02" and head[2:3] == b"\x8a":  # pickle protocol 2, then LONG1 magic number
        return "torch_legacy"
    if len(head) >= 9 and head[8:9] == b"{":
        n = struct.unpack("<Q", head[:8])[0]
        if 0 < n <= size - 8:
            return "safetensors"
    try:
        tsnative.load(path)
        return "torchsharp_native"
    except tsnative.TorchSharpFormatError as e:
        if "Tensor.Save" in str(e):
            return "torchsharp_tensor"
        if "optimizer" in str(e):
            return "torchsharp_optimizer"
    except Exception:  # noqa: BLE001 - any failure just means: not this format
        pass
    return "unknown"


# ---------------------------------------------------------------------------------------------
# The globals a pickle asks for, by parsing it (pickletools executes nothing).

def _pickle_globals(data: bytes, start: int = 0) -> Tuple[List[str], int]:
    """(module.name of every GLOBAL / STACK_GLOBAL, end offset) of the pickle starting at ``start``."""
    found: List[str] = []
    strings: List[Any] = []
    memo: Dict[int, Any] = {}
    end = start
    stream = io.BytesIO(data)
    stream.seek(start)
    for op, arg, _pos in pickletools.genops(stream):
        end = stream.tell()
        name = op.name
        if name in ("GLOBAL", "INST"):
            found.append(str(arg).replace(" ", "."))
        elif name == "STACK_GLOBAL":
            if len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            else:
                found.append("<unresolved STACK_GLOBAL>")
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            strings.append(arg)
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[int(arg or 0)] = strings[-1] if strings else None
        elif name == "MEMOIZE":
            memo[len(memo)] = strings[-1] if strings else None
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            strings.append(memo.get(int(arg or 0)))
        if name == "STOP":
            break
    return found, end


def globals_of(path: str, fmt: str) -> List[Dict[str, Any]]:
    """Every distinct global the file's pickles ask for, each flagged allowed or not, in first-use order."""
    names: List[str] = []
    if fmt == "torch_zip":
        with zipfile.ZipFile(path) as z:
            for entry in z.namelist():
                if entry.endswith(".pkl"):
                    names += _pickle_globals(z.read(entry))[0]
    elif fmt == "torch_legacy":
        with open(path, "rb") as f:
            data = f.read()
        offset = 0
        for _ in range(4):  # magic number, protocol version, sys info, then the object itself
            found, offset = _pickle_globals(data, offset)
            names += found
    seen: Dict[str, Dict[str, Any]] = {}
    for n in names:
        if n not in seen:
            seen[n] = {"name": n, "allowed": n in ALLOWED_GLOBALS, "known_safe": n in KNOWN_SAFE_GLOBALS}
    return list(seen.values())


# ---------------------------------------------------------------------------------------------
# Inventory

def _dtype_name(dtype: torch.dtype) -> str:
    return observe.DTYPE_NAMES.get(dtype, str(dtype).replace("torch.", ""))


def _tensor_hash(t: torch.Tensor) -> Tuple[str, Dict[str, Any]]:
    """SHA-256 of the tensor's elements, row-major; a quantized tensor's integer representation."""
    extra: Dict[str, Any] = {}
    if t.is_quantized:
        scheme = t.qscheme()
        extra["qscheme"] = str(scheme).replace("torch.", "")
        if scheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            extra["scale"], extra["zero_point"] = float(t.q_scale()), int(t.q_zero_point())
        t = t.int_repr()
    return hashlib.sha256(observe.tensor_bytes(t)).hexdigest(), extra


def flatten(obj: Any, prefix: str = "") -> Tuple[List[Tuple[str, torch.Tensor]], List[Dict[str, Any]]]:
    """(tensors, other entries) of a loaded object; nested keys join with '/' (state-dict keys keep their dots)."""
    tensors: List[Tuple[str, torch.Tensor]] = []
    others: List[Dict[str, Any]] = []

    def walk(value: Any, key: str) -> None:
        if isinstance(value, torch.Tensor):
            tensors.append((key, value))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}/{k}" if key else str(k))
        elif isinstance(value, (list, tuple)) and any(isinstance(v, (torch.Tensor, dict, list, tuple)) for v in value):
            for i, v in enumerate(value):
                walk(v, f"{key}/{i}" if key else str(i))
        else:
            text = repr(value)
            others.append({"key": key, "type": type(value).__name__, "value": text if len(text) <= 200 else text[:197] + "..."})

    walk(obj, prefix)
    return tensors, others


def _describe(tensors: List[Tuple[str, torch.Tensor]]) -> List[Dict[str, Any]]:
    out = []
    for key, t in tensors:
        sha, extra = _tensor_hash(t)
        entry = {"key": key, "dtype": _dtype_name(t.dtype), "shape": list(t.shape), "sha256": sha}
        entry.update(extra)
        out.append(entry)
    return out


def _storage_facts(tensors: List[Tuple[str, torch.Tensor]], locations: Dict[int, str]) -> List[Dict[str, Any]]:
    """Per tensor: storage id, offset, contiguity, location; views and shared storages follow from the ids."""
    storage_ids: Dict[int, int] = {}
    facts: List[Dict[str, Any]] = []
    for key, t in tensors:
        if t.is_quantized:
            facts.append({"key": key, "storage": None, "offset": 0, "contiguous": True, "location": "cpu",
                          "requires_grad": bool(t.requires_grad), "parameter": isinstance(t, torch.nn.Parameter)})
            continue
        try:
            storage = t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()
            ptr, nbytes = storage.data_ptr(), storage.nbytes()
        except Exception:  # noqa: BLE001 - a tensor without storage (meta, sparse): no facts
            ptr, nbytes = 0, 0
        sid = storage_ids.setdefault(ptr, len(storage_ids)) if ptr else None
        facts.append({
            "key": key, "storage": sid, "storage_bytes": nbytes, "offset": int(t.storage_offset()),
            "contiguous": bool(t.is_contiguous()), "stride": list(t.stride()),
            "location": locations.get(ptr, "cpu"), "requires_grad": bool(t.requires_grad),
            "parameter": isinstance(t, torch.nn.Parameter),
        })
    return facts


def _zip_records(path: str) -> Dict[str, Any]:
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        records: Dict[str, str] = {}
        for info in infos:
            leaf = info.filename.split("/", 1)[-1]
            if leaf in ("version", ".data/version", "byteorder", ".data/serialization_id", ".format_version", ".storage_alignment"):
                records[leaf] = z.read(info).decode("utf-8", "replace").strip()[:80]
        deflated = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
        folders = sorted({i.filename.split("/", 1)[0] for i in infos})
        # TorchScript's code with a device written in (what torch.jit.trace records for tensors the forward creates).
        devices = sorted({m.decode("ascii") for i in infos if "/code/" in i.filename and i.filename.endswith(".py")
                          for m in _DEVICE_CONSTANT.findall(z.read(i))})
    return {"records": records, "deflated_entries": deflated[:20], "deflated_count": len(deflated),
            "entries": len(infos), "folders": folders, "device_constants": devices}


_DEVICE_CONSTANT = re.compile(rb'torch\.device\("([a-z]+(?::[0-9]+)?)"\)')


def _damaged_zip(path: str) -> Dict[str, Any]:
    """Where a zip that zipfile cannot open ends: its size, whether the end-of-central-directory record
    is there, the entries whose local headers begin (the last one is where it was cut), and torch's own
    error opening it (weights_only=True, which executes nothing)."""
    with open(path, "rb") as f:
        data = f.read()
    starts = [m.start() for m in re.finditer(rb"PK\x03\x04", data)]
    names = []
    for at in starts:
        if at + 30 > len(data):
            break
        n = struct.unpack_from("<H", data, at + 26)[0]
        names.append((at, data[at + 30:at + 30 + n].decode("utf-8", "replace")))
    facts: Dict[str, Any] = {"bytes": len(data), "end_of_central_directory": data.rfind(b"PK\x05\x06") >= 0,
                             "entries_begun": len(names)}
    facts["entry_names"] = [n for _, n in names[:50]]
    if names:
        facts["last_entry"] = names[-1][1]
        facts["last_entry_offset"] = names[-1][0]
    try:
        kwargs = {"weights_only": True} if _load_kwargs_supported("weights_only") else {}
        torch.load(path, map_location="cpu", **kwargs)
        facts["torch_error"] = None
    except Exception as e:  # noqa: BLE001 - torch's own words are the evidence
        facts["torch_error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
    return facts


def _load_kwargs_supported(name: str) -> bool:
    return name in _inspect.signature(torch.load).parameters


def inspect(path: str) -> Dict[str, Any]:
    """The inventory of one file (never a folder: the orchestrator expands folders)."""
    fmt = sniff(path)
    result: Dict[str, Any] = {"format": fmt, "bytes": os.path.getsize(path), "torch": torch.__version__}
    if fmt in ("torch_zip", "torchscript", "zip_other"):
        result.update(_zip_records(path))
    if fmt == "zip_damaged":
        result["damaged"] = _damaged_zip(path)
    if fmt in ("torch_zip", "torch_legacy"):
        # TorchScript's pickles name __torch__ classes compiled from the archive's own code, never Python.
        result["globals"] = globals_of(path, fmt)
    tensors: List[Tuple[str, torch.Tensor]] = []
    others: List[Dict[str, Any]] = []
    locations: Dict[int, str] = {}
    try:
        if fmt in ("torch_zip", "torch_legacy"):
            def record(storage: Any, location: str) -> Any:
                locations[storage.data_ptr()] = location
                return storage

            blocked = [g["name"] for g in result["globals"] if not (g["allowed"] or g["known_safe"])]
            if blocked:
                result["inventory_error"] = ("not read: the pickle asks for " + ", ".join(blocked[:5])
                                             + (" …" if len(blocked) > 5 else "") + ", outside the allowlist; this check never executes them")
            else:
                # Every global the pickle names is allowed, so the full unpickler calls nothing else (and
                # reads what 1.13's weights_only reader cannot: floats, optimizer state).
                kwargs = {"weights_only": False} if _load_kwargs_supported("weights_only") else {}
                obj = torch.load(path, map_location=record, **kwargs)
                tensors, others = flatten(obj)
                result["top_level"] = _top_level(obj)
        elif fmt == "torchscript":
            module = torch.jit.load(path, map_location="cpu")
            tensors = list(module.state_dict().items())
            result["methods"] = sorted(module._c._method_names())
        elif fmt == "safetensors":
            header, tensors = _safetensors_read(path)
            result["metadata"] = header.get("__metadata__")
        elif fmt == "torchsharp_native":
            tensors = list(tsnative.load(path).items())
        elif fmt == "torchsharp_tensor":
            tensors = [("", tsnative.load_tensor(path))]
        elif fmt == "torchsharp_optimizer":
            # TorchSharp's own format for optimizer state; only TorchSharp's optimizer.load_state_dict reads its tensors.
            result["description"] = tsnative.describe_optimizer(path)
            result["inventory_error"] = "no PyTorch reader reads TorchSharp's optimizer format: only its header is described"
    except Exception as e:  # noqa: BLE001 - the inventory says why it is incomplete
        result["inventory_error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:400]}"
    result["tensors"] = _describe(tensors)
    result["storage"] = _storage_facts(tensors, locations)
    result["others"] = others[:200]
    return result


def _top_level(obj: Any) -> Dict[str, Any]:
    if isinstance(obj, dict):
        return {"type": type(obj).__name__, "keys": [str(k) for k in list(obj.keys())[:50]],
                "all_tensors": all(isinstance(v, torch.Tensor) for v in obj.values())}
    return {"type": type(obj).__name__, "keys": [], "all_tensors": False}


# ---------------------------------------------------------------------------------------------
# safetensors, read by its header (this project's reader: json + bytes; no package needed)

def _safetensors_dtypes() -> Dict[str, torch.dtype]:
    """safetensors' dtype names, from the shared table (catalogue/dtypes.json), for the dtypes this torch has."""
    from .. import catalogue

    table = {}
    for d in catalogue.dtypes():
        attr = d["torch"].replace("torch.", "")
        if d.get("safetensors") and hasattr(torch, attr):
            table[d["safetensors"]] = getattr(torch, attr)
    return table


_ST_DTYPES = _safetensors_dtypes()


def _safetensors_read(path: str) -> Tuple[Dict[str, Any], List[Tuple[str, torch.Tensor]]]:
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} is past the end of the {len(data)}-byte file")
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    tensors = []
    for key, info in header.items():
        if key == "__metadata__":
            continue
        dtype = _ST_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor '{key}' has dtype {info['dtype']}, which torch {torch.__version__} lacks")
        begin, end = info["data_offsets"]
        chunk = bytearray(body[begin:end])
        flat = torch.frombuffer(chunk, dtype=torch.uint8) if chunk else torch.empty(0, dtype=torch.uint8)
        t = flat.view(dtype) if chunk else torch.empty(0, dtype=dtype)
        tensors.append((key, t.reshape(info["shape"]).clone()))
    return header, tensors


# ---------------------------------------------------------------------------------------------
# Readers

def _torch_load(**kwargs: Any) -> Callable[[str], Any]:
    return lambda path: torch.load(path, **kwargs)


def _version() -> Tuple[int, int]:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def readers_for(fmt: str, safe: bool) -> List[Tuple[str, Optional[Callable[[str], Any]], str]]:
    """(reader name, call or None, why not run) for each reader this runtime has for the format.

    ``safe``: every global the pickle asks for is allowed; otherwise a reader that executes globals
    is listed, and not run.
    """
    out: List[Tuple[str, Optional[Callable[[str], Any]], str]] = []
    if fmt in ("torch_zip", "torch_legacy"):
        weights_only = _load_kwargs_supported("weights_only")
        # torch.load's default became weights_only=True in 2.6; before, the default executes globals.
        executes = not weights_only or _version() < (2, 6)

        def guarded(name: str, call: Callable[[str], Any], runs_code: bool) -> None:
            if runs_code and not safe:
                out.append((name, None, "not run: it would execute globals outside the allowlist (see the inventory)"))
            else:
                out.append((name, call, ""))

        default_runs_code = bool(executes)
        guarded("torch.load (default)", _torch_load(), default_runs_code)
        if weights_only:
            out.append(("torch.load(weights_only=True)", _torch_load(weights_only=True), ""))
        else:
            out.append(("torch.load(weights_only=True)", None, f"not applicable: torch {torch.__version__} has no weights_only"))
        if fmt == "torch_zip" and _load_kwargs_supported("mmap"):
            guarded("torch.load(mmap=True)", _torch_load(mmap=True), default_runs_code)
        elif fmt == "torch_zip":
            out.append(("torch.load(mmap=True)", None, f"not applicable: torch {torch.__version__} has no mmap (added in 2.1)"))
        else:
            out.append(("torch.load(mmap=True)", None, "not applicable: mmap needs the zip format (torch >= 1.6)"))
        guarded("torch.load(map_location='cpu')", _torch_load(map_location="cpu"), default_runs_code)
    elif fmt == "zip_damaged":
        out.append(("torch.load(weights_only=True)", _torch_load(weights_only=True, map_location="cpu")
                    if _load_kwargs_supported("weights_only") else None, "" if _load_kwargs_supported("weights_only") else "not applicable"))
    elif fmt == "torchscript":
        out.append(("torch.jit.load", lambda p: torch.jit.load(p, map_location="cpu").state_dict(), ""))
        out.append(("torch.load(weights_only=True)", _torch_load(weights_only=True) if _load_kwargs_supported("weights_only")
                    else None, "" if _load_kwargs_supported("weights_only") else "not applicable"))
    elif fmt == "safetensors":
        try:
            import safetensors.torch as st  # Debian 13's python3-safetensors

            out.append(("safetensors.torch.load_file", st.load_file, ""))
        except ImportError:
            out.append(("safetensors.torch.load_file", None, f"not applicable: no safetensors package for torch {torch.__version__}"))
    elif fmt == "torchsharp_native":
        out.append(("torchconformance.formats.tsnative.load", tsnative.load, ""))
    elif fmt == "torchsharp_tensor":
        out.append(("torchconformance.formats.tsnative.load_tensor", lambda p: {"": tsnative.load_tensor(p)}, ""))
    return out


def read(path: str, fmt: str, safe: bool) -> List[Dict[str, Any]]:
    """Every reader's result: read or not, its error on one line, and what it read."""
    results = []
    for name, call, why in readers_for(fmt, safe):
        entry: Dict[str, Any] = {"reader": name, "runtime_torch": torch.__version__}
        if call is None:
            entry.update(status="not_run", message=why)
        else:
            try:
                value = call(path)
                if isinstance(value, torch.jit.ScriptModule):
                    # torch < 2.x's torch.load hands a TorchScript archive to torch.jit.load, even with
                    # weights_only=True, and returns the module: its state dict is what it read.
                    entry["returned"] = type(value).__name__
                    value = value.state_dict()
                tensors, _ = flatten(value)
                entry.update(status="read", tensors=_describe(tensors))
            except Exception as e:  # noqa: BLE001 - a reader's failure is its result
                entry.update(status="failed", message=f"{type(e).__name__}: {' '.join(str(e).split())[:500]}")
        results.append(entry)
    return results


def check(args: Dict[str, Any]) -> Dict[str, Any]:
    """The worker op: the inventory (when asked) and every reader's result for one file."""
    path = args["path"]
    fmt = sniff(path)
    reply: Dict[str, Any] = {"format": fmt, "torch": torch.__version__}
    globals_ = globals_of(path, fmt) if fmt in ("torch_zip", "torch_legacy") else []
    safe = all(g["allowed"] or g["known_safe"] for g in globals_)
    if args.get("inventory"):
        reply["inventory"] = inspect(path)
    reply["readers"] = read(path, fmt, safe)
    return reply

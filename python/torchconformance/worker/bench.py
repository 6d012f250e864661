"""The PyTorch side of `make bench`: torch.save and torch.load on a large state dict, timed in
this process, so the orchestrator can report the codec's time as a ratio to PyTorch's, pair by pair:
torch.save + os.fsync of the file against the codec's durable save (it fsyncs the file, not its
folder), plain torch.save against the codec's save without fsync, torch.load(weights_only=True)
against the codec's load, torch.load(mmap=True) + reading every tensor once against the codec's
mapped load with its CRC check + the same reading."""

import gc
import inspect
import os
import statistics
import struct
import time
import zipfile
from collections import OrderedDict
from typing import Any, Callable, Dict, Optional

import torch


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure(action: Callable[[], Any], repeats: int, before: Optional[Callable[[], None]] = None) -> Dict[str, float]:
    """Median seconds over ``repeats``, and the largest resident-memory rise above the starting
    RSS (VmHWM, reset through /proc/self/clear_refs before each run). Before each run, untimed:
    ``before`` (a save's target removed, so every save writes a new file, as the codec's does), then
    sync, so no earlier step's dirty pages are written back during this one."""
    times, peaks = [], []
    for _ in range(repeats):
        if before is not None:
            before()
        os.sync()
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        base = _rss_kib("VmRSS")
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
        peaks.append((_rss_kib("VmHWM") - base) * 1024)
        del result
    return {"seconds": statistics.median(times), "peak_bytes": max(peaks)}


def _touch(sd: Any) -> Any:
    """Reads every element (a sum), so a memory-mapped load pays for its pages."""
    for t in sd.values():
        t.sum()
    return sd


def _save_durable(sd: Any, path: str) -> None:
    """torch.save, then fsync of the file: what the codec's durable save does (it does not fsync the folder)."""
    torch.save(sd, path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def crc_checked(directory: str, load_kwargs: Dict[str, Any], mmap: bool) -> Dict[str, bool]:
    """Whether this torch.load notices a flipped byte inside a tensor record (its CRC-32 then no
    longer matches): a small file, saved, corrupted and loaded with and without mmap."""
    path = os.path.join(directory, "bench-crc.pt")
    expected = torch.arange(1024, dtype=torch.float32)
    torch.save({"w": expected}, path)
    try:
        with zipfile.ZipFile(path) as z:
            info = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
        with open(path, "r+b") as f:
            f.seek(info.header_offset + 26)
            name_len, extra_len = struct.unpack("<HH", f.read(4))
            at = info.header_offset + 30 + name_len + extra_len + 100
            f.seek(at)
            byte = f.read(1)[0]
            f.seek(at)
            f.write(bytes([byte ^ 0x40]))
        found = {}
        for mode, extra in [("load", {}), ("load_mmap", {"mmap": True})] if mmap else [("load", {})]:
            try:
                torch.load(path, map_location="cpu", **load_kwargs, **extra)
                found[mode] = False
            except Exception:  # noqa: BLE001 - any refusal counts as a check
                found[mode] = True
        return found
    finally:
        os.remove(path)


def _warm_up(directory: str, load_kwargs: Dict[str, Any], mmap: bool) -> None:
    """Each step once, untimed, on a one-tensor file, so first-call costs (imports, allocators) are
    paid before the clock starts, as the TorchSharp worker pays its JIT's."""
    path = os.path.join(directory, "bench-warmup.pt")
    tiny = {"w": torch.randn(16)}
    try:
        _save_durable(tiny, path)
        torch.save(tiny, path)
        torch.load(path, map_location="cpu", **load_kwargs)
        if mmap:
            _touch(torch.load(path, mmap=True, map_location="cpu", **load_kwargs))
    finally:
        if os.path.exists(path):
            os.remove(path)


def run(directory: str, tensors: int, elements: int, repeats: int) -> Dict[str, Any]:
    torch.manual_seed(0)
    sd = OrderedDict((f"layer{i}.weight", torch.randn(elements)) for i in range(tensors))
    path = os.path.join(directory, "bench-torch.pt")
    parameters = inspect.signature(torch.load).parameters
    kwargs: Dict[str, Any] = {"weights_only": True} if "weights_only" in parameters else {}  # torch >= 1.13
    has_mmap = "mmap" in parameters  # torch >= 2.1

    def remove() -> None:
        if os.path.exists(path):
            os.remove(path)

    try:
        _warm_up(directory, kwargs, has_mmap)
        save_durable = measure(lambda: _save_durable(sd, path), repeats, remove)
        save = measure(lambda: torch.save(sd, path), repeats, remove)
        size = os.path.getsize(path)
        load = measure(lambda: torch.load(path, map_location="cpu", **kwargs), repeats)
        result = {
            "runtime": f"torch {torch.__version__}",
            "file_bytes": size,
            "save": save,
            "save_durable": save_durable,
            "load": load,
            "load_weights_only": bool(kwargs),
            "crc_checked": crc_checked(directory, kwargs, has_mmap),
        }
        if has_mmap:
            result["load_mmap_touch"] = measure(lambda: _touch(torch.load(path, mmap=True, map_location="cpu", **kwargs)), repeats)
    finally:
        remove()
    return result

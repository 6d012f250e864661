"""The PyTorch side of `make bench`: torch.save and torch.load on a large state dict, timed in
this process, so the orchestrator can report the codec's throughput as a ratio to PyTorch's."""

import gc
import inspect
import os
import statistics
import time
from collections import OrderedDict
from typing import Any, Callable, Dict

import torch


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure(action: Callable[[], Any], repeats: int) -> Dict[str, float]:
    """Median seconds over ``repeats``, and the largest resident-memory rise above the starting
    RSS (VmHWM, reset through /proc/self/clear_refs before each run)."""
    times, peaks = [], []
    for _ in range(repeats):
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


def run(directory: str, tensors: int, elements: int, repeats: int) -> Dict[str, Any]:
    torch.manual_seed(0)
    sd = OrderedDict((f"layer{i}.weight", torch.randn(elements)) for i in range(tensors))
    path = os.path.join(directory, "bench-torch.pt")
    try:
        save = measure(lambda: torch.save(sd, path), repeats)
        size = os.path.getsize(path)
        load = measure(lambda: torch.load(path, map_location="cpu"), repeats)
        result = {"runtime": f"torch {torch.__version__}", "file_bytes": size, "save": save, "load": load}
        if "mmap" in inspect.signature(torch.load).parameters:  # torch >= 2.1
            result["load_mmap_touch"] = measure(lambda: _touch(torch.load(path, mmap=True, map_location="cpu")), repeats)
    finally:
        if os.path.exists(path):
            os.remove(path)
    return result

"""gpu-check with faults planted from the test side (GpuCheckSpecs), so production code carries no test hooks.

``python3 -m tests.gpu_check_faults FAULTS ARGS...`` runs ``gpu-check ARGS...`` whose child processes come
from this module. FAULTS is ``KIND:CELL;KIND:CELL...``:

- ``crash``: the child dies (SIGSEGV) on that cell;
- ``hang``: the child hangs on that cell;
- ``cuda_error``: that cell fails with what a device-side assert leaves, and the child must give way to a
  fresh one (the context is gone);
- ``slow_start``: the child that starts at that cell takes 40 s to start, longer than a test's
  ``--cell-timeout``, which times cells, not start-up.
"""

import json
import os
import signal
import sys
import time
from typing import Dict, List

from torchconformance import gpucheck


def parse(faults: str) -> Dict[str, str]:
    """``crash:CELL;hang:CELL`` as {CELL: KIND}."""
    return dict(f.split(":", 1)[::-1] for f in faults.split(";") if ":" in f)


def _child(faults: Dict[str, str], plan_path: str, start: int) -> int:
    real_run_item = gpucheck.run_item

    def run_item(item, plan):
        kind = faults.get(item["cell"])
        if kind == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if kind == "hang":
            time.sleep(3600)
        if kind == "cuda_error":
            reply = {"id": 0, "status": "error",
                     "error": {"kind": "runtime_error", "message": "RuntimeError: CUDA error: device-side assert triggered (planted)"}}
            return {"reply": reply, "seconds": 0.0}, True
        return real_run_item(item, plan)

    gpucheck.run_item = run_item
    with open(plan_path, encoding="utf-8") as f:
        items = json.load(f)["items"]
    if start < len(items) and faults.get(items[start]["cell"]) == "slow_start":
        time.sleep(40)
    return gpucheck.child_main(plan_path, start)


def main(argv: List[str]) -> int:
    if len(argv) < 1:
        print(__doc__, file=sys.stderr)
        return 2
    faults, rest = argv[0], argv[1:]
    if len(rest) == 3 and rest[0] == "child":
        return _child(parse(faults), rest[1], int(rest[2]))
    gpucheck.CHILD_COMMAND = [sys.executable, "-m", "tests.gpu_check_faults", faults, "child"]
    return gpucheck.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

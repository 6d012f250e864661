"""``python3 -m torchconformance gpu-check --out DIR [--device cuda|cpu]``: the GPU leg, in one run.

For a machine with CUDA torch and no .NET (``make gpu-check``). It:

1. produces every golden case on the device (trained there, optimizers stepped there, saved from
   device tensors whose storages say ``cuda:0``) as a fixture set ``fixtures/<id>/`` in the layout
   of ``make fixtures``, ``<id>`` being ``pytorch-<major>.<minor>-cuda``;
2. loads every committed fixture set (TorchSharp's, each PyTorch version's) and its own onto the
   device (``map_location``), resumes training there, and judges each cell with ``judge.py``, the
   twin of the orchestrator's judge, then the ledger (known-failures.json);
3. writes ``gpu-report.json`` in the main report's schema (2), which ``conformance merge`` joins;
4. packs both into ``gpu-check-<id>.tar.gz`` (at most 16 MiB) in ``--out``, beside the report and
   ``gpu-check.log``: three files, since at most 8 come back from the GPU machine.

The cells run in child processes (``python3 -m torchconformance.gpu_check child PLAN K``), which answer
one JSON line per cell on a guarded stdout; the parent (``Runner``) turns a crash or a hang into that
cell's ``worker_crash`` / ``worker_timeout`` and starts a fresh child at the next cell, stops starting
cells when ``--budget`` is spent (the rest are skipped, named), and rewrites report and archive after
every fixture set, so that one shot on a borrowed GPU never comes back empty.

``--device cpu`` simulates the device on the CPU: every path above runs, files are written as a GPU
writes them (storages tagged ``cuda:0``, ``device.simulating``), and every id says so
(``pytorch-2.6-cuda-cpu-simulated``), so nothing it writes can pass for a CUDA file.
"""

import argparse
import hashlib
import io
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from . import device as devices
from . import catalogue, judge

MAX_ARCHIVE_BYTES = 16 * 1024 * 1024
# A child that met a sticky CUDA error (the context is lost for every later call) finishes its
# cell, then exits with this code: the parent goes on in a fresh process from the next cell.
EXIT_RESTART = 75
_STICKY = ("CUDA error", "cudaError", "CUBLAS_STATUS", "CUDNN_STATUS", "device-side assert", "illegal memory access")
# The seconds kept back from --budget to write the report and pack the archive.
PACK_RESERVE = 20.0
# The seconds a child may take to start (import torch, open the device) before it says "ready". Kept
# apart from --cell-timeout: a loaded machine's slow import must not read as a cell that hangs.
START_TIMEOUT = 300.0

NOT_GOLDEN = {c["name"] for c in catalogue.cases() if not c["golden"]}  # resnet18's ~45 MB artifacts
# Cases the device leg does not run yet, with why: CUDA has kernels for few quantized ops (no per-channel
# quantize), so the twin cannot be moved there; its committed fixtures are skipped too.
NOT_ON_DEVICE = {"quantized": "CUDA quantized support is partial; the device leg does not run the quantized case yet"}


def routes_of(spec: judge.CaseSpec) -> List[str]:
    """Catalogue.RoutesOf: the case's routes from cases.json (defaults.routes when it names none)."""
    return list(catalogue.case(spec.name)["routes"])


def extension(route: str) -> str:
    """The catalogue's routes.*.extension, as Catalogue.ExtensionOf reads it: ``.hf`` names a folder (Hugging Face's layouts)."""
    return str(catalogue.document()["routes"][route]["extension"])


def load_modes(spec: judge.CaseSpec, route: str) -> List[str]:
    """Catalogue.LoadModes for a PyTorch consumer: the route's modes, then the case's own where the route takes them."""
    table = catalogue.document()["routes"][route]
    modes = list(table["modes"].get("pytorch", table["modes"]["*"]))
    if table.get("case_modes"):
        if spec.partial is not None:
            modes.append(judge.STRICT_FALSE)
        if spec.mismatch is not None:
            modes.append(judge.SHAPE_MISMATCH)
    return modes



def _request(op: str, args: Dict[str, Any]) -> Dict[str, Any]:
    from . import worker

    return worker.handle({"id": 0, "op": op, "args": args})


def _args(spec: judge.CaseSpec, route: str, path: str, device: str, simulated: bool, mode: Optional[str] = None) -> Dict[str, Any]:
    a: Dict[str, Any] = {"case": spec.name, "route": route, "path": path, "seed": 0, "device": device}
    if simulated:
        a["simulate_cuda"] = True  # device.simulating: cuda:0 tags on save, map_location on load
    if spec.is_checkpoint:
        a["optimizer"] = spec.optimizer
    if mode is not None:
        a["mode"] = mode
    return a


# ---- the plan: one item per artifact to write, then one per cell to judge ----

def plan_produce(set_dir: str, rid: str, case_names: List[str]) -> List[Dict[str, Any]]:
    return [{"op": "produce", "case": name, "route": route, "producer": rid,
             "path": os.path.join(set_dir, f"{name}.{route}{extension(route)}"),
             "cell": f"{name}/{route}/{rid}->{rid}/default"}
            for name in case_names for route in routes_of(judge.CASES[name])]


def fixture_sets(fixtures_dir: str) -> List[Tuple[str, str]]:
    """(set id, folder) for every committed set under ``fixtures_dir``, in name order."""
    if not os.path.isdir(fixtures_dir):
        return []
    return [(d, os.path.join(fixtures_dir, d)) for d in sorted(os.listdir(fixtures_dir)) if os.path.isdir(os.path.join(fixtures_dir, d))]


def artifacts(set_dir: str) -> List[Tuple[str, str, str]]:
    """(case, route, artifact path) for each ``<case>.<route>.<ext>`` (a file, or a ``.hf`` folder) with its observation beside it (GoldenFixtures.Find)."""
    found = []
    for f in sorted(os.listdir(set_dir)):
        parts = f.split(".")
        if f.endswith(".json") or len(parts) != 3:
            continue
        if os.path.exists(os.path.join(set_dir, f"{parts[0]}.{parts[1]}.json")):
            found.append((parts[0], parts[1], os.path.join(set_dir, f)))
    return found


def plan_consume(producer_id: str, set_dir: str, rid: str, case_names: Optional[List[str]]) -> List[Dict[str, Any]]:
    """Every cell of one fixture set onto the device, one item per load mode."""
    items = []
    for name, route, path in artifacts(set_dir):
        spec = judge.CASES.get(name)
        if spec is None or name in NOT_ON_DEVICE or route not in routes_of(spec) or (case_names is not None and name not in case_names):
            continue
        for mode in load_modes(spec, route):
            items.append({"op": "consume", "case": name, "route": route, "mode": mode, "producer": producer_id, "path": path,
                          "cell": f"{name}/{route}/{producer_id}->{rid}/{mode}"})
    return items


# ---- the child: runs items in order, one JSON line per item on a guarded stdout ----

def _sticky(reply: Dict[str, Any]) -> bool:
    error = reply.get("error") or {}
    text = f"{error.get('message', '')} {error.get('detail', '')}"
    return any(s in text for s in _STICKY)


def run_item(item: Dict[str, Any], plan: Dict[str, Any], ledger: Optional[judge.Ledger]) -> Tuple[Dict[str, Any], bool]:
    """One item in this process: (the line for the parent, whether the CUDA context is now lost)."""
    import torch

    rid, device, simulated = plan["rid"], plan["device"], plan["simulated"]
    spec = judge.CASES[item["case"]]
    started = time.monotonic()
    if item["op"] == "produce":
        path = item["path"]
        reply = _request("produce_checkpoint" if spec.is_checkpoint else "produce", _args(spec, item["route"], path, device, simulated))
        if reply["status"] != "ok":
            _remove(path)
            if reply["error"]["kind"] == "not_applicable":
                return {"not_applicable": reply["error"]["message"]}, False
            p = judge._problem("save_error" if reply["error"]["kind"] == "save_error" else "runtime_error", f"producer {rid}",
                               judge.strip_path(reply["error"]["message"], path))
            verdict = judge._failed(p)
            if ledger is not None:  # a declared producer failure (safetensors' save_model on views) is one here too
                verdict = ledger.apply(item["cell"], verdict)
            row = {"cell": item["cell"], "verdict": verdict, "artifact": path, "seconds": time.monotonic() - started}
            return {"row": result_json(row)}, _sticky(reply)
        manifest = {"producer": rid, "producer_version": torch.__version__, "case": item["case"], "route": item["route"], "seed": 0,
                    "device": device, "simulated": simulated, "observation": reply["result"]}
        with open(os.path.splitext(path)[0] + ".json", "w", encoding="utf-8") as f:
            f.write(json.dumps(manifest, indent=2) + "\n")
        return {"written": path}, False
    path = item["path"]
    manifest_path = os.path.splitext(path)[0] + ".json"
    try:
        with open(manifest_path, encoding="utf-8") as f:
            expected = json.load(f)["observation"]
    except (OSError, ValueError, KeyError) as e:
        v = judge._failed(judge._problem("fixture_error", manifest_path, f"{manifest_path}: {type(e).__name__}: {e}"))
        return {"row": result_json({"cell": item["cell"], "artifact": path, "seconds": 0.0, "verdict": v})}, False
    tol = judge.tolerance_for(spec, judge.device_of(item["producer"]), judge.device_of(rid))
    reply = _request("consume_checkpoint" if spec.is_checkpoint else "consume", _args(spec, item["route"], path, device, simulated, item["mode"]))
    verdict = judge.judge_cell(item["case"], rid, item["mode"], expected, reply, path, tol, route=item["route"])
    if ledger is not None:
        verdict = ledger.apply(item["cell"], verdict)
    row = {"cell": item["cell"], "verdict": verdict, "artifact": path, "seconds": time.monotonic() - started,
           "archive_version": expected.get("archive_version")}
    return {"row": result_json(row)}, _sticky(reply)


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)


def child_main(plan_path: str, start: int) -> int:
    """``gpu_check child PLAN START``: items START.. of the plan, each answered by one line on fd 1."""
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever torch or a model prints goes to stderr, never into the answers
    sys.stdout = sys.stderr
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    devices.prepare(plan["device"])
    ledger = judge.Ledger(plan["ledger"]) if plan.get("ledger") else None
    from . import worker  # noqa: F401 - imported before "ready", so that no cell's time includes start-up

    # Tests only (GpuCheckSpecs): "crash:CELL;hang:CELL;cuda_error:CELL" makes this process die, hang, or
    # fail that cell with a CUDA error (after which it must give way to a fresh process) on those cells;
    # "slow_start:CELL" makes the process that starts at CELL take 12 s to start, longer than a test's --cell-timeout.
    faults = dict(f.split(":", 1)[::-1] for f in os.environ.get("TORCHCONFORMANCE_GPU_CHECK_FAULT", "").split(";") if ":" in f)
    if start < len(plan["items"]) and faults.get(plan["items"][start]["cell"]) == "slow_start":
        time.sleep(12)

    # Start-up (torch, the device, the worker's imports) is over: from here on the parent times each cell.
    proto.write(json.dumps({"ready": True}) + "\n")
    proto.flush()
    for k in range(start, len(plan["items"])):
        item = plan["items"][k]
        if faults.get(item["cell"]) == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        if faults.get(item["cell"]) == "hang":
            time.sleep(3600)
        if faults.get(item["cell"]) == "cuda_error":  # what a device-side assert leaves: this cell fails, the context is gone
            v = judge._failed(judge._problem("runtime_error", plan["rid"], "RuntimeError: CUDA error: device-side assert triggered (planted)"))
            line, sticky = {"row": result_json({"cell": item["cell"], "verdict": v, "artifact": item["path"], "seconds": 0.0})}, True
        else:
            line, sticky = run_item(item, plan, ledger)
        line["i"] = k
        proto.write(json.dumps(line, allow_nan=False) + "\n")
        proto.flush()
        if sticky and (plan["device"].startswith("cuda") or plan["simulated"]):
            print(f"gpu-check: a CUDA error in {item['cell']} leaves this process's context unusable; going on in a fresh one", file=sys.stderr, flush=True)
            return EXIT_RESTART
    return 0


# ---- the parent: children, a timeout per cell, a deadline, nothing lost ----

def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class Runner:
    """Runs a plan's items in child processes. A child that crashes or hangs costs one cell, which is
    judged worker_crash / worker_timeout (like the orchestrator's); the next child starts at the cell
    after it. Past the deadline no cell starts: the rest are skipped, naming the budget."""

    def __init__(self, plan_path: str, plan: Dict[str, Any], cell_timeout: float, deadline: Optional[float], ledger: Optional[judge.Ledger], log,
                 start_timeout: float = START_TIMEOUT) -> None:
        self.plan_path, self.plan = plan_path, plan
        self.cell_timeout, self.deadline, self.ledger, self.log = cell_timeout, deadline, ledger, log
        self.start_timeout = start_timeout
        self.children = 0
        self.over_budget = False

    def _verdict_row(self, item: Dict[str, Any], code: str, message: str) -> Dict[str, Any]:
        spec = judge.CASES[item["case"]]
        p = judge._problem(code, item["producer"] if item["op"] == "produce" else self.plan["rid"], message)
        v = judge._failed(p)
        if item["op"] == "consume":
            v.tolerance = judge.tolerance_for(spec, judge.device_of(item["producer"]), judge.device_of(self.plan["rid"]))
            if self.ledger is not None:
                v = self.ledger.apply(item["cell"], v)
        return result_json({"cell": item["cell"], "verdict": v, "artifact": item["path"], "seconds": 0.0})

    def _skipped_row(self, item: Dict[str, Any], why: str) -> Dict[str, Any]:
        return result_json({"cell": item["cell"], "verdict": judge.CellVerdict("skipped", [], f"skipped: {why}"), "artifact": item["path"], "seconds": 0.0})

    def _left(self) -> Optional[float]:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def run(self, first: int, last: int, on_line) -> None:
        """Items first..last-1; ``on_line(k, line)`` for each, in order, exactly once."""
        k = first
        while k < last:
            left = self._left()
            if left is not None and left <= 0:
                self._stop(k, last, on_line)
                return
            self.children += 1
            k = self._one_child(k, last, on_line)

    def _one_child(self, k: int, last: int, on_line) -> int:
        """Starts a child at item k and takes its answers until it ends, hangs or the deadline; returns the next item."""
        env = dict(os.environ)
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in [package_parent, env.get("PYTHONPATH", "")] if p)
        env["PYTHONUNBUFFERED"] = "1"
        child = subprocess.Popen([sys.executable, "-m", "torchconformance.gpu_check", "child", self.plan_path, str(k)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
        answers: "queue.Queue[Optional[str]]" = queue.Queue()
        tail: List[str] = []

        def pump_out() -> None:
            for ln in child.stdout:  # type: ignore[union-attr]
                answers.put(ln.decode("utf-8", "replace"))
            answers.put(None)

        def pump_err() -> None:  # the child's log, passed on, its last lines kept for a crash's message
            for ln in child.stderr:  # type: ignore[union-attr]
                text = ln.decode("utf-8", "replace")
                sys.stderr.write(text)
                sys.stderr.flush()
                tail.append(text.rstrip())
                del tail[:-8]

        pumps = [threading.Thread(target=pump_out, daemon=True), threading.Thread(target=pump_err, daemon=True)]
        for t in pumps:
            t.start()
        ready = False
        try:
            while k < last:
                item = self.plan["items"][k]
                left = self._left()
                limit = self.cell_timeout if ready else self.start_timeout
                wait = limit if left is None else max(0.0, min(limit, left))
                try:
                    text = answers.get(timeout=wait)
                except queue.Empty:
                    if left is not None and left <= limit:
                        self.log(f"  budget spent during {item['cell']}")
                        self._stop(k, last, on_line)
                        return last
                    what = (f"no answer within {limit:.0f} s" if ready
                            else f"the process did not start within {limit:.0f} s (importing torch, opening the device)")
                    self.log(f"  HANG {item['cell']}: {what}; killed, going on in a fresh process")
                    on_line(k, {"row": self._verdict_row(item, "worker_timeout", f"{what}: the gpu-check process was killed; "
                                                                                 "the cells after it ran in a fresh one")})
                    return k + 1
                if text is not None and not ready:
                    try:
                        ready = json.loads(text) == {"ready": True}
                    except ValueError:
                        ready = False
                    if ready:
                        continue
                    on_line(k, {"row": self._verdict_row(item, "protocol_error", f"gpu-check's child did not say it was ready: {text[:200]!r}")})
                    return k + 1
                if text is None:  # the child ended
                    code = child.wait()
                    for t in pumps:
                        t.join(timeout=5)
                    if code == EXIT_RESTART:
                        return k
                    self.log(f"  CRASH {item['cell']}: the process ended ({_signal_name(code)}); going on in a fresh process")
                    said = " | ".join(x for x in tail if x)[-400:]
                    on_line(k, {"row": self._verdict_row(item, "worker_crash", f"the gpu-check process ended with {_signal_name(code)} on this cell"
                                                                                f"{': ' + said if said else ''}; the cells after it ran in a fresh one")})
                    return k + 1
                try:
                    line = json.loads(text)
                    if not isinstance(line, dict) or line.get("i") != k:
                        raise ValueError(f"expected the answer for item {k}")
                except ValueError as e:
                    on_line(k, {"row": self._verdict_row(item, "protocol_error", f"gpu-check's child answered garbage ({e}): {text[:200]!r}")})
                    return k + 1
                on_line(k, line)
                k += 1
            return k
        finally:
            if child.poll() is None:
                self._kill(child)

    def _kill(self, child: subprocess.Popen) -> None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            child.kill()
        child.wait()

    def _stop(self, k: int, last: int, on_line) -> None:
        self.over_budget = True
        why = f"gpu-check's budget ran out before this cell (--budget); run it again with GPU_CASES for the rest"
        for j in range(k, last):
            on_line(j, {"row": self._skipped_row(self.plan["items"][j], why)})


def _finite(x: Optional[float]) -> Optional[float]:
    import math

    return None if x is None else x if math.isfinite(x) else sys.float_info.max


def result_json(r: Dict[str, Any]) -> Dict[str, Any]:
    """One result as ReportJson.Build writes it."""
    v: judge.CellVerdict = r["verdict"]
    case, route, pair, mode = r["cell"].split("/")
    producer, consumer = pair.split("->")
    return {
        "cell": r["cell"], "case": case, "producer": producer, "consumer": consumer, "route": route, "mode": mode,
        "outcome": v.outcome, "message": v.message,
        "problems": [{"code": p["code"], "subject": p["subject"], "message": p["message"], "measure": _finite(p.get("measure"))} for p in v.problems],
        "max_abs_diff": _finite(v.diff.max_abs) if v.diff else None,
        "max_rel_diff": _finite(v.diff.max_rel) if v.diff else None,
        "train_eval_max_abs_diff": _finite(v.train_eval_diff),
        "archive_version": r.get("archive_version"),
        "tolerance": {"atol": v.tolerance.atol, "rtol": v.tolerance.rtol} if v.tolerance else None,
        "known_failure": v.known_failure,
        "artifact": r.get("artifact"),
        "seconds": round(r.get("seconds", 0.0), 3),
    }


def summary_line(counts: Dict[str, int]) -> str:
    """ReportMerge.SummaryLine's words; skips here are cells the budget left out, and the line says so."""
    ok = counts.get("fail", 0) == 0
    skips = counts.get("skipped", 0)
    return (f"CONFORMANCE SUITE {'PASSED' if ok else 'FAILED'}: {counts.get('pass', 0)} passes, {counts.get('known_failure', 0)} known failures, "
            f"{counts.get('fail', 0)} unexpected failures, {skips} skips{f' ({skips} past the gpu-check budget)' if skips else ''}, "
            f"{counts.get('not_applicable', 0)} not applicable")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build_report(rid: str, device: str, stated: Dict[str, Any], hello: Dict[str, Any], rows: List[Dict[str, Any]],
                 started: float, wall: float, case_filter: Optional[str], argv: List[str]) -> Dict[str, Any]:
    counts = {o: sum(1 for r in rows if r["outcome"] == o) for o in ("pass", "known_failure", "fail", "skipped", "not_applicable")}
    hello = dict(hello)
    hello["device"] = stated
    return {
        "schema": 2,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(started)),
        "seconds": round(wall, 1),
        "complete": False,
        "selection": {"cells": None, "case": case_filter, "route": None, "runtime": rid, "mode": None, "shard": None},
        "environment": {
            "machine": {"cpu_model": _cpu_model(), "cores": os.cpu_count(), "os": platform.platform(), "dotnet": None,
                        "gpu": stated.get("gpu"), "python": platform.python_version()},
            "threads": hello.get("threads"),
            "timeout_seconds": None,
            "start_timeout_seconds": None,
            "device": stated,
        },
        "runtimes": [{
            "id": rid, "kind": "pytorch", "version": hello.get("version"), "device": devices.label(device), "status": "available",
            "where": "gpu-check", "reason": None, "launch": "python3 -m torchconformance " + " ".join(argv), "hello": hello, "listings": {},
        }],
        "results": rows,
        "ledger_errors": [],
        "summary": dict(counts, line=summary_line(counts)),
        "gpu_check": {"device": stated, "simulated": stated["simulated"],
                      "note": "judged by python/torchconformance/judge.py (twin of Judgement/); known failures matched against "
                              "known-failures.json, whose own checks (stale, overlap, expiry) need the whole matrix and stay with the orchestrator"},
    }


def pack(work: str, out_dir: str, rid: str, members: List[str]) -> str:
    """One .tar.gz of ``members`` (paths under ``work``) in ``out_dir``, replaced atomically; refuses one over MAX_ARCHIVE_BYTES."""
    target = os.path.join(out_dir, f"gpu-check-{rid}.tar.gz")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=9) as tar:
        for m in members:
            tar.add(os.path.join(work, m), arcname=m)
    data = buf.getvalue()
    if len(data) > MAX_ARCHIVE_BYTES:
        raise RuntimeError(f"{target}: {len(data)} bytes is over the {MAX_ARCHIVE_BYTES} bytes that come back from a GPU machine")
    _write_atomically(target, data)
    return target


def _write_atomically(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Tee:
    """stderr, copied into ``gpu-check.log`` in --out (the log comes back with the archive)."""

    def __init__(self, stream, path: str) -> None:
        self.stream, self.file = stream, open(path, "a", encoding="utf-8")

    def write(self, text: str) -> int:
        self.file.write(text)
        self.file.flush()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()
        self.file.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m torchconformance gpu-check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder: gpu-check-<id>.tar.gz, gpu-report.json and gpu-check.log, nothing else")
    ap.add_argument("--device", default="cuda", help="cuda (default), or cpu to simulate the device (ids say cuda-cpu-simulated)")
    ap.add_argument("--cases", default=None, help="comma-separated case names (default: every golden case)")
    ap.add_argument("--fixtures", default=os.path.join(_repo_root(), "fixtures"), help="the committed fixture sets to load onto the device")
    ap.add_argument("--ledger", default=os.path.join(_repo_root(), "known-failures.json"), help="known failures ('' for none)")
    ap.add_argument("--budget", type=float, default=0,
                    help="seconds for the whole run (0: none): past it minus %.0f s no cell starts, the rest are skipped, "
                         "the archive is packed with what ran, and the exit code is 3" % PACK_RESERVE)
    ap.add_argument("--cell-timeout", type=float, default=180, help="seconds one cell may take before its process is killed (worker_timeout)")
    ap.add_argument("--start-timeout", type=float, default=START_TIMEOUT, help="seconds a process may take to import torch and open the device")
    ap.add_argument("--work", default=None, help="where the fixture set is written before packing (default: a temporary folder, removed after)")
    ns = ap.parse_args(argv)
    started = time.time()
    t0 = time.monotonic()
    os.makedirs(ns.out, exist_ok=True)
    sys.stderr = _Tee(sys.stderr, os.path.join(ns.out, "gpu-check.log"))  # type: ignore[assignment]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    stated = devices.prepare(ns.device)
    rid = devices.runtime_id(ns.device)
    golden = [c for c in judge.CASES if c not in NOT_GOLDEN and c not in NOT_ON_DEVICE]
    case_names = golden if ns.cases is None else [c.strip() for c in ns.cases.split(",") if c.strip()]
    unknown = [c for c in case_names if c not in judge.CASES]
    if unknown:
        log(f"gpu-check: unknown case(s) {', '.join(unknown)} (known: {', '.join(judge.CASES)})")
        return 2
    work = ns.work or tempfile.mkdtemp(prefix=f"gpu-check-{rid}-")
    set_dir = os.path.join(work, "fixtures", rid)
    _remove(set_dir)
    os.makedirs(set_dir)
    ledger = judge.Ledger(ns.ledger) if ns.ledger else None
    hello = _request("hello", {})["result"]
    deadline = t0 + ns.budget - PACK_RESERVE if ns.budget else None
    log(f"gpu-check: {rid} on {ns.device}{' (SIMULATED: cpu standing in for cuda, storages saved as cuda:0)' if stated['simulated'] else ''}, "
        f"torch {hello['version']}; TF32 off: {json.dumps({k: v for k, v in stated.items() if 'tf32' in k or 'precision' in k or 'determin' in k})}"
        f"{'; budget %.0f s' % ns.budget if ns.budget else ''}")

    rows: List[Dict[str, Any]] = []
    children = 0
    timing: Dict[str, float] = {}

    def run_phase(items: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """The items in child processes; the lines, in item order."""
        nonlocal children
        plan = {"rid": rid, "device": ns.device, "simulated": stated["simulated"], "ledger": ns.ledger or None, "items": items}
        plan_path = os.path.join(work, "plan.json")
        with open(plan_path, "w", encoding="utf-8") as f:
            json.dump(plan, f)
        got: Dict[int, Dict[str, Any]] = {}
        runner = Runner(plan_path, plan, ns.cell_timeout, deadline, ledger, log, ns.start_timeout)
        runner.run(0, len(items), lambda k, line: got.__setitem__(k, line))
        children += runner.children
        return [got[k] for k in range(len(items))]

    def checkpoint(final: bool) -> Tuple[Dict[str, Any], str]:
        """The report and the archive as they stand: a run stopped from outside still leaves both."""
        wall = time.monotonic() - t0
        report = build_report(rid, ns.device, stated, hello, rows, started, wall, ns.cases, ["gpu-check"] + argv)
        report["gpu_check"]["timing"] = dict(timing)
        report["gpu_check"]["finished"] = final
        report["gpu_check"]["processes"] = children
        text = json.dumps(report, indent=2, allow_nan=False) + "\n"
        with open(os.path.join(work, "gpu-report.json"), "w", encoding="utf-8") as f:
            f.write(text)
        _write_atomically(os.path.join(ns.out, "gpu-report.json"), text.encode("utf-8"))
        return report, pack(work, ns.out, rid, [os.path.join("fixtures", rid), "gpu-report.json"])

    items = plan_produce(set_dir, rid, case_names)
    log(f"1/3 producing fixtures/{rid}/ ({len(case_names)} cases, {len(items)} artifacts)")
    for item, line in zip(items, run_phase(items)):
        if "not_applicable" in line:
            log(f"  {rid} does not write {item['case']}.{item['route']}: {line['not_applicable']}")
        elif "row" in line:
            rows.append(line["row"])
            outcome = line["row"]["outcome"]
            if outcome in ("fail", "known_failure"):
                known = f" (known: {line['row']['known_failure']['id']})" if outcome == "known_failure" else ""
                log(f"  {'FAIL' if outcome == 'fail' else 'known failure'} producing {item['path']}{known}: {line['row']['message'][:300]}")
    timing["produce_seconds"] = round(time.monotonic() - t0, 1)
    checkpoint(False)

    log("2/3 loading every fixture set onto the device")
    sets = [(s + "@golden", d) for s, d in fixture_sets(ns.fixtures) if s != rid]
    sets.append((rid, set_dir))
    for producer_id, d in sets:
        phase = [line["row"] for line in run_phase(plan_consume(producer_id, d, rid, None if ns.cases is None else case_names))]
        for r in phase:
            if r["outcome"] == "fail":
                log(f"  FAIL {r['cell']}: {r['message'][:300]}")
        rows.extend(phase)
        tally = {o: sum(1 for r in phase if r["outcome"] == o) for o in ("pass", "known_failure", "fail", "skipped", "not_applicable")}
        log(f"  {producer_id}: {len(phase)} cells ({', '.join(f'{n} {o}' for o, n in tally.items() if n)})")
        checkpoint(False)
    wall = time.monotonic() - t0
    timing["consume_seconds"] = round(wall - timing["produce_seconds"], 1)

    report, archive = checkpoint(True)
    size = os.path.getsize(archive)
    with open(archive, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    log(f"3/3 {archive}: {size} bytes ({size / 1048576:.2f} MiB of 16), sha256 {digest}")
    log(f"gpu-check took {wall:.1f} s (produce {timing['produce_seconds']:.1f} s, consume {timing['consume_seconds']:.1f} s) in {children} process(es)")
    if not ns.work:
        shutil.rmtree(work, ignore_errors=True)
    print(report["summary"]["line"])
    skipped = report["summary"]["skipped"]
    if skipped:
        log(f"gpu-check: the budget of {ns.budget:.0f} s ran out; {skipped} cells skipped (named in the report)")
        return 3
    return 0 if report["summary"]["fail"] == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        sys.exit(child_main(sys.argv[2], int(sys.argv[3])))
    sys.exit(main(sys.argv[1:]))

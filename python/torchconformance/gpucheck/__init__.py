"""``python3 -m torchconformance gpu-check --out DIR [--device cuda|cpu]``: the GPU leg observes, in one run.

For a machine with CUDA torch and no .NET (``scripts/gpu-check.sh``). It judges nothing: the verdicts
come from the orchestrator on a CPU machine, ``conformance judge-gpu ARCHIVE``, with the same judge,
ledger and report writers as the matrix. It:

1. produces every golden case on the device (trained there, optimizers stepped there, saved from
   device tensors whose storages say ``cuda:0``) as a fixture set ``fixtures/<id>/`` in the layout
   of ``make fixtures``, ``<id>`` being ``pytorch-<major>.<minor>-cuda``;
2. loads every committed fixture set (TorchSharp's, each PyTorch version's) and its own onto the
   device (``map_location``), resumes training there, and keeps each cell's raw reply, exactly as the
   worker would have sent it to the orchestrator (or what the parent saw instead: a crash, a hang,
   garbage), with the seconds it took and the SHA-256 of the observation it is to be judged against;
3. packs the set and ``gpu-run.json`` (the plan's facts, the device, every raw reply) into
   ``gpu-check-<id>.tar.gz`` (at most 16 MiB) in ``--out``, beside ``gpu-check.log``: two files,
   since at most 8 come back from the GPU machine. The closing line is a tally, not a verdict.

The cells run in child processes (``python3 -m torchconformance.gpucheck child PLAN K``), which answer
one JSON line per cell on a guarded stdout; the parent (``Runner``) turns a crash or a hang into that
cell's ``worker_crash`` / ``worker_timeout``, starts a fresh child at the next cell, stops starting
cells when ``--budget`` is spent (the rest are recorded as skipped, named), and rewrites the archive
after every fixture set, so that one shot on a borrowed GPU never comes back empty.

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

from .. import catalogue
from ..worker import device as devices

MAX_ARCHIVE_BYTES = 16 * 1024 * 1024
# What the orchestrator's `judge-gpu` reads: bump it when a field changes meaning.
RUN_SCHEMA = "gpu-run/1"
# A child that met a sticky CUDA error (the context is lost for every later call) finishes its
# cell, then exits with this code: the parent goes on in a fresh process from the next cell.
EXIT_RESTART = 75
_STICKY = ("CUDA error", "cudaError", "CUBLAS_STATUS", "CUDNN_STATUS", "device-side assert", "illegal memory access")
# The seconds kept back from --budget to pack the archive.
PACK_RESERVE = 20.0
# How a child is started: items K.. of the plan file (``child PLAN K``). python/tests/gpu_check_faults.py
# starts its own children instead, which plant crashes, hangs and CUDA errors from the test side.
CHILD_COMMAND = [sys.executable, "-m", "torchconformance.gpucheck", "child"]

# The seconds a child may take to start (import torch, open the device) before it says "ready". Kept
# apart from --cell-timeout: a loaded machine's slow import must not read as a cell that hangs.
START_TIMEOUT = 300.0

CASES = {c["name"]: c for c in catalogue.cases()}
NOT_GOLDEN = {name for name, c in CASES.items() if not c["golden"]}  # resnet18's ~45 MB artifacts
# Cases the device leg does not run yet, with why: CUDA has kernels for few quantized ops (no per-channel
# quantize), so the twin cannot be moved there; its committed fixtures are skipped too.
NOT_ON_DEVICE = {"quantized": "CUDA quantized support is partial; the device leg does not run the quantized case yet"}


def is_checkpoint(name: str) -> bool:
    return CASES[name].get("optimizer") is not None


def routes_of(name: str) -> List[str]:
    """Catalogue.RoutesOf: the case's routes from cases.json (defaults.routes when it names none)."""
    return list(CASES[name]["routes"])


def extension(route: str) -> str:
    """The catalogue's routes.*.extension, as Catalogue.ExtensionOf reads it: ``.hf`` names a folder (Hugging Face's layouts)."""
    return str(catalogue.document()["routes"][route]["extension"])


def load_modes(name: str, route: str) -> List[str]:
    """Catalogue.LoadModes for a PyTorch consumer: the route's modes, then the case's own where the route takes them.
    judge-gpu plans the same cells with Catalogue.LoadModes and names any this plan missed."""
    table = catalogue.document()["routes"][route]
    modes = list(table["modes"].get("pytorch", table["modes"]["*"]))
    if table.get("case_modes"):
        if CASES[name].get("partial_load") is not None:
            modes.append("strict_false")
        if CASES[name].get("shape_mismatch") is not None:
            modes.append("shape_mismatch")
    return modes


def _request(op: str, args: Dict[str, Any]) -> Dict[str, Any]:
    """The reply exactly as the worker sends it on the wire (worker.handle_json: no NaN, JSON-encodable or an error)."""
    from .. import worker

    return json.loads(worker.handle_json(json.dumps({"id": 0, "op": op, "args": args})))


def _args(name: str, route: str, path: str, device: str, simulated: bool, mode: Optional[str] = None) -> Dict[str, Any]:
    a: Dict[str, Any] = {"case": name, "route": route, "path": path, "seed": 0, "device": device}
    if simulated:
        a["simulate_cuda"] = True  # device.simulating: cuda:0 tags on save, map_location on load
    if is_checkpoint(name):
        a["optimizer"] = CASES[name]["optimizer"]
    if mode is not None:
        a["mode"] = mode
    return a


# ---- the plan: one item per artifact to write, then one per cell to observe ----

def plan_produce(set_dir: str, rid: str, case_names: List[str]) -> List[Dict[str, Any]]:
    return [{"op": "produce", "case": name, "route": route, "mode": "default", "producer": rid, "set": rid,
             "path": os.path.join(set_dir, f"{name}.{route}{extension(route)}"),
             "cell": f"{name}/{route}/{rid}->{rid}/default"}
            for name in case_names for route in routes_of(name)]


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


def plan_consume(producer_id: str, set_id: str, set_dir: str, rid: str, case_names: Optional[List[str]]) -> List[Dict[str, Any]]:
    """Every cell of one fixture set onto the device, one item per load mode."""
    items = []
    for name, route, path in artifacts(set_dir):
        if name not in CASES or name in NOT_ON_DEVICE or route not in routes_of(name) or (case_names is not None and name not in case_names):
            continue
        for mode in load_modes(name, route):
            items.append({"op": "consume", "case": name, "route": route, "mode": mode, "producer": producer_id, "set": set_id, "path": path,
                          "cell": f"{name}/{route}/{producer_id}->{rid}/{mode}"})
    return items


# ---- the child: runs items in order, one JSON line per item on a guarded stdout ----

def _sticky(reply: Dict[str, Any]) -> bool:
    error = reply.get("error") or {}
    text = f"{error.get('message', '')} {error.get('detail', '')}"
    return any(s in text for s in _STICKY)


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_item(item: Dict[str, Any], plan: Dict[str, Any]) -> Tuple[Dict[str, Any], bool]:
    """One item in this process: (the line for the parent, whether the CUDA context is now lost)."""
    import torch

    rid, device, simulated = plan["rid"], plan["device"], plan["simulated"]
    name = item["case"]
    started = time.monotonic()
    if item["op"] == "produce":
        path = item["path"]
        reply = _request("produce_checkpoint" if is_checkpoint(name) else "produce", _args(name, item["route"], path, device, simulated))
        if reply["status"] != "ok":
            _remove(path)  # a failed save leaves nothing to mistake for an artifact
            return {"reply": reply, "seconds": time.monotonic() - started}, _sticky(reply)
        manifest = {"producer": rid, "producer_version": torch.__version__, "case": name, "route": item["route"], "seed": 0,
                    "device": device, "simulated": simulated, "observation": reply["result"]}
        with open(os.path.splitext(path)[0] + ".json", "w", encoding="utf-8") as f:
            f.write(json.dumps(manifest, indent=2) + "\n")
        return {"written": path, "seconds": time.monotonic() - started}, False
    path = item["path"]
    manifest_path = os.path.splitext(path)[0] + ".json"
    try:
        digest = _sha256(manifest_path)
    except OSError as e:
        return {"failure": {"kind": "fixture_error", "message": f"{manifest_path}: {type(e).__name__}: {e}"}}, False
    reply = _request("consume_checkpoint" if is_checkpoint(name) else "consume", _args(name, item["route"], path, device, simulated, item["mode"]))
    return {"reply": reply, "manifest_sha256": digest, "seconds": time.monotonic() - started}, _sticky(reply)


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
    from .. import worker  # noqa: F401 - imported before "ready", so that no cell's time includes start-up

    # Start-up (torch, the device, the worker's imports) is over: from here on the parent times each cell.
    proto.write(json.dumps({"ready": True}) + "\n")
    proto.flush()
    for k in range(start, len(plan["items"])):
        item = plan["items"][k]
        line, sticky = run_item(item, plan)
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
    recorded as worker_crash / worker_timeout (the orchestrator's words for them); the next child starts at the cell
    after it. Past the deadline no cell starts: the rest are skipped, naming the budget."""

    def __init__(self, plan_path: str, plan: Dict[str, Any], cell_timeout: float, deadline: Optional[float], log,
                 start_timeout: float = START_TIMEOUT) -> None:
        self.plan_path, self.plan = plan_path, plan
        self.cell_timeout, self.deadline, self.log = cell_timeout, deadline, log
        self.start_timeout = start_timeout
        self.children = 0
        self.over_budget = False

    @staticmethod
    def _failure(kind: str, message: str) -> Dict[str, Any]:
        """What the parent saw instead of an answer: the orchestrator's WorkerReply.Failed kinds."""
        return {"failure": {"kind": kind, "message": message}}

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
        package_parent = os.path.dirname(_package_dir())
        env["PYTHONPATH"] = os.pathsep.join(p for p in [package_parent, env.get("PYTHONPATH", "")] if p)
        env["PYTHONUNBUFFERED"] = "1"
        child = subprocess.Popen([*CHILD_COMMAND, self.plan_path, str(k)],
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
                    on_line(k, self._failure("worker_timeout", f"{what}: the gpu-check process was killed; "
                                                                                 "the cells after it ran in a fresh one"))
                    return k + 1
                if text is not None and not ready:
                    try:
                        ready = json.loads(text) == {"ready": True}
                    except ValueError:
                        ready = False
                    if ready:
                        continue
                    on_line(k, self._failure("protocol_error", f"gpu-check's child did not say it was ready: {text[:200]!r}"))
                    return k + 1
                if text is None:  # the child ended
                    code = child.wait()
                    for t in pumps:
                        t.join(timeout=5)
                    if code == EXIT_RESTART:
                        return k
                    self.log(f"  CRASH {item['cell']}: the process ended ({_signal_name(code)}); going on in a fresh process")
                    said = " | ".join(x for x in tail if x)[-400:]
                    on_line(k, self._failure("worker_crash", f"the gpu-check process ended with {_signal_name(code)} on this cell"
                                                                                f"{': ' + said if said else ''}; the cells after it ran in a fresh one"))
                    return k + 1
                try:
                    line = json.loads(text)
                    if not isinstance(line, dict) or line.get("i") != k:
                        raise ValueError(f"expected the answer for item {k}")
                except ValueError as e:
                    on_line(k, self._failure("protocol_error", f"gpu-check's child answered garbage ({e}): {text[:200]!r}"))
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
        why = "gpu-check's budget ran out before this cell (--budget); run it again with GPU_CASES for the rest"
        for j in range(k, last):
            on_line(j, {"skipped": why})


def observation(item: Dict[str, Any], line: Dict[str, Any], work: str, fixtures_dir: str) -> Dict[str, Any]:
    """One cell as judge-gpu reads it: where the artifact and its observation are, and what came back.

    ``artifact`` is the path relative to the archive (the device's own set) or to the repository (a
    committed set), ``path`` the one the device's worker saw (its messages start with it)."""
    own = item["set"] == item["producer"]
    root = work if own else os.path.dirname(os.path.abspath(fixtures_dir))
    record: Dict[str, Any] = {"cell": item["cell"], "op": item["op"], "set": item["set"],
                              "artifact": os.path.relpath(item["path"], root).replace(os.sep, "/"), "path": item["path"],
                              "seconds": round(float(line.get("seconds", 0.0)), 3)}
    for key in ("reply", "failure", "skipped", "manifest_sha256", "written"):
        if key in line:
            record[key] = line[key]
    return record


def tally(observations: List[Dict[str, Any]]) -> Dict[str, int]:
    """What came back, counted: no verdict (that is judge-gpu's, on a CPU machine)."""
    counts = {"answered": 0, "refused": 0, "crashed_or_hung": 0, "skipped": 0, "produced": 0}
    for o in observations:
        if "skipped" in o:
            counts["skipped"] += 1
        elif "failure" in o:
            counts["crashed_or_hung"] += 1
        elif "written" in o:
            counts["produced"] += 1
        elif o.get("reply", {}).get("status") == "ok":
            counts["answered"] += 1
        else:
            counts["refused"] += 1
    return counts


def tally_line(rid: str, counts: Dict[str, int]) -> str:
    cells = sum(v for k, v in counts.items() if k != "produced")
    return (f"GPU-CHECK OBSERVED {rid}: {counts['produced']} artifacts written, {cells} cells: {counts['answered']} answered, "
            f"{counts['refused']} refused by the worker, {counts['crashed_or_hung']} crashed, hung or unreadable, "
            f"{counts['skipped']} skipped (budget); no verdict here: run `conformance judge-gpu ARCHIVE` on a CPU machine")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


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


def _package_dir() -> str:
    """python/torchconformance/, whichever module of it asks."""
    import torchconformance

    return os.path.dirname(os.path.abspath(torchconformance.__file__))


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(_package_dir()))


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
    ap.add_argument("--out", required=True, help="output folder: gpu-check-<id>.tar.gz and gpu-check.log, nothing else")
    ap.add_argument("--device", default="cuda", help="cuda (default), or cpu to simulate the device (ids say cuda-cpu-simulated)")
    ap.add_argument("--cases", default=None, help="comma-separated case names (default: every golden case)")
    ap.add_argument("--fixtures", default=os.path.join(_repo_root(), "fixtures"), help="the committed fixture sets to load onto the device")
    ap.add_argument("--budget", type=float, default=0,
                    help="seconds for the whole run (0: none): past it minus %.0f s no cell starts, the rest are recorded as skipped, "
                         "the archive is packed with what ran, and the exit code is 3" % PACK_RESERVE)
    ap.add_argument("--cell-timeout", type=float, default=180, help="seconds one cell may take before its process is killed (worker_timeout)")
    ap.add_argument("--start-timeout", type=float, default=START_TIMEOUT, help="seconds a process may take to import torch and open the device")
    ap.add_argument("--work", default=None, help="where the fixture set is written before packing (default: a temporary folder, removed after)")
    ns = ap.parse_args(argv)
    started = time.time()
    t0 = time.monotonic()
    os.makedirs(ns.out, exist_ok=True)
    sys.stderr = _Tee(sys.stderr, os.path.join(ns.out, "gpu-check.log"))

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    stated = devices.prepare(ns.device)
    rid = devices.runtime_id(ns.device)
    golden = [c for c in CASES if c not in NOT_GOLDEN and c not in NOT_ON_DEVICE]
    case_names = golden if ns.cases is None else [c.strip() for c in ns.cases.split(",") if c.strip()]
    unknown = [c for c in case_names if c not in CASES]
    if unknown:
        log(f"gpu-check: unknown case(s) {', '.join(unknown)} (known: {', '.join(CASES)})")
        return 2
    work = ns.work or tempfile.mkdtemp(prefix=f"gpu-check-{rid}-")
    set_dir = os.path.join(work, "fixtures", rid)
    _remove(set_dir)
    os.makedirs(set_dir)
    hello = _request("hello", {})["result"]
    deadline = t0 + ns.budget - PACK_RESERVE if ns.budget else None
    log(f"gpu-check: {rid} on {ns.device}{' (SIMULATED: cpu standing in for cuda, storages saved as cuda:0)' if stated['simulated'] else ''}, "
        f"torch {hello['version']}; TF32 off: {json.dumps({k: v for k, v in stated.items() if 'tf32' in k or 'precision' in k or 'determin' in k})}"
        f"{'; budget %.0f s' % ns.budget if ns.budget else ''}")

    observations: List[Dict[str, Any]] = []
    children = 0
    timing: Dict[str, float] = {}

    def run_phase(items: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """The items in child processes; one observation per item, in item order."""
        nonlocal children
        plan = {"rid": rid, "device": ns.device, "simulated": stated["simulated"], "items": items}
        plan_path = os.path.join(work, "plan.json")
        with open(plan_path, "w", encoding="utf-8") as f:
            json.dump(plan, f)
        got: Dict[int, Dict[str, Any]] = {}
        runner = Runner(plan_path, plan, ns.cell_timeout, deadline, log, ns.start_timeout)
        runner.run(0, len(items), lambda k, line: got.__setitem__(k, line))
        children += runner.children
        return [observation(item, got[k], work, ns.fixtures) for k, item in enumerate(items)]

    def checkpoint(final: bool) -> str:
        """gpu-run.json and the archive as they stand: a run stopped from outside still leaves both."""
        run = {
            "schema": RUN_SCHEMA,
            "generated": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(started)),
            "seconds": round(time.monotonic() - t0, 1),
            "finished": final,
            "runtime": {"id": rid, "kind": "pytorch", "version": hello.get("version"), "device": devices.label(ns.device), "hello": hello,
                        "launch": "python3 -m torchconformance gpu-check " + " ".join(argv)},
            "device": stated,
            "simulated": stated["simulated"],
            "machine": {"cpu_model": _cpu_model(), "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version(),
                        "gpu": stated.get("gpu")},
            "cases": case_names if ns.cases is not None else None,
            "not_on_device": NOT_ON_DEVICE,
            "timing": dict(timing),
            "processes": children,
            "observations": observations,
        }
        with open(os.path.join(work, "gpu-run.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(run, indent=1, allow_nan=False) + "\n")
        return pack(work, ns.out, rid, [os.path.join("fixtures", rid), "gpu-run.json"])

    items = plan_produce(set_dir, rid, case_names)
    log(f"1/3 producing fixtures/{rid}/ ({len(case_names)} cases, {len(items)} artifacts)")
    for o in run_phase(items):
        if "reply" in o and o["reply"]["error"]["kind"] == "not_applicable":
            log(f"  {rid} does not write {o['artifact']}: {o['reply']['error']['message']}")
        elif "written" not in o:
            log(f"  could not write {o['artifact']}: {json.dumps(o.get('reply', {}).get('error') or o.get('failure') or o.get('skipped'))[:300]}")
        observations.append(o)
    timing["produce_seconds"] = round(time.monotonic() - t0, 1)
    checkpoint(False)

    log("2/3 loading every fixture set onto the device")
    sets = [(s + "@golden", s, d) for s, d in fixture_sets(ns.fixtures) if s != rid]
    sets.append((rid, rid, set_dir))
    for producer_id, set_id, d in sets:
        phase = run_phase(plan_consume(producer_id, set_id, d, rid, None if ns.cases is None else case_names))
        observations.extend(phase)
        counts = tally(phase)
        log(f"  {producer_id}: {len(phase)} cells ({', '.join(f'{n} {k}' for k, n in counts.items() if n)})")
        checkpoint(False)
    wall = time.monotonic() - t0
    timing["consume_seconds"] = round(wall - timing["produce_seconds"], 1)

    archive = checkpoint(True)
    size = os.path.getsize(archive)
    log(f"3/3 {archive}: {size} bytes ({size / 1048576:.2f} MiB of 16), sha256 {_sha256(archive)}")
    log(f"gpu-check took {wall:.1f} s (produce {timing['produce_seconds']:.1f} s, consume {timing['consume_seconds']:.1f} s) in {children} process(es)")
    if not ns.work:
        shutil.rmtree(work, ignore_errors=True)
    counts = tally(observations)
    print(tally_line(rid, counts))
    if counts["skipped"]:
        log(f"gpu-check: the budget of {ns.budget:.0f} s ran out; {counts['skipped']} cells skipped (named in gpu-run.json)")
        return 3
    return 0


"""The orchestrator's verdicts, in Python, for ``gpu-check`` (a GPU machine has no .NET).

A line-by-line twin of harness/Conformance.Orchestrator/Judgement/ (Judge.cs, CellJudge.cs,
CheckpointJudge.cs) and of the ledger's matching (Ledger/Ledger.cs: ExpectedProblem.Matches, Glob).
GpuJudgeAgreementSpecs runs both judges on the same observations and fails on any difference in
outcome, problem code, subject or message, so the two are kept equal. It needs no torch.
"""

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import catalogue

# ProblemCodes (Problem.cs)
ERRORS = {"load_error", "save_error", "runtime_error", "bad_request", "worker_crash", "worker_timeout",
          "worker_start_error", "protocol_error", "fixture_error", "io_error"}
_REPLY_CODES = {"load_error": "load_error", "save_error": "save_error", "bad_request": "bad_request"}

STRICT_FALSE = "strict_false"
SHAPE_MISMATCH = "shape_mismatch"
IMPLEMENTATION_FLAGS = set(catalogue.document()["implementation_flags"])
SCHEDULER_GROUP_KEYS = set(catalogue.document()["scheduler_group_keys"])
SCHEDULERS = list(catalogue.document()["schedulers"])


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float

    def __str__(self) -> str:
        return f"atol={_g(self.atol, 3)}, rtol={_g(self.rtol, 3)}"


@dataclass
class CaseSpec:
    """Catalogue.cs's CaseSpec: what the judge needs of a case."""
    name: str
    tolerance: Tolerance
    train_mode_matters: bool = False
    partial: Optional[Tuple[List[str], List[str]]] = None  # (missing, unexpected)
    mismatch: Optional[Tuple[str, List[int], List[int]]] = None  # (key, file shape, model shape)
    optimizer: Optional[str] = None

    @property
    def is_checkpoint(self) -> bool:
        return self.optimizer is not None


def _spec(c: Dict[str, Any]) -> CaseSpec:
    partial, mismatch = c.get("partial_load"), c.get("shape_mismatch")
    return CaseSpec(c["name"], Tolerance(**catalogue.tolerance(c)), train_mode_matters=bool(c["train_mode_matters"]),
                    partial=(partial["missing"], partial["unexpected"]) if partial else None,
                    mismatch=(mismatch["key"], mismatch["file_shape"], mismatch["model_shape"]) if mismatch else None,
                    optimizer=c.get("optimizer"))


# Catalogue.All: every case of catalogue/cases.json, in its order.
CASES: Dict[str, CaseSpec] = {c["name"]: _spec(c) for c in catalogue.cases()}

# Catalogue.DeviceFactor: CUDA kernels (cuBLAS, cuDNN; TF32 off) against CPU ones. Bytes stay
# exact; outputs and resumed parameters are allowed this times the CPU-to-CPU distance.
DEVICE_FACTOR = float(catalogue.document()["device_factor"])


def is_device(device: str) -> bool:
    """A device other than the CPU, as runtime ids carry it (``cuda``, ``cuda-cpu-simulated``)."""
    return device not in ("", "cpu")


def tolerance_for(spec: CaseSpec, producer_device: str, consumer_device: str) -> Tolerance:
    """Catalogue.ToleranceFor: the case's tolerance for one device pair."""
    if is_device(producer_device) or is_device(consumer_device):
        return Tolerance(spec.tolerance.atol * DEVICE_FACTOR, spec.tolerance.rtol * DEVICE_FACTOR)
    return spec.tolerance


def device_of(runtime_id: str) -> str:
    """Runtime.DeviceOf: ``pytorch-2.11-cuda`` -> ``cuda``; ``pytorch-2.6@golden`` -> ``cpu``."""
    rid = runtime_id[:-len("@golden")] if runtime_id.endswith("@golden") else runtime_id
    m = re.match(r"^[a-z]+-[0-9][^-]*(?:-(?:preview|rc|beta|alpha|repack)[^-]*)*-(cuda.*)$", rid)
    return m.group(1) if m else "cpu"


# --- formatting as .NET writes it -----------------------------------------------------------------

def _g(x: float, digits: int) -> str:
    """.NET's ``{x:gN}``: Python's %g with .NET's exponent (``1E-05``)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"  # .NET's invariant culture
    s = "%.*g" % (digits, x)
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}E{exp[0]}{exp[1:].zfill(2)}"
    return s


def _json(v: Any) -> str:
    """System.Text.Json's ToJsonString for the values observations carry."""
    if v is None:
        return "null"
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _show(v: Any) -> str:
    """CheckpointJudge.Show: a value as JSON, a missing or null one as None."""
    return "None" if v is None else _json(v)


_DOTNET_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$|^\s*[+-]?(nan|infinity|∞)\s*$", re.I)


def _by_key(tensors: List[Dict[str, Any]], problems: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """The consumer's tensors by key; a key listed twice is a problem (the first listing counts)."""
    theirs: Dict[str, Dict[str, Any]] = {}
    for t in tensors:
        if t["key"] in theirs:
            problems.append(_problem("duplicate_key", t["key"], f"{t['key']}: listed twice by the consumer"))
        else:
            theirs[t["key"]] = t
    return theirs


def _problem(code: str, subject: str, message: str, measure: Optional[float] = None) -> Dict[str, Any]:
    return {"code": code, "subject": subject, "message": message, "measure": measure}


def line(p: Dict[str, Any]) -> str:
    return f"{p['code']}: {p['message']}" if p["code"] in ERRORS else p["message"]


# --- observations ----------------------------------------------------------------------------------

@dataclass
class Observation:
    tensors: List[Dict[str, Any]]
    outputs: Optional[Tuple[List[int], List[float]]]
    train_outputs: Optional[Tuple[List[int], List[float]]] = None
    missing_keys: Optional[List[str]] = None
    unexpected_keys: Optional[List[str]] = None
    aliases: Optional[List[Tuple[str, str]]] = None

    @staticmethod
    def from_json(node: Dict[str, Any]) -> "Observation":
        out = node.get("outputs")
        if out is None:
            out = node.get("resumed")
        return Observation(
            tensors=[{"key": t["key"], "shape": list(t["shape"]), "dtype": t["dtype"], "sha256": t["sha256"]} for t in node.get("tensors") or []],
            outputs=_outputs(out),
            train_outputs=_outputs(node.get("train_outputs")),
            missing_keys=node.get("missing_keys"),
            unexpected_keys=node.get("unexpected_keys"),
            aliases=[(a, b) for a, b in node["aliases"]] if node.get("aliases") is not None else None,
        )


def _to_float(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        return float(v.replace("Infinity", "inf"))
    return math.nan


def _outputs(node: Any) -> Optional[Tuple[List[int], List[float]]]:
    if not isinstance(node, dict):
        return None
    return list(node["shape"]), [_to_float(v) for v in node["values"]]


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def quoted(keys: Sequence[str]) -> str:
    return ", ".join(f'"{k}"' for k in keys)


# --- Judge.cs --------------------------------------------------------------------------------------

@dataclass
class Diff:
    max_abs: float
    max_rel: float
    worst: int
    within: bool


def compare_values(expected: Sequence[float], actual: Sequence[float], tol: Tolerance) -> Diff:
    """numpy.allclose semantics with the producer as reference; NaN equals NaN (Judge.CompareOutputs)."""
    max_abs = max_rel = 0.0
    worst = -1
    ok = len(expected) == len(actual)
    for i in range(min(len(expected), len(actual))):
        e, a = expected[i], actual[i]
        if math.isnan(e) and math.isnan(a):
            continue
        if e == a:
            continue
        d = abs(a - e)
        if math.isnan(d):
            d = math.inf
        rel = d / max(abs(e), 5e-324)
        if d > max_abs or worst < 0:
            max_abs = max(d, max_abs)
            worst = i
        max_rel = max(max_rel, rel)
        if not (d <= tol.atol + tol.rtol * abs(e)):
            ok = False
    return Diff(max_abs, max_rel, max(worst, 0), ok)


def _compare_outputs(p, c, tol: Tolerance, code: str, label: str, problems: List[Dict[str, Any]]) -> Optional[Diff]:
    if p is None or c is None:
        problems.append(_problem(code, label, f"{label} missing on the {'producer' if p is None else 'consumer'} side"))
        return None
    if list(p[0]) != list(c[0]):
        problems.append(_problem(code, label, f"{label}: shape [{', '.join(map(str, p[0]))}] became [{', '.join(map(str, c[0]))}]"))
        return None
    diff = compare_values(p[1], c[1], tol)
    if not diff.within:
        problems.append(_problem(code, label, f"{label}: max abs diff {_g(diff.max_abs, 4)} (max rel {_g(diff.max_rel, 4)}) "
                                              f"at index {diff.worst} exceeds {tol}", diff.max_abs))
    return diff


def _distinct(xs: Sequence[str]) -> List[str]:
    seen, out = set(), []
    for x in xs:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def _ordinal(keys) -> List[str]:
    return sorted(keys, key=lambda k: k.encode("utf-16-be"))


def moved(p: Sequence[str], c: Sequence[str]) -> List[str]:
    """Judge.Moved: the producer's keys outside a longest common subsequence of both orders."""
    n, m = len(p), len(c)
    lcs = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            lcs[i][j] = lcs[i + 1][j + 1] + 1 if p[i] == c[j] else max(lcs[i + 1][j], lcs[i][j + 1])
    kept = set()
    i = j = 0
    while i < n and j < m:
        if p[i] == c[j]:
            kept.add(p[i]); i += 1; j += 1
        elif lcs[i][j + 1] >= lcs[i + 1][j]:
            j += 1
        else:
            i += 1
    return [k for k in p if k not in kept]


def compare(producer: Observation, consumer: Observation, tol: Tolerance, code: str = "outputs", label: str = "outputs"):
    problems: List[Dict[str, Any]] = []
    pk = [t["key"] for t in producer.tensors]
    ck = [t["key"] for t in consumer.tensors]
    missing = _ordinal(_distinct([k for k in pk if k not in set(ck)]))
    unexpected = _ordinal(_distinct([k for k in ck if k not in set(pk)]))
    if missing:
        problems.append(_problem("missing_keys", ",".join(missing), f"Missing key(s) in state_dict: {quoted(missing)}"))
    if unexpected:
        problems.append(_problem("unexpected_keys", ",".join(unexpected), f"Unexpected key(s) in state_dict: {quoted(unexpected)}"))
    theirs = _by_key(consumer.tensors, problems)
    for p in producer.tensors:
        c = theirs.get(p["key"])
        if c is None:
            continue
        if list(p["shape"]) != list(c["shape"]):
            problems.append(_problem("shape", p["key"], f"{p['key']}: shape {_shape_text(p['shape'])} became {_shape_text(c['shape'])}"))
        elif p["dtype"] != c["dtype"]:
            problems.append(_problem("dtype", p["key"], f"{p['key']}: dtype {p['dtype']} became {c['dtype']}"))
        elif p["sha256"].lower() != c["sha256"].lower():
            problems.append(_problem("bytes", p["key"], f"{p['key']}: bytes differ ({p['dtype']} {_shape_text(p['shape'])}; "
                                                        f"sha256 {p['sha256'][:12]}… became {c['sha256'][:12]}…)"))
    for a, b in producer.aliases or []:
        if consumer.aliases is None:
            problems.append(_problem("tie_lost", f"{a}={b}", f'tie unverified: the consumer reported no aliases, so "{a}" and "{b}" may no longer share one tensor'))
        elif (a, b) not in consumer.aliases:
            problems.append(_problem("tie_lost", f"{a}={b}", f'tie lost: "{a}" and "{b}" share one tensor in the producer but not after loading'))
    diff = _compare_outputs(producer.outputs, consumer.outputs, tol, code, label, problems)
    shared = set(pk) & set(ck)
    po = _distinct([k for k in pk if k in shared])
    co = _distinct([k for k in ck if k in shared])
    for i in range(len(po)):
        if po[i] == co[i]:
            continue
        problems.append(_problem("key_order", "moved: " + ",".join(moved(po, co)),
                                 f'key order differs at position {i}: producer has "{po[i]}", consumer has "{co[i]}"'))
        break
    return problems, diff


def compare_partial(producer: Observation, consumer: Observation, missing: List[str], unexpected: List[str]):
    problems: List[Dict[str, Any]] = []
    if list(consumer.missing_keys or []) != list(missing):
        problems.append(_problem("partial_load", "missing_keys", f"missing_keys reported [{quoted(consumer.missing_keys or [])}], expected [{quoted(missing)}]"))
    if list(consumer.unexpected_keys or []) != list(unexpected):
        problems.append(_problem("partial_load", "unexpected_keys", f"unexpected_keys reported [{quoted(consumer.unexpected_keys or [])}], expected [{quoted(unexpected)}]"))
    theirs = _by_key(consumer.tensors, problems)
    shared = 0
    for p in producer.tensors:
        if p["key"] not in theirs:
            continue
        shared += 1
        if p["sha256"].lower() != theirs[p["key"]]["sha256"].lower():
            problems.append(_problem("bytes", p["key"], f"{p['key']}: shared key not loaded (sha256 {p['sha256'][:12]}… became {theirs[p['key']]['sha256'][:12]}…)"))
    if shared == 0:
        problems.append(_problem("partial_load", "", "no key is shared between the file and the warm-start model"))
    return problems, None


def compare_mismatch_error(error: Optional[str], key: str, file_shape: List[int], model_shape: List[int]) -> List[Dict[str, Any]]:
    dims = lambda s: ", ".join(str(d) for d in s)  # noqa: E731
    if error is None:
        return [_problem("shape_mismatch", key, f"loaded {key} of shape [{dims(file_shape)}] into [{dims(model_shape)}] without an error")]
    absent = [a for a in (key, dims(file_shape), dims(model_shape)) if a not in error]
    if not absent:
        return []
    return [_problem("shape_mismatch", key, f"the error does not name {' or '.join(f'{chr(34)}{a}{chr(34)}' for a in absent)}: {error}")]


# Routes whose producer puts a wrapper's prefix before every key (Catalogue's RealLayouts.KeyPrefix).
KEY_PREFIXES = {"prefix_module": "module.", "prefix_orig_mod": "_orig_mod."}


def compare_prefix_error(error: Optional[str], prefix: str) -> List[Dict[str, Any]]:
    remedy = f"strip the `{prefix}` prefix"
    if error is None:
        return [_problem("prefixed_keys", prefix, f"loaded a file whose every key starts with '{prefix}' without an error")]
    if remedy in error:
        return []
    return [_problem("prefixed_keys", prefix, f"the error does not name the prefix and the remedy (\"{remedy}\"): {error}")]


def compare_train_mode(consumer: Observation, tol: Tolerance):
    t, o = consumer.train_outputs, consumer.outputs
    if t is None or o is None or len(t[1]) != len(o[1]):
        return None, None
    diff = compare_values(o[1], t[1], tol)
    if diff.within:
        return _problem("train_mode", "", f"train-mode outputs equal eval-mode outputs within {tol}: the mode switch took no effect"), diff.max_abs
    return None, diff.max_abs


# --- CheckpointJudge.cs ----------------------------------------------------------------------------

def _number(v: Any) -> Optional[float]:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and _DOTNET_NUMBER.match(v):  # what double.TryParse accepts
        return float(v.strip().lower().replace("infinity", "inf").replace("∞", "inf"))
    return None


def same_value(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None and not isinstance(a, list) and not isinstance(b, list):
        return na == nb or (math.isnan(na) and math.isnan(nb))
    return _json(a) == _json(b)


def _close_as_float32(a: Any, b: Any) -> bool:
    x, y = _number(a), _number(b)
    return x is not None and y is not None and abs(x - y) <= 1e-7 * max(abs(x), abs(y))


def _short(sha: Any) -> str:
    return sha[:12] + "…" if isinstance(sha, str) and len(sha) > 12 else _json(sha) if sha is not None else "none"


def compare_checkpoint(producer: Dict[str, Any], consumer: Dict[str, Any]):
    problems: List[Dict[str, Any]] = []
    notes = set()
    for f in ("epoch", "loss"):
        if not same_value(producer.get(f), consumer.get(f)):
            problems.append(_problem(f, f, f"{f}: {_show(producer.get(f))} became {_show(consumer.get(f))}"))
    if isinstance(producer.get("optimizers"), dict):
        pairs = [(k + ".", v, (consumer.get("optimizers") or {}).get(k)) for k, v in producer["optimizers"].items()]
    else:
        pairs = [("", producer.get("optimizer"), consumer.get("optimizer"))]
    for label, p, c in pairs:
        if c is None:
            problems.append(_problem("optimizer_state", label + "optimizer", f"{label}optimizer state missing on the consumer"))
            continue
        _compare_optimizer(label, p, c, problems, notes)
    if isinstance(producer.get("schedule"), dict):
        _compare_schedule(producer["schedule"], consumer.get("schedule"), problems)
    return problems, sorted(notes, key=lambda n: n.encode("utf-16-be"))


def _close_as_scheduled(a: Any, b: Any) -> bool:
    if same_value(a, b):
        return True
    x, y = (_number(a), _number(b)) if a is not None and b is not None else (None, None)
    return x is not None and y is not None and abs(x - y) <= 1e-9 * max(abs(x), abs(y))


def _compare_schedule(producer: Dict[str, Any], consumer: Any, problems: List[Dict[str, Any]]) -> None:
    """CheckpointJudge.CompareSchedule."""
    if not isinstance(consumer, dict):
        problems.append(_problem("scheduler", "schedule", "schedule missing on the consumer: the LR scheduler was not restored"))
        return
    if not same_value(producer.get("type"), consumer.get("type")):
        problems.append(_problem("scheduler", "type", f"scheduler type: {_show(producer.get('type'))} became {_show(consumer.get('type'))}"))
    for field_name in ("last_lr", "lrs", "momenta"):
        p = producer.get(field_name)
        if not isinstance(p, list):
            continue
        c = consumer.get(field_name)
        if not isinstance(c, list) or len(c) != len(p):
            problems.append(_problem("scheduler", field_name, f"{field_name}: {_show(p)} became {_show(c)}"))
            continue
        for i, (x, y) in enumerate(zip(p, c)):
            if not _close_as_scheduled(x, y):
                problems.append(_problem("scheduler", f"{field_name}[{i}]", f"{field_name}[{i}]: {_show(x)} became {_show(y)}"))


def _text(v: Any) -> str:
    """A JsonNode interpolated into a C# string: a string value bare, null empty, anything else as JSON."""
    return "" if v is None else v if isinstance(v, str) else _json(v)


def _state(subject: str, what: str) -> Dict[str, Any]:
    return _problem("optimizer_state", subject, f"{subject}: {what}")


def _compare_optimizer(label: str, producer: Dict[str, Any], consumer: Dict[str, Any], problems, notes) -> None:
    pg_all = producer.get("param_groups") or []
    cg_all = consumer.get("param_groups") or []
    if len(pg_all) != len(cg_all):
        problems.append(_problem("param_groups", f"{label}param_groups", f"{label}param_groups: {len(pg_all)} group(s) became {len(cg_all)}"))
    for g in range(min(len(pg_all), len(cg_all))):
        pg, cg = pg_all[g], cg_all[g]
        for key, value in pg.items():
            if key not in cg:
                if key in IMPLEMENTATION_FLAGS:
                    notes.add(f"not represented by the consumer: {label}param_groups.{key}")
                elif key in SCHEDULER_GROUP_KEYS:
                    notes.add(f"kept by the consumer's LR scheduler, not its param group: {label}param_groups.{key}")
                else:
                    problems.append(_problem("param_groups", f"{label}param_groups[{g}].{key}", f"{label}param_groups[{g}].{key} = {_show(value)} was dropped"))
                continue
            if not same_value(value, cg[key]):
                problems.append(_problem("param_groups", f"{label}param_groups[{g}].{key}", f"{label}param_groups[{g}].{key}: {_show(value)} became {_show(cg[key])}"))
    p_state = {s["param"]: s["entries"] for s in producer.get("state") or []}
    c_state = {s["param"]: s["entries"] for s in consumer.get("state") or []}
    for param, entries in p_state.items():
        if param not in c_state:
            problems.append(_state(f"{label}state[{param}]", "missing on the consumer"))
            continue
        by_key = {e["key"]: e for e in c_state[param]}
        for e in entries:
            key = e["key"]
            c = by_key.pop(key, None)
            if c is None:
                problems.append(_state(f"{label}state[{param}].{key}", "missing on the consumer"))
                continue
            if e.get("sha256") is not None:
                if e["sha256"] != c.get("sha256") or not same_value(e.get("shape"), c.get("shape")) or not same_value(e.get("dtype"), c.get("dtype")):
                    problems.append(_state(f"{label}state[{param}].{key}",
                                           f"{_text(e.get('dtype'))} {_json(e.get('shape')) if e.get('shape') is not None else ''} sha256 {_short(e.get('sha256'))} became "
                                           f"{_text(c.get('dtype'))} {_json(c.get('shape')) if c.get('shape') is not None else ''} sha256 {_short(c.get('sha256'))}"))
            else:
                pr, cr = e.get("representation"), c.get("representation")
                if pr != cr:
                    notes.add(f"{key} is {pr} on the producer, {cr} on the consumer")
                if same_value(e.get("value"), c.get("value")):
                    continue
                if _close_as_float32(e.get("value"), c.get("value")) and ("float32" in (pr or "") or "float32" in (cr or "")):
                    notes.add(f"{key} rounded to float32 ({_show(e.get('value'))} became {_show(c.get('value'))})")
                else:
                    problems.append(_state(f"{label}state[{param}].{key}", f"{_show(e.get('value'))} became {_show(c.get('value'))}"))
        for extra in by_key:
            problems.append(_state(f"{label}state[{param}].{extra}", "present on the consumer only"))
    for extra in c_state:
        if extra not in p_state:
            problems.append(_state(f"{label}state[{extra}]", "present on the consumer only"))


# --- CellJudge.cs ----------------------------------------------------------------------------------

@dataclass
class CellVerdict:
    outcome: str
    problems: List[Dict[str, Any]]
    message: str
    diff: Optional[Diff] = None
    train_eval_diff: Optional[float] = None
    tolerance: Optional[Tolerance] = None
    known_failure: Optional[Dict[str, Any]] = field(default=None)


def compare_fine_tune(consumer: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Judge.CompareFineTune: every parameter still requires a gradient and moves in one SGD step."""
    f = consumer.get("fine_tune")
    if not isinstance(f, dict):
        return [_problem("frozen_after_load", "", "fine-tuning after the load unobserved: the consumer reported no fine_tune")]
    problems = []
    n = len(f["parameters"])
    if f["frozen"]:
        problems.append(_problem("frozen_after_load", ",".join(f["frozen"]),
                                 f"frozen after load: requires_grad is false on {len(f['frozen'])} of {n} parameter(s): {quoted(f['frozen'])}"))
    if f["unchanged"]:
        problems.append(_problem("frozen_after_load", ",".join(f["unchanged"]),
                                 f"not trained after load: one SGD step left {len(f['unchanged'])} of {n} parameter(s) unchanged: {quoted(f['unchanged'])}"))
    return problems


def strip_path(message: str, path: Optional[str]) -> str:
    return message[len(path) + 2:] if path and message.startswith(path + ": ") else message


def _failed(p: Dict[str, Any]) -> CellVerdict:
    return CellVerdict("fail", [p], line(p))


def judge_cell(case: str, consumer: str, mode: str, expected_node: Dict[str, Any], reply: Dict[str, Any], path: str,
               tol: Optional[Tolerance] = None, route: Optional[str] = None) -> CellVerdict:
    """CellJudge.Judge on one consumer reply (the worker protocol's response object)."""
    spec = CASES[case]
    tol = tol or spec.tolerance
    error = reply.get("error") if reply.get("status") != "ok" else None
    if error is not None and error.get("kind") == "not_applicable":
        return CellVerdict("not_applicable", [], f"not_applicable: consumer {consumer}: {strip_path(error.get('message', ''), path)}", tolerance=tol)
    if mode == SHAPE_MISMATCH and spec.mismatch is not None:
        load_error = strip_path(error["message"], path) if error is not None and error.get("kind") == "load_error" else None
        problems = compare_mismatch_error(load_error, *spec.mismatch)
        if not problems:
            return CellVerdict("pass", [], f"refused as expected: {load_error}", tolerance=tol)
        return CellVerdict("fail", problems, "; ".join(line(p) for p in problems), tolerance=tol)
    if mode == "default" and route in KEY_PREFIXES:
        # A plain load of prefixed keys is meant to fail: the verdict is on the error's evidence.
        load_error = strip_path(error["message"], path) if error is not None and error.get("kind") == "load_error" else None
        problems = compare_prefix_error(load_error, KEY_PREFIXES[route])
        if not problems:
            return CellVerdict("pass", [], f"refused as expected: {load_error}", tolerance=tol)
        return CellVerdict("fail", problems, "; ".join(line(p) for p in problems), tolerance=tol)
    result = reply.get("result") if reply.get("status") == "ok" else None
    if result is None:
        if error is not None:
            p = _problem(_REPLY_CODES.get(error.get("kind"), "runtime_error"), consumer, strip_path(error.get("message", ""), path))
        else:
            p = _problem("protocol_error", consumer, "no result")
        if expected_node.get("archive_version") is not None:
            p["message"] += f" [archive version record {expected_node['archive_version']}]"
        v = _failed(p)
        v.tolerance = tol
        return v
    try:
        expected = Observation.from_json(expected_node)
        actual = Observation.from_json(result)
        checkpoint = compare_checkpoint(expected_node, result) if spec.is_checkpoint else None
        # checkpoints judge training by their resumed parameters instead
        fine_tune = compare_fine_tune(result) if not spec.is_checkpoint else []
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        return _failed(_problem("protocol_error", consumer, f"consumer {consumer} sent a malformed observation: {e}"))
    if mode == STRICT_FALSE and spec.partial is not None:
        found, diff = compare_partial(expected, actual, *spec.partial)
    elif checkpoint is not None:
        found, diff = compare(expected, actual, tol, "resume", "resumed parameters")
    else:
        found, diff = compare(expected, actual, tol)
    problems = list(checkpoint[0] if checkpoint else []) + found
    train_problem, train_eval = compare_train_mode(actual, tol)
    if spec.train_mode_matters and mode != STRICT_FALSE and not spec.is_checkpoint:
        if train_problem is not None:
            problems.append(train_problem)
        elif train_eval is None:
            problems.append(_problem("train_mode", "", "train-mode outputs missing or of another length: whether eval() took effect is unproven"))
    problems += fine_tune
    notes = "notes: " + "; ".join(checkpoint[1]) if checkpoint and checkpoint[1] else ""
    if not problems:
        return CellVerdict("pass", [], notes, diff, train_eval, tol)
    return CellVerdict("fail", problems, "; ".join(line(p) for p in problems), diff, train_eval, tol)


def strip_devices(cell: str) -> str:
    """LedgerEntry.Matches: a device-suffixed cell is also matched as its CPU twin
    (``pytorch-2.6-cuda->pytorch-1.13-cuda`` as ``pytorch-2.6->pytorch-1.13``): a file-format failure
    does not depend on where the tensors lived. An entry may still name a device's cells alone."""
    parts = cell.split("/")
    if len(parts) != 4 or "->" not in parts[2]:
        return cell

    def plain(rid: str) -> str:
        golden = rid.endswith("@golden")
        base = rid[:-len("@golden")] if golden else rid
        dev = device_of(base)
        if dev != "cpu" and base.endswith("-" + dev):
            base = base[:-len(dev) - 1]
        return base + ("@golden" if golden else "")

    producer, consumer = parts[2].split("->", 1)
    parts[2] = f"{plain(producer)}->{plain(consumer)}"
    return "/".join(parts)


# --- the ledger's matching (Ledger.cs) -------------------------------------------------------------

def glob_regex(glob: str) -> "re.Pattern[str]":
    """Glob.ToRegex without ``**``: ``*``/``?`` never cross ``/``, ``{a,b}`` alternatives."""
    out, depth = ["^"], 0
    for ch in glob:
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "{":
            depth += 1
            out.append("(?:")
        elif ch == "}" and depth > 0:
            depth -= 1
            out.append(")")
        elif ch == "," and depth > 0:
            out.append("|")
        else:
            out.append(re.escape(ch))
    if depth:
        raise ValueError(f'unbalanced braces in cell pattern "{glob}"')
    return re.compile("".join(out) + "$", re.S)


def _expected_matches(e: Dict[str, Any], p: Dict[str, Any]) -> bool:
    return (p["code"] == e["code"] and (e.get("subject") is None or p["subject"] == e["subject"])
            and p["message"].startswith(e.get("message", ""))
            and (e.get("max_measure") is None or (p.get("measure") is not None and p["measure"] <= e["max_measure"])))


class Ledger:
    """known-failures.json, for matching only: a failed cell every problem of which its entry names
    is a known failure. The ledger's own checks (stale, overlapping, expired entries) need the whole
    matrix and stay with the orchestrator."""

    def __init__(self, path: str) -> None:
        with open(path, encoding="utf-8") as f:
            self.entries = json.load(f).get("entries", [])
        self._regex = [glob_regex(e["cell"]) for e in self.entries]

    def apply(self, cell: str, verdict: CellVerdict) -> CellVerdict:
        if verdict.outcome != "fail":
            return verdict
        plain = strip_devices(cell)
        for e, rx in zip(self.entries, self._regex):
            if not (rx.match(cell) or rx.match(plain)):
                continue
            if all(any(_expected_matches(x, p) for x in e.get("problems", [])) for p in verdict.problems):
                verdict.outcome = "known_failure"
                verdict.known_failure = {"id": e["id"], "cell": e["cell"], "reason": e.get("reason", ""), "link": e.get("link", "")}
            return verdict  # a cell is declared once: the first matching entry decides
        return verdict

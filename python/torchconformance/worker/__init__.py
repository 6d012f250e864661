"""The PyTorch runtime's request handler: acts and observes, never judges.

``handle_json`` is what the .NET PyTorch worker calls through pythonnet, one request line at a
time. ``serve`` runs the same loop standalone over stdin/stdout, guarding the protocol channel the
same way the .NET host does: fd 1 is moved to a private descriptor and pointed at stderr.
"""

import contextlib
import inspect as _inspect
import json
import os
import platform
import sys
import traceback
from typing import Any, Callable, Dict

import torch

from .. import observe
from ..formats.atomic import SaveError
from . import cases, checkpoints, finetune, layouts, routes
from . import device as devices


def _pin_threads() -> Dict[str, int]:
    """Pins libtorch's thread pools before any parallel work: results change with the thread count.

    CONFORMANCE_THREADS (intra-op, default 1) and CONFORMANCE_INTEROP_THREADS (default 1); the
    orchestrator sets both for every worker and records them in the report.
    """
    intra = int(os.environ.get("CONFORMANCE_THREADS", "1"))
    inter = int(os.environ.get("CONFORMANCE_INTEROP_THREADS", "1"))
    torch.set_num_threads(intra)
    try:
        torch.set_num_interop_threads(inter)
    except RuntimeError:  # already set (a second import in one process): keep what is there
        pass
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}


_THREADS = _pin_threads()


def _build_config() -> str:
    try:
        return torch.__config__.show()
    except Exception as e:  # noqa: BLE001 - a report field, never a reason to fail hello
        return "unavailable: %s" % e


class _Failure(Exception):
    def __init__(self, kind: str, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail


def _hello(_: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "kind": "pytorch",
        "version": torch.__version__,
        "python": platform.python_version(),
        "numpy": _numpy_version(),
        "devices": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []),
        "pid": os.getpid(),
        "load_modes": list(routes.PICKLE_LOAD_MODES) + list(routes.VARIANT_MODES),
        # The newest TorchScript operator version this runtime reads (operator upgraders), where exposed.
        "torchscript_max_operator_version": _max_operator_version(),
        "threads": dict(_THREADS),
        "build_config": _build_config(),
    }


def _max_operator_version() -> Any:
    getter = getattr(torch._C, "_get_max_operator_version", None)
    return getter() if getter else None


def _numpy_version() -> str:
    try:
        import numpy

        return numpy.__version__
    except ImportError:
        return "absent"


def _fmt_value(v: Any) -> str:
    return repr(v)


def _listing(args: Dict[str, Any]) -> Dict[str, Any]:
    """The seed's listing: state_dict keys with sizes, then the optimizer's state_dict."""
    case = cases.get(args["case"])
    torch.manual_seed(int(args.get("seed", 0)))
    model = case.build()
    optimizer = case.optimizer(list(model.parameters()))
    lines = ["Model's state_dict:"]
    model_entries = []
    for key, value in model.state_dict().items():
        lines.append(f"{key} \t {value.size()}")
        model_entries.append({"key": key, "shape": list(value.shape)})
    lines.append("Optimizer's state_dict:")
    osd = optimizer.state_dict()
    for name, value in osd.items():
        lines.append(f"{name} \t {_fmt_value(value)}")
    groups = [{k: (v if isinstance(v, (int, float, bool, str, list, type(None))) else repr(v)) for k, v in g.items()}
              for g in osd["param_groups"]]
    return {"text": "\n".join(lines), "model": model_entries, "optimizer": {"state": {}, "param_groups": groups}}


def _device(args: Dict[str, Any]) -> str:
    """The request's ``device`` (default cpu), pinned (TF32 off) before its first use."""
    device = str(args.get("device", "cpu"))
    if device != "cpu":
        devices.prepare(device)
    return device


def _produce(args: Dict[str, Any]) -> Dict[str, Any]:
    case = cases.get(args["case"])
    device = _device(args)
    model, _ = cases.train(case, int(args.get("seed", 0)), device)
    model.eval()
    example = case.eval_input().to(device)
    with torch.no_grad():
        outputs = model(example)
    sd = model.state_dict(keep_vars=True)
    try:
        routes.save_model(args["route"], model, args["path"], example)
    except routes.NotApplicable:
        raise
    except SaveError as e:  # already names the file and the cause (ENOSPC, ...)
        raise _Failure("save_error", str(e), traceback.format_exc()) from e
    except Exception as e:
        raise _Failure("save_error", f"{args['path']}: {type(e).__name__}: {e}", traceback.format_exc()) from e
    reply = {"tensors": observe.describe_state_dict(sd), "outputs": observe.describe_outputs(outputs), "aliases": observe.aliases(sd)}
    if args["route"] in routes.TORCHSCRIPT_ROUTES:
        reply["archive_version"] = routes.archive_version(args["path"])
    return reply


def _one_line(e: BaseException, path: str = "") -> str:
    """The whole message on one line: PyTorch puts the key and both shapes on its second line.

    A message that already begins with ``path`` (tsnative's, atomic's) loses that prefix: the
    caller puts the path first itself.
    """
    text = " ".join(str(e).split())
    if path and text.startswith(path + ": "):
        text = text[len(path) + 2:]
    return text[:600]


def _check_input(case: Any, spec: Any) -> torch.Tensor:
    """The eval input: the case's own (None), or ``check --input``'s: ones, zeros, seed:N (the case's input
    pattern with salt N, which both twins compute alike), or file:PATH (a tensor saved with torch.save)."""
    if spec is None:
        return case.eval_input()
    if spec == "ones":
        return torch.ones_like(case.eval_input())
    if spec == "zeros":
        return torch.zeros_like(case.eval_input())
    if spec.startswith("seed:") and spec[5:].isdigit():
        return case.inputs(int(spec[5:]))
    if spec.startswith("file:"):
        kwargs = {"weights_only": True} if "weights_only" in _inspect.signature(torch.load).parameters else {}
        value = torch.load(spec[5:], map_location="cpu", **kwargs)
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{spec[5:]}: not a single tensor saved with torch.save (found {type(value).__name__})")
        return value
    raise ValueError(f"input '{spec}': expected ones, zeros, seed:N or file:PATH")


def _consume(args: Dict[str, Any]) -> Dict[str, Any]:
    """Loads an artifact into this runtime's twin (or the case's variant for the mode) and observes."""
    case = cases.get(args["case"])
    path, mode = args["path"], args.get("mode", "default")
    device = _device(args)
    build = cases.variant(case, mode) or case.build
    try:
        if args["route"] in routes.TORCHSCRIPT_ROUTES:
            if mode != "default":
                raise routes.NotApplicable(f"TorchScript modules load one way (torch.jit.load); no mode '{mode}'")
            model = routes.load_torchscript(path, device)
            result = None
        else:
            # The twin first: a runtime that cannot build it (new_dtypes on an old torch) answers
            # not_applicable before reading the file. Loading draws no random numbers.
            model = build().to(device)
            if args.get("entry"):
                # `check --model-twin` on a training checkpoint: its model entry into the twin.
                loaded = routes.load_pickle(mode, path, device)[args["entry"]]
            else:
                loaded = routes.load_state_dict(args["route"], mode, path, device)
            try:
                result = model.load_state_dict(loaded, strict=(mode != "strict_false"))
            except RuntimeError as e:
                # Keys behind a wrapper's prefix (module., _orig_mod.): the message names the prefix and the remedy first.
                hint = layouts.prefix_diagnosis(list(loaded), list(model.state_dict()))
                if hint:
                    raise RuntimeError(f"{hint}: {e}") from e
                raise
    except routes.NotApplicable:
        raise
    except Exception as e:
        raise _Failure("load_error", f"{path}: {type(e).__name__}: {_one_line(e, path)}", traceback.format_exc()) from e
    tensors = observe.describe_state_dict(model.state_dict())
    tied = observe.aliases(model.state_dict(keep_vars=True))
    model.eval()
    example = _check_input(case, args.get("input")).to(device)
    with torch.no_grad():
        outputs = model(example)
        # train() after observing: a train-mode forward moves BatchNorm statistics. Its outputs
        # show that the mode switch takes effect (dropout, batch statistics).
        model.train()
        train_outputs = model(example)
    reply = {
        "tensors": tensors,
        "outputs": observe.describe_outputs(outputs),
        "train_outputs": observe.describe_outputs(train_outputs),
        "aliases": tied,
    }
    # Last, as it changes the model: one SGD step must move every parameter (requires_grad survived the load).
    reply["fine_tune"] = finetune.observe(model, lambda m: case.train_loss(m, 0, device))
    if mode == "strict_false":
        assert result is not None  # strict=False loads return their missing and unexpected keys
        reply["missing_keys"] = sorted(result.missing_keys)
        reply["unexpected_keys"] = sorted(result.unexpected_keys)
    return reply


def _produce_checkpoint(args: Dict[str, Any]) -> Dict[str, Any]:
    path = args["path"]
    device = _device(args)
    try:
        if args["optimizer"] == "gan":
            return checkpoints.produce_gan(path, int(args.get("seed", 0)), device)
        if args.get("route") == checkpoints.OPTIMIZER_STATE:
            return checkpoints.produce_optimizer_state(args["optimizer"], path, int(args.get("seed", 0)), device)
        return checkpoints.produce(args["optimizer"], path, int(args.get("seed", 0)), device)
    except KeyError:
        raise
    except SaveError as e:  # already names the file and the cause (ENOSPC, ...)
        raise _Failure("save_error", _one_line(e), traceback.format_exc()) from e
    except Exception as e:
        raise _Failure("save_error", f"{path}: {type(e).__name__}: {_one_line(e, path)}", traceback.format_exc()) from e


def _consume_checkpoint(args: Dict[str, Any]) -> Dict[str, Any]:
    path = args["path"]
    device = _device(args)
    try:
        if args["optimizer"] == "gan":
            return checkpoints.consume_gan(path, args.get("mode", "default"), device)
        if args.get("route") == checkpoints.OPTIMIZER_STATE:
            return checkpoints.consume_optimizer_state(args["optimizer"], path, args.get("mode", "default"), device)
        return checkpoints.consume(args["optimizer"], path, args.get("mode", "default"), device)
    except routes.NotApplicable:
        raise
    except Exception as e:
        raise _Failure("load_error", f"{path}: {type(e).__name__}: {_one_line(e)}", traceback.format_exc()) from e


def _check(args: Dict[str, Any]) -> Dict[str, Any]:
    from . import check

    return check.check(args)


def _bench(args: Dict[str, Any]) -> Dict[str, Any]:
    from . import bench

    return bench.run(args["dir"], int(args["tensors"]), int(args["elements"]), int(args.get("repeats", 3)))


OPS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {
    "bench": _bench,
    "check": _check,
    "produce_checkpoint": _produce_checkpoint,
    "consume_checkpoint": _consume_checkpoint,
    "hello": _hello,
    "listing": _listing,
    "produce": _produce,
    "consume": _consume,
    "shutdown": lambda _: {},
}


def handle(request: Dict[str, Any]) -> Dict[str, Any]:
    """Runs one request and returns the response object (never raises)."""
    rid = request.get("id", -1)
    op = request.get("op")
    fn = OPS.get(op)  # type: ignore[arg-type]
    if fn is None:
        return _error(rid, "bad_request", f"unknown op '{op}' (known: {', '.join(OPS)})")
    args = request.get("args") or {}
    try:
        # gpu-check --device cpu: the CPU stands in for cuda, in what is saved and how it is loaded.
        with devices.simulating() if args.get("simulate_cuda") else contextlib.nullcontext():
            return {"id": rid, "status": "ok", "result": fn(args)}
    except routes.NotApplicable as e:
        return _error(rid, "not_applicable", str(e))
    except _Failure as e:
        return _error(rid, e.kind, e.message, e.detail)
    except SaveError as e:  # any op that writes a file: names the file and the cause
        return _error(rid, "save_error", str(e), traceback.format_exc())
    except KeyError as e:
        return _error(rid, "bad_request", f"{e.args[0] if e.args else e}", traceback.format_exc())
    except Exception as e:  # noqa: BLE001 - every failure becomes a response, the worker goes on
        return _error(rid, "runtime_error", f"{type(e).__name__}: {e}", traceback.format_exc())


def _error(rid: Any, kind: str, message: str, detail: str = "") -> Dict[str, Any]:
    err = {"kind": kind, "message": message}
    if detail:
        err["detail"] = detail
    return {"id": rid, "status": "error", "error": err}


def handle_json(line: str) -> str:
    try:
        request = json.loads(line)
    except ValueError as e:
        return json.dumps(_error(-1, "bad_request", f"request is not valid JSON: {e}"))
    response = handle(request)
    try:
        return json.dumps(response, allow_nan=False)
    except (TypeError, ValueError) as e:
        return json.dumps(_error(response.get("id", -1), "runtime_error", f"result is not JSON-encodable: {e}"))


def serve() -> None:
    """Standalone loop over stdin and a guarded stdout (``python3 -m torchconformance serve``)."""
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        channel.write(handle_json(line) + "\n")
        channel.flush()
        if json.loads(line).get("op") == "shutdown":
            break

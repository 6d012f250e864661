"""Command line: ``python3 -m torchconformance serve|hello|listing CASE|builders|check FILE...|check-samples DIR|gpu-check --out DIR [--device cuda|cpu]|judge``.

``builders`` prints the model builders this side has (models.BUILDERS), one per line (CatalogueSpecs
compares them with the C# twin's and the catalogue's).

``judge [FILE]`` reads JSON lines ``{case, consumer, mode, expected, reply, path[, tolerance]}`` (stdin) and
writes each verdict of ``judge.py`` as a JSON line (GpuJudgeAgreementSpecs compares it with the
orchestrator's); it needs no torch.
"""

import json
import sys



def main(argv: list) -> int:
    cmd = argv[0] if argv else "serve"
    if cmd == "judge":
        return _judge_lines(argv[1] if len(argv) > 1 else None)
    if cmd == "check":
        # This runtime's part of `conformance check`, standalone (no .NET): inventory and readers, JSON.
        from . import check

        if len(argv) < 2:
            print("usage: python3 -m torchconformance check FILE...", file=sys.stderr)
            return 2
        print(json.dumps([check.check({"path": p, "inventory": True}) for p in argv[1:]], indent=1))
        return 0
    if cmd == "check-samples":
        from . import samples

        samples.write(argv[1] if len(argv) > 1 else "tests/check-samples")
        return 0
    if cmd == "builders":
        from . import models

        print("\n".join(models.BUILDERS))
        return 0
    if cmd == "gpu-check":
        from . import gpu_check

        return gpu_check.main(argv[1:])
    from . import worker

    if cmd == "serve":
        worker.serve()
        return 0
    if cmd == "hello":
        print(json.dumps(worker.handle({"id": 0, "op": "hello"})["result"], indent=2))
        return 0
    if cmd == "listing":
        reply = worker.handle({"id": 0, "op": "listing", "args": {"case": argv[1] if len(argv) > 1 else "lenet"}})
        print(reply["result"]["text"] if reply["status"] == "ok" else reply["error"]["message"])
        return 0 if reply["status"] == "ok" else 1
    print(__doc__, file=sys.stderr)
    return 2


def _wire(v):
    """NaN and infinities as the strings .NET parses (JSON has neither)."""
    import math

    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, dict):
        return {k: _wire(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_wire(x) for x in v]
    return v


def _judge_lines(path) -> int:
    from . import judge

    source = open(path, encoding="utf-8") if path else sys.stdin
    for line in source:
        if not line.strip():
            continue
        q = json.loads(line)
        tol = judge.Tolerance(q["tolerance"]["atol"], q["tolerance"]["rtol"]) if q.get("tolerance") else None
        v = judge.judge_cell(q["case"], q["consumer"], q["mode"], q["expected"], q["reply"], q["path"], tol, route=q.get("route"))
        print(json.dumps(_wire({"outcome": v.outcome, "message": v.message, "problems": v.problems,
                                "max_abs_diff": v.diff.max_abs if v.diff else None, "train_eval_max_abs_diff": v.train_eval_diff}),
                         allow_nan=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Command line: ``python3 -m torchconformance serve|hello|listing CASE|builders|check FILE...|gpu-check --out DIR [--device cuda|cpu]``.

``builders`` prints the model builders this side has (models.BUILDERS), one per line (CatalogueSpecs
compares them with the C# twin's and the catalogue's).
"""

import json
import sys


def main(argv: list) -> int:
    cmd = argv[0] if argv else "serve"
    if cmd == "check":
        # This runtime's part of `conformance check`, standalone (no .NET): inventory and readers, JSON.
        from .worker import check

        if len(argv) < 2:
            print("usage: python3 -m torchconformance check FILE...", file=sys.stderr)
            return 2
        print(json.dumps([check.check({"path": p, "inventory": True}) for p in argv[1:]], indent=1))
        return 0
    if cmd == "builders":
        from . import models

        print("\n".join(models.BUILDERS))
        return 0
    if cmd == "gpu-check":
        from . import gpucheck

        return gpucheck.main(argv[1:])
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

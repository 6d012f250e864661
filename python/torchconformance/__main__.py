"""Command line: ``python3 -m torchconformance serve|hello|listing CASE``."""

import json
import sys

from . import worker


def main(argv: list) -> int:
    cmd = argv[0] if argv else "serve"
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

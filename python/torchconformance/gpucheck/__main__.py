"""``python3 -m torchconformance.gpucheck child PLAN K``: a child process of gpu-check (see the package)."""

import sys

from . import child_main, main

if len(sys.argv) == 4 and sys.argv[1] == "child":
    sys.exit(child_main(sys.argv[2], int(sys.argv[3])))
sys.exit(main(sys.argv[1:]))

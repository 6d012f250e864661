#!/usr/bin/env bash
# One shard of the matrix, as a CI job runs it: set-up as the README does (idempotent, cached outside
# the checkout), then `conformance run --shard I/N`. The report lands in OUT (compatibility.json, .md,
# .html) whatever the verdict: the merge job decides. Exit 0 when the shard ran and wrote its report.
#   .ci/shard.sh I N OUT        (TORCHSHARP_VERSION / TORCHSHARP_FEED build that worker too)
set -euo pipefail
cd "$(dirname "$0")/.."
i="${1:?usage: .ci/shard.sh I N OUT}"; n="${2:?usage: .ci/shard.sh I N OUT}"; out="${3:?usage: .ci/shard.sh I N OUT}"
# SKIP_SETUP=1: set-up is done already (ShardMergeSpecs, inside `make test`, whose own build is in use).
[ -n "${SKIP_SETUP:-}" ] || make --no-print-directory setup >&2
cli="harness/Conformance.Cli/bin/${CONFIG:-Release}/net10.0/conformance.dll"
set +e
dotnet "$cli" run --shard "$i/$n" --out "$out" ${SHARD_ARGS:-}
rc=$?
set -e
[ -f "$out/compatibility.json" ] || { echo "shard $i/$n: no report in $out (exit $rc)" >&2; exit 2; }
echo "shard $i/$n: exit $rc, report in $out"

#!/usr/bin/env bash
# The merge job: join the shards' reports into one (`conformance merge`), then compare it with the
# baseline (`conformance compare`), writing the Markdown summary. Exit 1 on a regression (the gate),
# 2 on unusable input. A GitHub job appends OUT/summary.md to $GITHUB_STEP_SUMMARY.
#   .ci/merge.sh BASELINE OUT SHARD_DIR...     (FAIL_ON_CHANGE=1: any change fails, as determinism does)
set -euo pipefail
cd "$(dirname "$0")/.."
baseline="${1:?usage: .ci/merge.sh BASELINE OUT SHARD_DIR...}"; out="${2:?usage: .ci/merge.sh BASELINE OUT SHARD_DIR...}"; shift 2
[ $# -gt 0 ] || { echo "merge: no shard folders given" >&2; exit 2; }
cli="harness/Conformance.Cli/bin/${CONFIG:-Release}/net10.0/conformance.dll"
[ -f "$cli" ] || dotnet build harness/Conformance.Cli -c "${CONFIG:-Release}" --nologo --verbosity quiet >&2
reports=()
for d in "$@"; do reports+=("$d/compatibility.json"); done
set +e
dotnet "$cli" merge "${reports[@]}" --out "$out"
merged=$?
set -e
[ -f "$out/compatibility.json" ] || { echo "merge: no merged report (exit $merged)" >&2; exit 2; }
dotnet "$cli" compare "$baseline" "$out/compatibility.json" --markdown "$out/summary.md" ${FAIL_ON_CHANGE:+--fail-on-change}

#!/usr/bin/env bash
# The merge job: join the shards' reports into one (`conformance merge`), then compare it with the
# baseline (`conformance compare`), writing the Markdown summary. Exit 1 on a regression (the gate),
# 2 on unusable input. A GitHub job appends OUT/summary.md to $GITHUB_STEP_SUMMARY.
#   .ci/merge.sh BASELINE OUT SHARD_DIR...     (FAIL_ON_CHANGE=1: any change fails, as determinism does;
#                                               HTML_URL: where OUT/compatibility.html will be published, for the summary's links;
#                                               HISTORY_DIR: the series of earlier runs, see below)
# BASELINE is a compatibility.json or a compact baseline (reports/baseline.json, written by make baseline).
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
set +e
dotnet "$cli" compare "$baseline" "$out/compatibility.json" --markdown "$out/summary.md" ${FAIL_ON_CHANGE:+--fail-on-change} ${HTML_URL:+--html-url "$HTML_URL"}
rc=$?
set -e
# HISTORY_DIR (a folder of earlier runs' baselines, e.g. the previous run's history artifact): this run
# joins the series as one more compact baseline, named by its time and commit, and OUT/history/ gets the
# history page built from the newest HISTORY_KEEP (52) of them.
if [ -n "${HISTORY_DIR:-}" ]; then
  mkdir -p "$HISTORY_DIR"
  commit="${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
  dotnet "$cli" baseline "$out/compatibility.json" --out "$HISTORY_DIR/run-$(date -u +%Y%m%dT%H%M%SZ)-${commit:0:12}.json" --commit "$commit"
  ls -1 "$HISTORY_DIR"/run-*.json | sort | head -n -"${HISTORY_KEEP:-52}" | xargs -r rm -f
  dotnet "$cli" history "$HISTORY_DIR"/run-*.json --out "$out/history"
fi
exit $rc

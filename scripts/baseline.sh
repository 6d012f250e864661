#!/usr/bin/env bash
# make baseline: reports/baseline.json from a complete run of the checked-out commit, and the README's
# overview table from it. Refuses on a dirty tree first (before any set-up or run): a baseline must
# describe a commit, so a change to code, ledger or fixtures is committed before its baseline is made.
set -euo pipefail
cd "$(dirname "$0")/.."
dirty=$(git status --porcelain --untracked-files=normal)
if [ -n "$dirty" ]; then
  echo "make baseline: refusing on a dirty tree: the baseline must describe a commit. Commit or stash these first:" >&2
  printf '%s\n' "$dirty" | head -n 20 >&2
  exit 2
fi
commit=$(git rev-parse HEAD)
${MAKE:-make} --no-print-directory report
dotnet "harness/Conformance.Cli/bin/${CONFIG:-Release}/net10.0/conformance.dll" baseline reports/compatibility.json \
  --out reports/baseline.json --commit "$commit" --readme README.md
echo "make baseline: commit reports/baseline.json and README.md (the baseline of $commit)"

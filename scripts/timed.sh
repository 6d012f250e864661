#!/usr/bin/env bash
# timed.sh NAME CMD...: runs CMD and prints how long it took, so a run's log shows each set-up step.
name=$1; shift
start=$(date +%s%N)
"$@"
rc=$?
awk -v n="$name" -v s="$start" -v e="$(date +%s%N)" -v rc="$rc" 'BEGIN { printf "== %s: %.1f s (exit %d)\n", n, (e - s) / 1e9, rc }' >&2
exit $rc

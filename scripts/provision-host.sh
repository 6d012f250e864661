#!/usr/bin/env bash
# Installs what the host needs from Debian's own archive: PyTorch 1.13 (python3-torch), numpy,
# debootstrap for the trixie rootfs, and chromium, the headless browser the HTML report's test
# drives (nothing is downloaded by the test itself). Idempotent: does nothing when all are present.
set -euo pipefail
# The list lives in environments.json (the "host" environment); any python3 reads it.
PY=$(command -v /usr/bin/python3 || command -v python3)
read -ra pkgs <<< "$("$PY" "$(dirname "$0")/environments.py" host-packages)"
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "host: all packages present (${pkgs[*]})"
  exit 0
fi
echo "host: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2; echo "host: apt-get failed (log above)" >&2; exit 1
fi
rm -f "$log"

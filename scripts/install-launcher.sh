#!/usr/bin/env bash
# install-launcher.sh CHECKOUT CONFIG TARGET: writes TARGET, a launcher that runs CHECKOUT's built CLI
# (harness/Conformance.Cli/bin/CONFIG/net10.0/conformance.dll) with CONFORMANCE_REPO=CHECKOUT, from any folder.
# The launcher, not a copy of the CLI: the CLI needs this checkout's workers, Python package and rootfs mounts,
# and `make build` here updates what the launcher runs. Idempotent; refuses to overwrite a file it did not write.
set -euo pipefail
checkout=$(cd "$1" && pwd)
config=$2
target=$3
dll="$checkout/harness/Conformance.Cli/bin/$config/net10.0/conformance.dll"
marker="# written by torch-conformance's make install"
[ -f "$dll" ] || { echo "install: $dll is not built: run make build" >&2; exit 1; }
if [ -e "$target" ] && ! grep -qF "$marker" "$target"; then
  echo "install: $target exists and was not written by make install; remove it or give PREFIX=..." >&2
  exit 1
fi
mkdir -p "$(dirname "$target")"
tmp="$target.tmp.$$"
cat > "$tmp" <<LAUNCHER
#!/bin/sh
$marker from $checkout
if [ ! -f "$dll" ]; then
  echo "conformance: $dll is gone; run make build (or make install) in $checkout" >&2
  exit 4
fi
CONFORMANCE_REPO="\${CONFORMANCE_REPO:-$checkout}" exec dotnet "$dll" "\$@"
LAUNCHER
chmod 755 "$tmp"
mv -f "$tmp" "$target"
echo "install: $target runs $dll"
case ":$PATH:" in *":$(dirname "$target"):"*) ;; *) echo "install: note: $(dirname "$target") is not on PATH" >&2 ;; esac

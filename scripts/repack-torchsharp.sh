#!/usr/bin/env bash
# repack-torchsharp.sh VERSION DIR
#   Writes TorchSharp 0.107.0's package, re-numbered VERSION (e.g. 0.107.1-repack.1), into DIR, a
#   local NuGet feed for `make worker TORCHSHARP_VERSION=VERSION TORCHSHARP_FEED=DIR`.
#
# The binaries are 0.107.0's, unchanged: this proves that a second TorchSharp build becomes a second
# runtime in the matrix, not anything about a second TorchSharp. Take a version above 0.107.0 (a
# pre-release of 0.107.1, say): TorchVision and PyBridge ask for TorchSharp >= 0.107.0, and
# 0.107.0-anything sorts below 0.107.0. NuGet keeps a restored version in ~/.nuget/packages for good,
# so a changed repack needs a new VERSION, not the same one again.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 VERSION DIR" >&2; exit 2; }
VERSION=$1 DIR=$2
SOURCE_VERSION=0.107.0
REPO=$(cd "$(dirname "$0")/.." && pwd)
PACKAGES=${NUGET_PACKAGES:-$HOME/.nuget/packages}
NUPKG="$PACKAGES/torchsharp/$SOURCE_VERSION/torchsharp.$SOURCE_VERSION.nupkg"

if [ ! -f "$NUPKG" ]; then
  echo "repack: restoring TorchSharp $SOURCE_VERSION first" >&2
  dotnet restore "$REPO/harness/Conformance.Workers.TorchSharp/Conformance.Workers.TorchSharp.csproj" \
    --verbosity quiet -p:TorchSharpVersion=$SOURCE_VERSION
fi
mkdir -p "$DIR"
OUT="$(cd "$DIR" && pwd)/torchsharp.$VERSION.nupkg"

# python3 for its zipfile module only (the stdlib; any python3 will do, torch or not).
python3 - "$NUPKG" "$OUT" "$SOURCE_VERSION" "$VERSION" <<'PY'
import os, re, sys, zipfile
src, out, old, new = sys.argv[1:]
if not re.fullmatch(r"\d+(\.\d+){2}(-[0-9A-Za-z.-]+)?", new):
    sys.exit(f"repack: '{new}' is not a NuGet version such as 0.107.1-repack.1")
def renumber(name, data):
    # The version lives in the .nuspec and in the package's core-properties part.
    if name.endswith(".nuspec"):
        data, n = re.subn(rb"<version>" + re.escape(old.encode()) + rb"</version>", b"<version>" + new.encode() + b"</version>", data)
        if n != 1: sys.exit(f"repack: {name} has no <version>{old}</version>")
    elif name.endswith(".psmdcp"):
        data = data.replace(b"<version>" + old.encode() + b"</version>", b"<version>" + new.encode() + b"</version>")
    return data
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
        # The signature covers the original bytes; a re-numbered package is unsigned, which NuGet accepts.
        if info.filename == ".signature.p7s":
            continue
        zout.writestr(info, renumber(info.filename, zin.read(info)), compress_type=info.compress_type)
os.replace(out + ".tmp", out)
print(f"repack: wrote {out} ({os.path.getsize(out)} bytes): TorchSharp {old}'s binaries as {new}")
PY

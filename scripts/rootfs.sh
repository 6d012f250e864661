#!/usr/bin/env bash
# Debian 13 (trixie) rootfs in which TorchSharp 0.107 (needs GLIBCXX_3.4.32) and PyTorch 2.6 run.
#
#   scripts/rootfs.sh provision        build it once (idempotent, reused when its stamp is present)
#   scripts/rootfs.sh mount REPO...    bind proc/dev/sys, the .NET SDK and each REPO at the same path
#   scripts/rootfs.sh umount           undo every mount under the rootfs
#   scripts/rootfs.sh path             print where it lives
#
# It lives outside the repository (CI clones afresh on the same machine), by default in
# /var/cache/torch-conformance/rootfs-trixie; CONFORMANCE_ROOTFS overrides that.
set -euo pipefail
ROOTFS=${CONFORMANCE_ROOTFS:-/var/cache/torch-conformance/rootfs-trixie}
MIRROR=${CONFORMANCE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
STAMP="$ROOTFS/.conformance-provisioned"
# Bump when the package list changes, so an older rootfs is topped up rather than rebuilt.
PKGS="python3-torch python3-numpy libpython3.13 libicu76 ca-certificates python3-safetensors python3-torchvision"
DOTNET_ROOT_DIR=$(dirname "$(readlink -f "$(command -v dotnet)")")

log() { echo "rootfs: $*" >&2; }

# Runs a noisy command with its output in a log; shows the log's tail only when it fails.
quiet() {
  local out; out=$(mktemp)
  if ! "$@" >"$out" 2>&1; then tail -n 40 "$out" >&2; rm -f "$out"; log "failed: $*"; exit 1; fi
  rm -f "$out"
}

umount_all() {
  [ -d "$ROOTFS" ] || return 0
  # Deepest first, so rbind sub-mounts go before their parents.
  awk -v r="$ROOTFS" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

bind() { # bind SRC DST [rbind]
  local src=$1 dst=$2 how=${3:---bind}
  mkdir -p "$dst"
  mountpoint -q "$dst" || mount "$how" "$src" "$dst"
}

mount_base() {
  mkdir -p "$ROOTFS/proc"
  mountpoint -q "$ROOTFS/proc" || mount -t proc proc "$ROOTFS/proc"
  bind /dev "$ROOTFS/dev" --rbind
  bind /sys "$ROOTFS/sys" --rbind
  cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf" 2>/dev/null || true
}

provision() {
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PKGS" ]; then
    log "present at $ROOTFS (reused)"
    return 0
  fi
  command -v debootstrap >/dev/null || { log "debootstrap missing: run scripts/provision-host.sh"; exit 1; }
  if [ -d "$ROOTFS" ] && [ ! -f "$STAMP" ] && [ ! -x "$ROOTFS/usr/bin/apt-get" ]; then
    log "removing an unfinished rootfs at $ROOTFS"
    umount_all
    if awk -v r="$ROOTFS" 'index($2, r "/") == 1 {f=1} END {exit !f}' /proc/mounts; then
      log "refusing to delete $ROOTFS: mounts are still active inside it"; exit 1
    fi
    rm -rf --one-file-system "$ROOTFS"
  fi
  if [ ! -x "$ROOTFS/usr/bin/apt-get" ]; then
    log "debootstrap trixie into $ROOTFS"
    mkdir -p "$(dirname "$ROOTFS")"
    quiet debootstrap --variant=minbase trixie "$ROOTFS" "$MIRROR"
  fi
  mount_base
  log "apt-get install $PKGS"
  quiet chroot "$ROOTFS" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends $PKGS && apt-get clean"
  echo "$PKGS" > "$STAMP"
  log "ready at $ROOTFS ($(du -sh --one-file-system "$ROOTFS" | cut -f1))"
}

mount_repos() {
  [ -f "$STAMP" ] || { log "not provisioned: run '$0 provision'"; exit 1; }
  mount_base
  bind "$DOTNET_ROOT_DIR" "$ROOTFS$DOTNET_ROOT_DIR"
  ln -sf "$DOTNET_ROOT_DIR/dotnet" "$ROOTFS/usr/bin/dotnet"
  for repo in "$@"; do
    repo=$(readlink -f "$repo")
    bind "$repo" "$ROOTFS$repo"
  done
}

case "${1:-}" in
  provision) provision ;;
  mount) shift; mount_repos "$@" ;;
  umount) umount_all ;;
  path) echo "$ROOTFS" ;;
  *) echo "usage: $0 provision|mount REPO...|umount|path" >&2; exit 2 ;;
esac

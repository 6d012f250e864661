#!/usr/bin/env bash
# The Debian suite rootfs that environments.json declares (trixie: TorchSharp 0.107, which needs
# GLIBCXX_3.4.32, and PyTorch 2.6; forky: PyTorch 2.14), outside the repository (CI clones afresh).
#
#   scripts/rootfs.sh provision        build every rootfs, in parallel (idempotent; a changed package list is topped up)
#   scripts/rootfs.sh mount REPO...    bind proc/dev/sys, the .NET SDK and each REPO at the same path, in every rootfs
#   scripts/rootfs.sh umount           undo every mount under every rootfs
#   scripts/rootfs.sh path [ID]        print where a rootfs lives (default trixie)
#
# The Debian mirror is the one this machine's apt sources name (CONFORMANCE_DEBIAN_MIRROR overrides);
# CONFORMANCE_ROOTFS moves the trixie rootfs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# Any python3 reads the JSON (stdlib only); the host's own one when present.
PY=$(command -v /usr/bin/python3 || command -v python3)
ENVS() { "$PY" "$HERE/environments.py" "$@"; }
MIRROR=$(ENVS mirror)
DOTNET_ROOT_DIR=$(dirname "$(readlink -f "$(command -v dotnet)")")

log() { echo "rootfs: $*" >&2; }

# Runs a noisy command with its output in a log; shows the log's tail only when it fails.
quiet() {
  local out; out=$(mktemp)
  if ! "$@" >"$out" 2>&1; then tail -n 40 "$out" >&2; rm -f "$out"; log "failed: $*"; return 1; fi
  rm -f "$out"
}

umount_one() {
  local root=$1
  [ -d "$root" ] || return 0
  # Deepest first, so rbind sub-mounts go before their parents.
  awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

bind() { # bind SRC DST [rbind]
  local src=$1 dst=$2 how=${3:---bind}
  mkdir -p "$dst"
  # A bind left from an earlier checkout at the same path (deleted and cloned again) still shows the
  # old, deleted folder: it is a mount point, but not of SRC. Replace it rather than keep it.
  if mountpoint -q "$dst" && [ "$(stat -c %d:%i "$src")" != "$(stat -c %d:%i "$dst" 2>/dev/null)" ]; then
    log "replacing a stale mount at $dst (it no longer shows $src)"
    umount_one "$dst"
  fi
  mountpoint -q "$dst" || mount "$how" "$src" "$dst"
}

mount_base() {
  local root=$1
  mkdir -p "$root/proc"
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  bind /dev "$root/dev" --rbind
  bind /sys "$root/sys" --rbind
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
}

provision_one() { # ID ROOT SUITE SCRIPT APTOPTS PACKAGES
  local id=$1 root=$2 suite=$3 script=$4 aptopts=$5 pkgs=$6
  local stamp="$root/.conformance-provisioned"
  [ "$script" = "-" ] && script=""
  [ "$aptopts" = "-" ] && aptopts=""
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pkgs" ]; then
    log "$id: present at $root (reused)"
    return 0
  fi
  command -v debootstrap >/dev/null || { log "debootstrap missing: run scripts/provision-host.sh"; return 1; }
  if [ -d "$root" ] && [ ! -f "$stamp" ] && [ ! -x "$root/usr/bin/apt-get" ]; then
    log "$id: removing an unfinished rootfs at $root"
    umount_one "$root"
    if awk -v r="$root" 'index($2, r "/") == 1 {f=1} END {exit !f}' /proc/mounts; then
      log "$id: refusing to delete $root: mounts are still active inside it"; return 1
    fi
    rm -rf --one-file-system "$root"
  fi
  if [ ! -x "$root/usr/bin/apt-get" ]; then
    log "$id: debootstrap $suite into $root from $MIRROR"
    mkdir -p "$(dirname "$root")"
    # shellcheck disable=SC2086 # the script argument is optional
    quiet debootstrap --variant=minbase "$suite" "$root" "$MIRROR" $script || return 1
  fi
  mount_base "$root"
  [ -f "$stamp" ] && log "$id: package list changed: topping up"
  log "$id: apt-get install $pkgs"
  quiet chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get $aptopts update -qq && apt-get $aptopts install -y -qq --no-install-recommends $pkgs && apt-get clean" || return 1
  echo "$pkgs" > "$stamp"
  log "$id: ready at $root ($(du -sh --one-file-system "$root" | cut -f1))"
}

provision() {
  local pids=() ids=() failed=0
  while IFS=$'\t' read -r id root suite script aptopts pkgs; do
    provision_one "$id" "$root" "$suite" "$script" "$aptopts" "$pkgs" &
    pids+=("$!"); ids+=("$id")
  done < <(ENVS rootfs)
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { log "${ids[$i]}: provisioning failed"; failed=1; }
  done
  return $failed
}

mount_repos() {
  while IFS=$'\t' read -r id root _ _ _ _; do
    [ -f "$root/.conformance-provisioned" ] || { log "$id: not provisioned at $root: run '$0 provision'"; exit 1; }
    mount_base "$root"
    bind "$DOTNET_ROOT_DIR" "$root$DOTNET_ROOT_DIR"
    ln -sf "$DOTNET_ROOT_DIR/dotnet" "$root/usr/bin/dotnet"
    for repo in "$@"; do
      repo=$(readlink -f "$repo")
      bind "$repo" "$root$repo"
    done
  done < <(ENVS rootfs)
}

case "${1:-}" in
  provision) provision ;;
  mount) shift; mount_repos "$@" ;;
  umount) while IFS=$'\t' read -r _ root _ _ _ _; do umount_one "$root"; done < <(ENVS rootfs) ;;
  path) ENVS rootfs | awk -F'\t' -v id="${2:-trixie}" '$1 == id {print $2}' ;;
  *) echo "usage: $0 provision|mount REPO...|umount|path [ID]" >&2; exit 2 ;;
esac
